import time

import numpy as np
import pytest
import tensorflow as tf

from kcourse.data import (DataNotFoundError, KcourseCifar10, batched, cifar10_builder,
                          load_cifar10)
from kcourse.data.splits import _take


def hwc(row):
    """The official row layout (R, G, B planes) as a 32x32x3 image."""
    return row.reshape(3, 32, 32).transpose(1, 2, 0)


def test_builder_keeps_batches_as_splits_in_original_order(fake_cifar):
    builder = cifar10_builder(fake_cifar["manual"], fake_cifar["tfds"])
    assert set(builder.info.splits) == {"data_batch_1", "data_batch_2", "data_batch_3",
                                        "data_batch_4", "data_batch_5", "test_batch"}
    assert builder.info.features["image"].shape == (32, 32, 3)
    for name, (data, labels) in fake_cifar["batches"].items():
        ds = builder.as_dataset(split=name, shuffle_files=False)
        examples = list(ds.as_numpy_iterator())
        assert [e["label"] for e in examples] == labels
        for example, row in zip(examples, data):
            assert example["image"].dtype == np.uint8
            np.testing.assert_array_equal(example["image"], hwc(row))


def test_pipeline_standardizes_with_training_statistics(fake_cifar):
    splits = load_cifar10("a1", fake_cifar["manual"], fake_cifar["tfds"])
    raw_train = fake_cifar["batches"]["data_batch_1"][0]
    raw_val, val_labels = fake_cifar["batches"]["data_batch_2"]
    scaled = np.stack([hwc(r).reshape(-1) for r in raw_train]) / 255.0
    mean, std = scaled.mean(0), scaled.std(0)
    np.testing.assert_allclose(splits.mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(splits.std, std, rtol=1e-5, atol=1e-6)
    x_train, _ = splits.numpy("train")
    np.testing.assert_allclose(x_train.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(x_train.std(0), 1, atol=1e-3)
    x_val, y_val = splits.numpy("val")
    expected = (np.stack([hwc(r).reshape(-1) for r in raw_val]) / 255.0 - mean) / std
    np.testing.assert_allclose(x_val, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(y_val.argmax(1), val_labels)
    assert x_val.shape == (12, 3072) and y_val.shape == (12, 10)
    assert splits.sizes() == {"train": 12, "val": 12, "test": 12}


def test_images_stay_32x32x3_until_a_model_flattens_them(fake_cifar):
    vectors = load_cifar10("a1", fake_cifar["manual"], fake_cifar["tfds"])
    images = load_cifar10("a1", fake_cifar["manual"], fake_cifar["tfds"], flatten=False)
    x, y = images.numpy("val")
    assert x.shape == (12, 32, 32, 3) and images.mean.shape == (3072,)
    np.testing.assert_array_equal(x.reshape(12, -1), vectors.numpy("val")[0])
    np.testing.assert_array_equal(y, vectors.numpy("val")[1])


def test_limit_keeps_the_first_examples(fake_cifar):
    splits = load_cifar10("a1", fake_cifar["manual"], fake_cifar["tfds"], limit=5)
    assert splits.sizes() == {"train": 5, "val": 5, "test": 5}


def test_take_slices_split_expressions():
    assert _take("data_batch_1", None) == "data_batch_1"
    assert _take("data_batch_1", 300) == "data_batch_1[0:300]"
    assert _take("data_batch_1+data_batch_2", 10500) == "data_batch_1[0:10000]+data_batch_2[0:500]"
    assert _take("data_batch_5[5000:]", 10) == "data_batch_5[5000:5010]"


def test_batched_reshuffles_every_epoch_reproducibly():
    data = tf.data.Dataset.range(50).map(lambda i: (i, i))

    def epochs(ds, n=2):
        return [np.concatenate([x.numpy() for x, _ in ds]) for _ in range(n)]

    first, second = epochs(batched(data, 8, shuffle_seed=3))
    assert sorted(first) == list(range(50)) and not np.array_equal(first, second)
    again = epochs(batched(data, 8, shuffle_seed=3))
    np.testing.assert_array_equal(again[0], first)
    np.testing.assert_array_equal(again[1], second)
    np.testing.assert_array_equal(epochs(batched(data, 8), 1)[0], np.arange(50))
    with pytest.raises(ValueError, match="batch_size"):
        batched(data, 0)


def test_offline_without_data_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("KCOURSE_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    start = time.time()
    with pytest.raises(DataNotFoundError, match="KCOURSE_DATA_DIR") as error:
        cifar10_builder(str(tmp_path / "empty"), str(tmp_path / "tfds"))
    assert time.time() - start < 30
    assert "--data-dir" in str(error.value) and "cifar-10-batches-py" in str(error.value)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        cifar10_builder(str(tmp_path / "nowhere"), str(tmp_path / "tfds"))


def test_unknown_preset():
    with pytest.raises(ValueError, match="Unknown split preset"):
        load_cifar10("b2")


def test_real_presets_have_the_course_sizes(real_data_dir):
    for preset, sizes in {"a1": (10000, 10000), "search": (45000, 5000),
                          "full": (49000, 1000)}.items():
        splits = load_cifar10(preset, real_data_dir)
        assert splits.sizes() == {"train": sizes[0], "val": sizes[1], "test": 10000}
    builder = cifar10_builder(real_data_dir)
    first = next(iter(builder.as_dataset(split="data_batch_1", shuffle_files=False)))
    assert int(first["label"]) == 6  # the first image of data_batch_1 is a frog
    assert isinstance(builder, KcourseCifar10)
