"""The `kcourse_mnist_digits` builder: MNIST itself, split as the canvases are (the
seeded 90/10 partition of the training images, every test image), on tiny generated
idx files."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import tfds_data_dir, write_random_mnist
from kcourse.data.mnist_canvas import (MNIST_FILES, SEED, DataNotFoundError,
                                       KcourseMnistDigits, load_mnist_canvases,
                                       mnist_canvas_builder, mnist_pools)

NUM_TRAIN, NUM_TEST = 50, 13


def write_fake_mnist(root, num_train=NUM_TRAIN, num_test=NUM_TEST, seed=0):
    """Tiny MNIST idx files: random 28x28 images (each unique) and random labels 0..9."""
    return write_random_mnist(root, num_train, num_test, seed)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist_digits")
    data = write_fake_mnist(root / "manual")
    with tfds_data_dir(root / "tfds_default"):  # nothing lands in the user's TFDS dir
        yield {"manual": str(root / "manual"), "tfds": str(root / "tfds"), "data": data,
               "root": root}


def split_examples(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def test_splits_are_the_partition_and_every_image_its_source(fake):
    builder = mnist_canvas_builder("digits", fake["manual"], fake["tfds"])
    assert isinstance(builder, KcourseMnistDigits)
    assert builder.info.name == "kcourse_mnist_digits"
    assert builder.info.supervised_keys == ("image", "label")
    pools = mnist_pools(NUM_TRAIN, NUM_TEST)
    assert [len(pools[s]) for s in ("train", "validation", "test")] == [45, 5, 13]
    sizes = {split: info.num_examples for split, info in builder.info.splits.items()}
    assert sizes == {"train": 45, "validation": 5, "test": 13}
    seen = {}
    for split in ("train", "validation", "test"):
        images, labels = fake["data"]["test" if split == "test" else "train"]
        examples = split_examples(builder, split)
        indices = np.array([e["mnist_index"] for e in examples])
        # the split's pool, in its (sorted) order
        np.testing.assert_array_equal(indices, pools[split])
        for example in examples:
            source = example["mnist_index"]
            assert example["image"].shape == (28, 28, 1) and example["image"].dtype == np.uint8
            np.testing.assert_array_equal(example["image"][..., 0], images[source])
            assert example["label"] == labels[source]
        seen[split] = set(indices.tolist())
    assert not seen["train"] & seen["validation"]  # a partition of the training images
    assert seen["train"] | seen["validation"] == set(range(NUM_TRAIN))
    assert seen["test"] == set(range(NUM_TEST))


def test_load_as_arrays_limit_and_seed(fake, tmp_path):
    full = load_mnist_canvases("digits", fake["manual"], fake["tfds"])
    assert full.task == "digits"
    assert full.sizes() == {"train": 45, "validation": 5, "test": 13}
    pools = mnist_pools(NUM_TRAIN, NUM_TEST)
    for split in full.splits:
        images, labels = fake["data"]["test" if split == "test" else "train"]
        x, y = full.x[split], full.y[split]
        assert x.dtype == np.float32 and x.shape == (len(pools[split]), 28, 28, 1)
        assert y.dtype == np.float32 and y.shape == (len(pools[split]),)
        np.testing.assert_allclose(x[..., 0], images[pools[split]] / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(y, labels[pools[split]])

    quick = load_mnist_canvases("digits", fake["manual"], str(tmp_path / "a"), limit=7)
    assert quick.sizes() == {"train": 7, "validation": 5, "test": 7}
    for split in quick.splits:  # a prefix of the full build
        n = len(quick.y[split])
        np.testing.assert_array_equal(quick.x[split], full.x[split][:n])
        np.testing.assert_array_equal(quick.y[split], full.y[split][:n])

    other = mnist_canvas_builder("digits", fake["manual"], str(tmp_path / "b"), seed=SEED + 1)
    other_pools = mnist_pools(NUM_TRAIN, NUM_TEST, SEED + 1)
    assert not np.array_equal(other_pools["validation"], pools["validation"])
    got = [e["mnist_index"] for e in split_examples(other, "validation")]
    np.testing.assert_array_equal(got, other_pools["validation"])


def test_missing_files_offline_give_a_clear_error(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("KCOURSE_OFFLINE", "1")
    partial = tmp_path / "partial"
    write_fake_mnist(partial, 6, 3)
    (partial / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError) as error:
        mnist_canvas_builder("digits", str(partial), str(tmp_path / "tfds"))
    message = str(error.value)
    assert "train-labels-idx1-ubyte.gz" in message and "t10k-images-idx3-ubyte.gz" in message
    assert "KCOURSE_DATA_DIR" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="KCOURSE_DATA_DIR"):
        load_mnist_canvases("digits", str(tmp_path / "empty"), str(tmp_path / "tfds"))
    with pytest.raises(ValueError, match="limit"):
        mnist_canvas_builder("digits", fake["manual"], fake["tfds"], limit=0)
