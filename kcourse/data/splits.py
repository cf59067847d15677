"""The course's CIFAR-10 splits and preprocessing, as tf.data datasets held in memory.

Images are flattened to 3072 values (HWC order, as Keras lays images out), scaled to
[0, 1], standardized feature-wise with the mean and std of the *training* split, and
labels are one-hot over the 10 classes. Batch them with `kcourse.data.batched` (or
`InMemoryBatches` for training).
"""

import dataclasses
import os
import pickle

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kcourse import console
from kcourse.data.cifar10 import CLASS_NAMES, ENV_VAR, KcourseCifar10
from kcourse.data.batching import InMemory, in_memory
from kcourse.errors import DataNotFoundError

_ALL_TRAIN = "data_batch_1+data_batch_2+data_batch_3+data_batch_4"
PRESETS = {
    "a1": {"train": "data_batch_1", "val": "data_batch_2", "test": "test_batch"},
    "search": {"train": _ALL_TRAIN + "+data_batch_5[:5000]", "val": "data_batch_5[5000:]",
               "test": "test_batch"},
    "full": {"train": _ALL_TRAIN + "+data_batch_5[:9000]", "val": "data_batch_5[9000:]",
             "test": "test_batch"},
}
NUM_CLASSES = 10
DIM = 32 * 32 * 3


def resolve_data_dir(data_dir=None):
    """The TFDS manual directory: the argument, else `$KCOURSE_DATA_DIR`, else None.
    A directory given that is missing or a file is an error (`DataNotFoundError`), even
    when TFDS holds a prepared copy of the data already."""
    source = "--data-dir" if data_dir else ENV_VAR
    data_dir = data_dir or os.environ.get(ENV_VAR) or None
    if not data_dir:
        return None
    path = os.path.abspath(os.path.expanduser(data_dir))
    if os.path.isfile(path):
        raise DataNotFoundError(f"{source} {path} is a file; give the directory that holds "
                                "the datasets (e.g. cifar-10-batches-py/)")
    if not os.path.isdir(path):
        raise DataNotFoundError(f"The data directory {path} ({source}) does not exist. Pass "
                                f"an existing directory with --data-dir PATH or "
                                f"{ENV_VAR}=PATH.")
    return path


def cifar10_builder(data_dir=None, tfds_dir=None):
    """The prepared `kcourse_cifar10` builder, preparing it from `data_dir` if needed.

    Args:
        data_dir: the TFDS manual directory (holds `cifar-10-batches-py/`); default
            `$KCOURSE_DATA_DIR`; when neither is set, the official archive is downloaded.
        tfds_dir: where TFDS keeps prepared datasets (default: TFDS's own,
            `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
    """
    manual = resolve_data_dir(data_dir)
    builder = KcourseCifar10(data_dir=tfds_dir)
    if not builder.is_prepared():
        config = tfds.download.DownloadConfig(manual_dir=manual)
        try:
            with console.preparing(builder.name):
                builder.download_and_prepare(download_config=config)
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as error:
            raise DataNotFoundError(f"CIFAR-10 in {manual} cannot be read ({type(error).__name__}"
                                    f": {str(error)[:200]}); replace the damaged files with "
                                    "the official cifar-10-batches-py/") from None
    return builder


def _to_vectors(image, label):
    x = tf.reshape(tf.cast(image, tf.float32) / 255.0, [DIM])
    return x, tf.one_hot(label, NUM_CLASSES)


def _take(split, limit):
    """Limit a TFDS split expression to its first `limit` examples (quick runs)."""
    if limit is None:
        return split
    parts, kept = [], 0
    for part in split.split("+"):
        if kept >= limit:
            break
        name, _, rng = part.partition("[")
        start, stop = 0, 10000
        if rng:
            a, _, b = rng.rstrip("]").partition(":")
            start, stop = int(a or 0), int(b or 10000)
        stop = min(stop, start + limit - kept)
        parts.append(f"{name}[{start}:{stop}]")
        kept += stop - start
    return "+".join(parts)


def _stats(dataset):
    """Feature-wise mean and std (float64 accumulation) of a dataset of vectors."""
    total, total_sq, n = np.zeros(DIM), np.zeros(DIM), 0
    for x, _ in tfds.as_numpy(dataset.batch(5000)):
        x = x.astype(np.float64)
        total += x.sum(0)
        total_sq += (x * x).sum(0)
        n += len(x)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-8).astype(np.float32)


@dataclasses.dataclass
class Cifar10Splits:
    """Preprocessed CIFAR-10 splits, each an `InMemory` `(x, y)` (`.dataset` for tf.data).

    `x` is a float32 vector of 3072 standardized values (or a 32x32x3 image, see
    `load_cifar10(flatten=False)`), `y` a one-hot float32 vector.
    `mean` and `std` are the training split's statistics (needed to export a model
    that takes raw images).
    """

    preset: str
    train: InMemory
    val: InMemory
    test: InMemory
    mean: np.ndarray
    std: np.ndarray
    class_names: tuple = CLASS_NAMES

    def sizes(self):
        return {name: int(getattr(self, name).cardinality()) for name in ("train", "val", "test")}

    def numpy(self, split):
        """The whole split as NumPy arrays `(x, y)`."""
        data = getattr(self, split)
        return data.x.numpy(), data.y.numpy()


def load_cifar10(preset="a1", data_dir=None, tfds_dir=None, limit=None, flatten=True):
    """Load CIFAR-10 with the course's preprocessing for a named split preset.

    Args:
        preset: `"a1"` (train batch 1, val batch 2, test), `"search"` (45,000 / 5,000),
            or `"full"` (49,000 / 1,000); the test split is always `test_batch`.
        data_dir: TFDS manual directory (see `cifar10_builder`).
        tfds_dir: TFDS prepared-data directory.
        limit: keep only the first `limit` examples of every split (smoke tests).
        flatten: `x` as 3072-vectors in HWC order (the course's networks), or with
            `False` as 32x32x3 images (convolutional networks). The standardisation is
            the same; `mean` and `std` are 3072-vectors either way.

    Returns:
        A `Cifar10Splits`. Batch the datasets with `batched`.
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown split preset {preset!r}: use one of {', '.join(PRESETS)}.")
    builder = cifar10_builder(data_dir, tfds_dir)
    raw = {name: builder.as_dataset(split=_take(split, limit), as_supervised=True,
                                    shuffle_files=False)
           for name, split in PRESETS[preset].items()}
    vectors = {name: ds.map(_to_vectors, num_parallel_calls=tf.data.AUTOTUNE)
               for name, ds in raw.items()}
    mean, std = _stats(vectors["train"])
    shape = [DIM] if flatten else [32, 32, 3]
    splits = {name: in_memory(ds.map(lambda x, y: (tf.reshape((x - mean) / std, shape), y),
                                     num_parallel_calls=tf.data.AUTOTUNE))
              for name, ds in vectors.items()}
    return Cifar10Splits(preset=preset, mean=mean, std=std, **splits)
