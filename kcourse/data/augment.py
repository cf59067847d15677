"""Augmentation of training batches: callables `(x_batch, y_batch) -> (x_batch, y_batch)`
over flattened 32x32x3 images, drawing from a seeded `tf.random.Generator`.

Each is a `tf.Module`, so its generator's state is checkpointed with the training
source that applies it (`kcourse.data.InMemoryBatches(..., augment=...)`): a resumed
run draws what an uninterrupted one would.
"""

import tensorflow as tf

DIM = 32 * 32 * 3
SIZE = 32


class RandomFlip(tf.Module):
    """Flip each image of a batch left-right with probability 1/2.

    Args:
        seed: seed of the draws.
    """

    def __init__(self, seed):
        super().__init__(name="random_flip")
        self.rng = tf.random.Generator.from_seed(seed)

    def __call__(self, x, y):
        images = tf.reshape(x, [-1, SIZE, SIZE, 3])
        flip = self.rng.uniform([tf.shape(images)[0], 1, 1, 1]) < 0.5
        images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        return tf.reshape(images, [-1, DIM]), y


class RandomShift(tf.Module):
    """Translate each image of a batch by a random integer offset in [-pixels, pixels]
    along each axis, filling the border with zeros (the mean image, after
    standardization).

    Args:
        seed: seed of the draws.
        pixels: the largest shift.
    """

    def __init__(self, seed, pixels):
        super().__init__(name="random_shift")
        self.rng = tf.random.Generator.from_seed(seed)
        self.pixels = int(pixels)

    def __call__(self, x, y):
        p = self.pixels
        images = tf.reshape(x, [-1, SIZE, SIZE, 3])
        n = tf.shape(images)[0]
        padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
        offsets = self.rng.uniform([n, 2], 0, 2 * p + 1, dtype=tf.int32)
        rows = offsets[:, :1] + tf.range(SIZE)[None]  # (n, 32) source rows
        cols = offsets[:, 1:] + tf.range(SIZE)[None]
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, cols, axis=2, batch_dims=1)
        return tf.reshape(images, [-1, DIM]), y


class Chain(tf.Module):
    """Several augmentations applied in turn."""

    def __init__(self, augments):
        super().__init__(name="chain")
        self.augments = list(augments)

    def __call__(self, x, y):
        for augment in self.augments:
            x, y = augment(x, y)
        return x, y


def random_flip(seed):
    """An augmentation: `RandomFlip(seed)`."""
    return RandomFlip(seed)


def random_shift(seed, pixels):
    """An augmentation: `RandomShift(seed, pixels)`."""
    return RandomShift(seed, pixels)


def chain(*augments):
    """One augmentation applying several in turn (None entries are skipped; None when
    none is left)."""
    augments = [a for a in augments if a is not None]
    return Chain(augments) if augments else None
