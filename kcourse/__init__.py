"""kcourse: the algorithms of a deep-learning course as tested Keras 3 components.

Importing the package is cheap: TensorFlow is only imported when a component is
first used (so `kcourse --help` stays fast). The first use imports every component
module, which also registers them with Keras' serialization, so
`keras.saving.load_model` finds them after any `kcourse.X` access.
"""

import importlib
import importlib.util

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
    "fit": "kcourse.train",
    "evaluate": "kcourse.train",
    "History": "kcourse.train",
    "gradcheck": "kcourse.gradcheck",
    "load_cifar10": "kcourse.data",
    "batched": "kcourse.data",
    "KcourseCifar10": "kcourse.data",
    "linear_classifier": "kcourse.models",
    "run_experiment": "kcourse.runner",
    "VanillaRNN": "kcourse.layers",
    "AdaGrad": "kcourse.optimizers",
    "CharModel": "kcourse.char_model",
    "fit_chars": "kcourse.char_train",
    "loss_per_char": "kcourse.char_train",
    "generate": "kcourse.sampling",
    "load_text": "kcourse.data.text",
    "Vocabulary": "kcourse.data.text",
    "export": "kcourse.serving",
}
_COMPONENT_MODULES = ("kcourse.layers", "kcourse.losses", "kcourse.schedules",
                      "kcourse.optimizers", "kcourse.char_model")

__all__ = sorted(_EXPORTS)


def register_components():
    """Import every serializable kcourse component, so that `keras.saving.load_model`
    finds them (safe mode included)."""
    for module in _COMPONENT_MODULES:
        importlib.import_module(module)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kcourse' has no attribute {name!r}")
    register_components()
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
