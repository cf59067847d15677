"""The course's CIFAR-10 preprocessing as a tf.data pipeline.

Images are flattened to 3072 values (HWC order, as Keras lays images out), scaled to
[0, 1], standardized feature-wise with the mean and std of the *training* split, and
labels are one-hot over the 10 classes.
"""

import dataclasses
import os
import weakref

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kcourse.data.cifar10 import CLASS_NAMES, ENV_VAR, KcourseCifar10
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
    """The TFDS manual directory: the argument, else `$KCOURSE_DATA_DIR`, else None."""
    data_dir = data_dir or os.environ.get(ENV_VAR) or None
    return os.path.abspath(os.path.expanduser(data_dir)) if data_dir else None


def cifar10_builder(data_dir=None, tfds_dir=None):
    """The prepared `kcourse_cifar10` builder, preparing it from `data_dir` if needed.

    Args:
        data_dir: the TFDS manual directory (holds `cifar-10-batches-py/`); default
            `$KCOURSE_DATA_DIR`; when neither is set, the official archive is downloaded.
        tfds_dir: where TFDS keeps prepared datasets (default: TFDS's own,
            `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
    """
    builder = KcourseCifar10(data_dir=tfds_dir)
    if not builder.is_prepared():
        manual = resolve_data_dir(data_dir)
        if manual is not None and not os.path.isdir(manual):
            raise DataNotFoundError(
                f"The data directory {manual} does not exist. Pass an existing directory "
                f"with --data-dir PATH or {ENV_VAR}=PATH.")
        config = tfds.download.DownloadConfig(manual_dir=manual)
        builder.download_and_prepare(download_config=config)
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


_MATERIALIZED = weakref.WeakKeyDictionary()  # freed with the dataset


def materialize(dataset):
    """The whole (finite, unbatched) dataset as tensors, computed once per dataset."""
    if dataset not in _MATERIALIZED:
        n = int(dataset.cardinality())
        if n < 1:
            raise ValueError("Shuffling needs a finite dataset of known, non-zero size.")
        _MATERIALIZED[dataset] = next(iter(dataset.batch(n)))
    return _MATERIALIZED[dataset]


def in_memory(dataset):
    """The dataset read once into one tensor per component, as an unbatched dataset
    over those tensors. It holds a single copy of the data (a `cache()` plus the
    tensors that shuffling gathers from would hold two)."""
    tensors = materialize(dataset)
    result = tf.data.Dataset.from_tensor_slices(tensors)
    _MATERIALIZED[result] = tensors
    return result


