"""Batches for training and evaluation.

`batched(dataset, batch_size, shuffle_seed)` is the tf.data pipeline a Keras user
expects: a dataset of batches, reshuffled every epoch when seeded. `InMemoryBatches`
is the same sequence of batches as an explicit value that `kcourse.training.fit`
receives: the examples as tensors plus the epoch orders, so that the trainer gathers
each batch inside its compiled step (no tf.data hand-off per update, which costs more
than a small model's update) and can restart at any epoch.
"""

import dataclasses

import tensorflow as tf

from kcourse.data.orders import uniform_order_batches, uniform_orders


def materialize(dataset):
    """The whole (finite, unbatched) dataset as one tensor per component."""
    n = int(dataset.cardinality())
    if n < 1:
        raise ValueError("Shuffling needs a finite dataset of known, non-zero size.")
    return next(iter(dataset.batch(n)))


@dataclasses.dataclass
class InMemory:
    """An unbatched dataset held as tensors: `.x`, `.y` and the dataset over them
    (`.dataset`), one copy of the data (a `cache()` plus the tensors that shuffling
    gathers from would hold two)."""

    x: tf.Tensor
    y: tf.Tensor

    @property
    def dataset(self):
        return tf.data.Dataset.from_tensor_slices((self.x, self.y))

    def cardinality(self):
        return tf.constant(int(self.x.shape[0]), tf.int64)

    def take(self, n):
        return self.dataset.take(n)

    def batch(self, batch_size):
        return self.dataset.batch(batch_size)

    def __len__(self):
        return int(self.x.shape[0])


def in_memory(dataset):
    """The dataset read once into tensors (an `InMemory`)."""
    return InMemory(*materialize(dataset))


def _tensors(data):
    return (data.x, data.y) if isinstance(data, InMemory) else materialize(data)


def _dataset(data):
    return data.dataset if isinstance(data, InMemory) else data


def batched(data, batch_size, shuffle_seed=None, augment=None):
    """Batch and prefetch `(x, y)` examples, shuffling every epoch if seeded.

    Without a seed the examples keep their order (evaluation). With a seed the whole
    split is reshuffled at every epoch (every new iteration), deterministically: the
    split is held in memory as one tensor, tf.data shuffles the example *indices*, and
    each batch is gathered in one operation, several times faster than shuffling the
    examples one by one.

    Args:
        data: an unbatched, finite dataset of `(x, y)`, or an `InMemory`.
        batch_size: examples per batch; the last batch may be smaller.
        shuffle_seed: None for the stored order, else the int seed of the shuffling.
        augment: optional function `(x_batch, y_batch) -> (x_batch, y_batch)` applied to
            every training batch after shuffling (e.g. `random_flip(seed)`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if shuffle_seed is None:
        return _dataset(data).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    x, y = _tensors(data)
    order = uniform_order_batches(int(x.shape[0]), batch_size, shuffle_seed)
    batches = order.map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
    if augment is not None:
        batches = batches.map(augment)  # sequential: random draws in a fixed order
    return batches.prefetch(tf.data.AUTOTUNE)


class InMemoryBatches(tf.Module):
    """Shuffled training batches as a value: the examples, the batch size, the epoch
    orders (`kcourse.data.orders.uniform_orders`) and an optional augmentation, the
    same batches that `batched(data, batch_size, seed, augment)` yields. Pass it to
    `kcourse.training.fit` as the training data: it gathers (and augments) every batch
    inside its compiled step, and a resumed run continues exactly where it stopped (the
    augmentation's random state is checkpointed with it).

    Args:
        data: an `InMemory` (or an unbatched finite dataset of `(x, y)`).
        batch_size: examples per batch; the last batch of an epoch may be smaller.
        seed: the shuffle seed.
        augment: optional augmentation (`kcourse.data.augment`), applied to each batch.
        sampler: optional epoch-order sampler with `.size` (examples per epoch) and
            `.orders(seed)` (an endless dataset of index vectors), e.g.
            `kcourse.data.orders.BalancedSampler(labels)`; default: every example once
            per epoch in a uniformly random order.
    """

    def __init__(self, data, batch_size, seed, augment=None, sampler=None):
        super().__init__(name="in_memory_batches")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.x, self.y = _tensors(data)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.augment = augment
        self.sampler = sampler
        labels = getattr(sampler, "labels", None)
        if labels is not None and len(labels) != int(self.x.shape[0]):
            raise ValueError(f"the sampler has labels of {len(labels)} examples, the data "
                             f"{int(self.x.shape[0])}: give it the labels of this data.")
        self.size = int(self.x.shape[0]) if sampler is None else int(sampler.size)
        self.steps_per_epoch = -(-self.size // self.batch_size)

    def orders(self, start_epoch=0):
        """An iterator over the epoch orders, from epoch `start_epoch` on."""
        orders = (uniform_orders(self.size, self.seed) if self.sampler is None
                  else self.sampler.orders(self.seed)).skip(start_epoch)
        options = tf.data.Options()
        options.autotune.enabled = False
        return iter(orders.prefetch(1).with_options(options))

    def as_dataset(self):
        """The same batches as a tf.data dataset (with a fresh copy of no augmentation
        state: use it instead of, not beside, this source). With a sampler, one endless
        dataset of all the epochs' batches."""
        if self.sampler is None:
            return batched(InMemory(self.x, self.y), self.batch_size, self.seed,
                           self.augment)
        x, y = self.x, self.y
        batches = self.sampler.orders(self.seed).flat_map(
            lambda order: tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size))
        batches = batches.map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
        if self.augment is not None:
            batches = batches.map(self.augment)
        return batches.prefetch(tf.data.AUTOTUNE)

    def in_order(self, batch_size=None):
        """The examples in their stored order, batched (to evaluate on)."""
        return batched(InMemory(self.x, self.y), batch_size or self.batch_size)

    # the trainer's interface (kcourse.training.steps)
    def epoch_data(self, orders):
        return next(orders)

    def batch(self, order, first, k):
        start = (first + k) * self.batch_size
        i = order[start:start + self.batch_size]
        x, y = tf.gather(self.x, i), tf.gather(self.y, i)
        if self.augment is not None:
            x, y = self.augment(x, y)
        return x, y, None, None

    def after_update(self, context, loss, states):
        pass
