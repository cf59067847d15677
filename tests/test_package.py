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
