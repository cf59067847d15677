import subprocess
import sys

import keras


def test_import_without_tensorflow_names_the_extras():
    code = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'tensorflow':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "import kcourse\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "kcourse[cpu]" in result.stderr and "kcourse[gpu]" in result.stderr


def test_lazy_exports_and_registration():
    import kcourse

    assert kcourse.Linear.__name__ == "Linear"
    assert keras.saving.get_registered_object("kcourse>Linear") is kcourse.Linear
    assert keras.saving.get_registered_object("kcourse>MulticlassSVM") is kcourse.MulticlassSVM
    for name in kcourse.__all__:
        assert getattr(kcourse, name) is not None
    try:
        kcourse.NoSuchThing
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("unknown attribute did not raise")


def test_the_modules_documented_before_the_tracks_still_import():
    import importlib

    import kcourse

    moved = {"kcourse.train": ("fit", "evaluate", "History", "predict_scores"),
             "kcourse.gradcheck": ("gradcheck", "check_gradients", "relative_error"),
             "kcourse.lr_range": ("lr_range_test", "suggest_rates"),
             "kcourse.runner": ("run_experiment", "summary_table"),
             "kcourse.ensemble": ("SnapshotEnsemble", "ensemble_accuracy"),
             "kcourse.models": ("linear_classifier", "mlp"),
             "kcourse.char_model": ("CharModel",),
             "kcourse.char_train": ("fit_chars", "loss_per_char", "sequence_loss"),
             "kcourse.sampling": ("generate", "TextGenerator", "MAX_LENGTH", "sample_next"),
             "kcourse.data.pipeline": ("load_cifar10", "Cifar10Splits")}
    for old, names in moved.items():
        module = importlib.import_module(old)
        assert module.__name__ == kcourse._MOVED[old]  # the module itself, not a copy
        for name in names:
            assert hasattr(module, name), f"{old}.{name}"
    from kcourse.train import fit
    from kcourse.training import fit as new_fit
    assert fit is new_fit


def test_load_model_registers_the_components_and_says_what_is_wrong(tmp_path):
    import numpy as np
    import pytest

    import kcourse
    from kcourse.tracks.cifar_mlp.models import mlp

    model = mlp([4], input_dim=6, batch_norm=True, seed=0)
    model.save(tmp_path / "m.keras")
    x = np.ones((2, 6), "float32")
    np.testing.assert_array_equal(kcourse.load_model(str(tmp_path / "m.keras"))(x), model(x))
    with pytest.raises(FileNotFoundError, match="No model file"):
        kcourse.load_model(str(tmp_path / "none.keras"))
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="Cannot load"):
        kcourse.load_model(str(tmp_path / "bad.keras"))
    # a fresh process: import kcourse, then Keras' own loader finds the components
    code = (f"import keras, kcourse\n"
            f"keras.saving.load_model({str(tmp_path / 'm.keras')!r})\n"
            f"print('loaded')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "loaded" in result.stdout, result.stderr[-2000:]


def test_importing_plots_leaves_the_notebook_backend_alone(tmp_path):
    """kcourse.plots draws on figures outside pyplot: a notebook's inline backend stays,
    so its cells show their pictures, and the PNG files are still written."""
    code = ("import matplotlib; matplotlib.use('module://matplotlib_inline.backend_inline')\n"
            "from kcourse import plots\n"
            "plots.plot_curves([{'epoch': 0, 'train_loss': 1.0, 'val_loss': 2.0}], 'loss', "
            f"{str(tmp_path / 'loss.png')!r})\n"
            "import matplotlib.pyplot as plt\n"
            "print(matplotlib.get_backend(), len(plt.get_fignums()))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["module://matplotlib_inline.backend_inline", "0"]
    assert (tmp_path / "loss.png").stat().st_size > 1000