def batched(dataset, batch_size, shuffle_seed=None, augment=None):
    """Batch and prefetch a dataset of (x, y) examples, shuffling every epoch if seeded.

    Without a seed the examples keep their order (evaluation). With a seed the whole
    split is reshuffled at every epoch (every new iteration), deterministically: the
    split is held in memory as one tensor, tf.data shuffles the example *indices*, and
    each batch is gathered in one operation, which is several times faster than
    shuffling the 3072-value examples one by one.

    Args:
        dataset: unbatched, finite dataset of `(x, y)` (cached upstream).
        batch_size: examples per batch; the last batch may be smaller.
        shuffle_seed: None for the stored order, else the int seed of the shuffling.
        augment: optional function `(x_batch, y_batch) -> (x_batch, y_batch)` applied to
            every training batch after shuffling (e.g. `random_flip(seed)`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if shuffle_seed is None:
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    x, y = materialize(dataset)
    n = int(x.shape[0])
    order = tf.data.Dataset.range(n).shuffle(n, seed=shuffle_seed,
                                             reshuffle_each_iteration=True)
    batches = order.batch(batch_size).map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
    if augment is not None:
        batches = batches.map(augment)  # sequential: random draws in a fixed order
    batches = batches.prefetch(tf.data.AUTOTUNE)
    if augment is None:
        _EPOCH_ORDERS[batches] = InMemoryBatches(x, y, batch_size,
                                                 order.batch(n).repeat().prefetch(1))
    return batches


@dataclasses.dataclass
class InMemoryBatches:
    """What a shuffled, unaugmented `batched` dataset is made of: the examples as
    tensors, the batch size, and an endless dataset of epoch orders (one permutation
    of all indices per element, the same sequence the batches follow)."""

    x: tf.Tensor
    y: tf.Tensor
    batch_size: int
    orders: tf.data.Dataset


_EPOCH_ORDERS = weakref.WeakKeyDictionary()


def in_memory_batches(dataset):
    """The `InMemoryBatches` of a dataset made by `batched(..., shuffle_seed=s)` without
    augmentation, else None. A trainer can then gather each batch inside its compiled
    step from one permutation per epoch, the same batches without a tf.data hand-off
    per step (which costs more than a small model's update)."""
    return _EPOCH_ORDERS.get(dataset)


@dataclasses.dataclass
class Cifar10Splits:
    """Preprocessed CIFAR-10 splits: unbatched, in-memory `(x, y)` datasets.

    `x` is a float32 vector of 3072 standardized values, `y` a one-hot float32 vector.
    `mean` and `std` are the training split's statistics (needed to export a model
    that takes raw images).
    """

    preset: str
    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    mean: np.ndarray
    std: np.ndarray
    class_names: tuple = CLASS_NAMES

    def sizes(self):
        return {name: int(getattr(self, name).cardinality()) for name in ("train", "val", "test")}

    def numpy(self, split):
        """The whole split as NumPy arrays `(x, y)`."""
        return next(iter(tfds.as_numpy(getattr(self, split).batch(1 << 20))))


def load_cifar10(preset="a1", data_dir=None, tfds_dir=None, limit=None):
    """Load CIFAR-10 with the course's preprocessing for a named split preset.

    Args:
        preset: `"a1"` (train batch 1, val batch 2, test), `"search"` (45,000 / 5,000),
            or `"full"` (49,000 / 1,000); the test split is always `test_batch`.
        data_dir: TFDS manual directory (see `cifar10_builder`).
        tfds_dir: TFDS prepared-data directory.
        limit: keep only the first `limit` examples of every split (smoke tests).

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
    standardize = lambda x, y: ((x - mean) / std, y)  # noqa: E731
    splits = {name: in_memory(ds.map(standardize, num_parallel_calls=tf.data.AUTOTUNE))
              for name, ds in vectors.items()}
    return Cifar10Splits(preset=preset, mean=mean, std=std, **splits)


def random_flip(seed):
    """An `augment` function: flip each image of a batch left-right with probability 1/2."""
    rng = tf.random.Generator.from_seed(seed)

    def augment(x, y):
        images = tf.reshape(x, [-1, 32, 32, 3])
        flip = rng.uniform([tf.shape(images)[0], 1, 1, 1]) < 0.5
        images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        return tf.reshape(images, [-1, DIM]), y

    return augment


def random_shift(seed, pixels):
    """An `augment` function: translate each image of a batch by a random integer
    offset in [-pixels, pixels] along each axis, filling the border with zeros (the
    mean image, after standardization)."""
    rng = tf.random.Generator.from_seed(seed)
    size = 32

    def augment(x, y):
        images = tf.reshape(x, [-1, size, size, 3])
        n = tf.shape(images)[0]
        padded = tf.pad(images, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]])
        offsets = rng.uniform([n, 2], 0, 2 * pixels + 1, dtype=tf.int32)
        rows = offsets[:, :1] + tf.range(size)[None]  # (n, 32) source rows
        cols = offsets[:, 1:] + tf.range(size)[None]
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, cols, axis=2, batch_dims=1)
        return tf.reshape(images, [-1, DIM]), y

    return augment


def chain(*augments):
    """One `augment` function applying several in turn (None entries are skipped)."""
    augments = [a for a in augments if a is not None]
    if not augments:
        return None

    def augment(x, y):
        for fn in augments:
            x, y = fn(x, y)
        return x, y

    return augment
