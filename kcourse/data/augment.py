"""Augmentation of training batches: functions `(x_batch, y_batch) -> (x_batch, y_batch)`
over flattened 32x32x3 images, drawing from a seeded `tf.random.Generator`."""

import tensorflow as tf

DIM = 32 * 32 * 3


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
