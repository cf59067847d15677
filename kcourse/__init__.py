"""kcourse: the algorithms of a deep-learning course as tested Keras 3 components.

Importing the package is cheap: TensorFlow is only imported when a component is
first used (so `kcourse --help` stays fast). The first use imports every component
module, which also registers them with Keras' serialization, so
`keras.saving.load_model` finds them after any `kcourse.X` access.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

try:
    _tf_spec = importlib.util.find_spec("tensorflow")
except (ImportError, ValueError):
    _tf_spec = None
if _tf_spec is None:
    raise ImportError(
        "kcourse needs TensorFlow, which is not installed. Install kcourse with one of "
        "its extras: pip install 'kcourse[cpu]' (CPU only) or pip install 'kcourse[gpu]' "
        "(NVIDIA GPU, tensorflow[and-cuda])."
    )

# public name -> module that defines it
_EXPORTS = {
    "Linear": "kcourse.layers",
    "SoftmaxCrossEntropy": "kcourse.losses",
    "MulticlassSVM": "kcourse.losses",
    "fit": "kcourse.training",
    "evaluate": "kcourse.training",
    "History": "kcourse.training",
    "gradcheck": "kcourse.training",
    "load_cifar10": "kcourse.data",
    "batched": "kcourse.data",
    "InMemoryBatches": "kcourse.data",
    "TextStreams": "kcourse.data",
    "KcourseCifar10": "kcourse.data",
    "linear_classifier": "kcourse.tracks.cifar_mlp.models",
    "mlp": "kcourse.tracks.cifar_mlp.models",
    "run_experiment": "kcourse.runs",
    "VanillaRNN": "kcourse.layers",
    "AdaGrad": "kcourse.optimizers",
    "CharModel": "kcourse.tracks.char_rnn.model",
    "fit_chars": "kcourse.tracks.char_rnn.train",
    "loss_per_char": "kcourse.tracks.char_rnn.train",
    "generate": "kcourse.tracks.char_rnn.generation",
    "load_text": "kcourse.data.text",
    "Vocabulary": "kcourse.data.text",
    "export": "kcourse.serving",
    "predict": "kcourse.serving",
    "MatrixConv1D": "kcourse.layers",
    "MultiHeadSelfAttention": "kcourse.layers",
    "PositionalEncoding": "kcourse.layers",
    "beam_search": "kcourse.samplers",
    "BalancedSampler": "kcourse.data",
    "load_surnames": "kcourse.data.surnames",
    "NameEncoder": "kcourse.data.surnames",
    "surname_convnet": "kcourse.tracks.surnames.model",
    "L1": "kcourse.regularizers",
    "ElasticNet": "kcourse.regularizers",
}
_COMPONENT_MODULES = ("kcourse.layers", "kcourse.losses", "kcourse.metrics",
                      "kcourse.schedules", "kcourse.optimizers", "kcourse.regularizers",
                      "kcourse.tracks.char_rnn.model")

# modules that moved when kcourse became one package per track: the old names still import
_MOVED = {
    "kcourse.train": "kcourse.training",
    "kcourse.gradcheck": "kcourse.training.gradcheck",
    "kcourse.lr_range": "kcourse.training.lr_range",
    "kcourse.runner": "kcourse.runs",
    "kcourse.ensemble": "kcourse.callbacks.snapshot_ensemble",
    "kcourse.models": "kcourse.tracks.cifar_mlp.models",
    "kcourse.char_model": "kcourse.tracks.char_rnn.model",
    "kcourse.char_train": "kcourse.tracks.char_rnn.train",
    "kcourse.sampling": "kcourse.tracks.char_rnn.generation",
    "kcourse.data.pipeline": "kcourse.data.splits",
}

__all__ = sorted([*_EXPORTS, "load_model", "register_components"])


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module that now holds its code."""

    def find_spec(self, name, path=None, target=None):
        if name in _MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(_MOVED[spec.name])

    def exec_module(self, module):
        pass


sys.meta_path.append(_MovedModules())


def register_components():
    """Import every serializable kcourse component, so that `keras.saving.load_model`
    finds them (safe mode included)."""
    for module in _COMPONENT_MODULES:
        importlib.import_module(module)


def load_model(path, safe_mode=True):
    """Load a `.keras` file saved by kcourse (or any model using its components).

    `keras.saving.load_model` works too once the components are registered
    (`register_components()`); this does both and says what is wrong otherwise.
    """
    import os

    import keras

    register_components()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path}: give the model.keras of a run "
                                "(runs/<experiment>/rows/<row>/model.keras).")
    try:
        return keras.saving.load_model(path, safe_mode=safe_mode)
    except Exception as error:
        raise ValueError(f"Cannot load {path} as a Keras model ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''}). If it was "
                         "saved with components of another library, import that library "
                         "first.") from error


if "keras" in sys.modules:  # Keras is loaded already: register at once (it is cheap now)
    register_components()


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kcourse' has no attribute {name!r}")
    register_components()
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
