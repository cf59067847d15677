import contextlib
import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir():
    """The real datasets: $KCOURSE_DATA_DIR, else ../shared/data beside the repo."""
    path = os.environ.get("KCOURSE_DATA_DIR") or str(REPO.parent / "shared" / "data")
    return path if os.path.isdir(os.path.join(path, "cifar-10-batches-py")) else None


@pytest.fixture
def real_data_dir():
    path = shared_data_dir()
    if path is None:
        pytest.skip("real CIFAR-10 not found: set KCOURSE_DATA_DIR or put shared/data "
                    "beside the repository")
    return path


def write_fake_cifar(root, per_batch=12, seed=0):
    """Write tiny CIFAR-10 python batches (same format as the official ones)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode(),
                         b"filenames": [b"x.png"] * per_batch}, f)
        batches[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)]}, f)
    return batches


@pytest.fixture
def fake_cifar(tmp_path):
    """A manual dir with tiny generated batches, and an empty TFDS data dir."""
    manual = tmp_path / "manual"
    batches = write_fake_cifar(manual)
    return {"manual": str(manual), "tfds": str(tmp_path / "tfds"), "batches": batches}


LANGUAGES18 = ("Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek",
               "Irish", "Italian", "Japanese", "Korean", "Polish", "Portuguese", "Russian",
               "Scottish", "Spanish", "Vietnamese")


def write_fake_surnames(root, per_class=(30, 18), seed=0):
    """Write tiny surname files in the course's layout (names/dd2424/) and the
    tutorial's (names/<Language>.txt): class k's names start with the letter of k, so
    a model can learn them. Classes alternate between per_class[0] and [1] names; the
    validation indices take 2 names of every class."""
    rng = np.random.default_rng(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    folder = Path(root) / "names" / "dd2424"
    folder.mkdir(parents=True)
    lines, validation, by_class = [], [], {}
    for k, language in enumerate(LANGUAGES18):
        count = per_class[k % 2]
        names = [letters[k].upper() + "".join(rng.choice(list(letters), rng.integers(2, 9)))
                 for _ in range(count)]
        by_class[language] = names
        for i, name in enumerate(names):
            lines.append(f"{name} {k + 1}")
            if i < 2:
                validation.append(len(lines))
    (folder / "ascii_names.txt").write_text("\n".join(lines) + "\n")
    (folder / "category_labels.txt").write_text(
        "\n".join(f"{k + 1} {language}" for k, language in enumerate(LANGUAGES18)) + "\n")
    (folder / "Validation_Inds.txt").write_text(" ".join(map(str, validation)) + " ")
    for language, names in by_class.items():
        (Path(root) / "names" / f"{language}.txt").write_text("\n".join(names) + "\n",
                                                             encoding="utf-8")
    return {"lines": lines, "validation": validation}


@pytest.fixture
def fake_surnames(tmp_path):
    """A manual dir with tiny generated surname files, and an empty TFDS data dir."""
    manual = tmp_path / "manual"
    files = write_fake_surnames(manual)
    return {"manual": str(manual), "tfds": str(tmp_path / "tfds"), **files}


@contextlib.contextmanager
def tfds_data_dir(path):
    """`TFDS_DATA_DIR` set to `path` while the block runs, then as it was."""
    old = os.environ.get("TFDS_DATA_DIR")
    os.environ["TFDS_DATA_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TFDS_DATA_DIR", None)
        else:
            os.environ["TFDS_DATA_DIR"] = old


def write_idx(path, array):
    """An idx file of unsigned bytes, gzip-compressed, as MNIST's."""
    array = np.asarray(array, np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}i", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def pytest_collection_modifyitems(config, items):
    """Notebooks need the real data: skip them with a reason when it is absent."""
    if shared_data_dir() is not None:
        return
    skip = pytest.mark.skip(reason="notebooks need the real data: set KCOURSE_DATA_DIR")
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(skip)


# the notebooks (run by nbmake in a kernel that inherits this environment) go quick
os.environ.setdefault("KCOURSE_QUICK", "1")
if shared_data_dir():
    os.environ.setdefault("KCOURSE_DATA_DIR", shared_data_dir())


def write_random_mnist(root, num_train, num_test, seed=0, labels="random"):
    """Tiny MNIST idx files of random 28x28 images (each unique), labelled at random
    0..9 (`labels="random"`) or 0, 1, ..., 9, 0, ... in turn (`"cycle"`); returns
    `{"train": (images, labels), "test": ...}`."""
    from kcourse.data.mnist_canvas import MNIST_FILES

    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n in (("train", num_train), ("test", num_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        ids = rng.integers(0, 10, size=n) if labels == "random" else np.arange(n) % 10
        write_idx(root / MNIST_FILES[split][0], images)
        write_idx(root / MNIST_FILES[split][1], ids)
        data[split] = (images, ids)
    return data
