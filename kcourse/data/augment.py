"""Augmentation of training batches: callables `(x_batch, y_batch) -> (x_batch, y_batch)`
over flattened 32x32x3 images (the course's MLPs) or image batches `(n, h, w, c)` (the
ConvNets; returned in the shape they came in), drawing from a seeded
`tf.random.Generator`.

Each is a `tf.Module`, so its generator's state is checkpointed with the training
source that applies it (`kcourse.data.InMemoryBatches(..., augment=...)`): a resumed
run draws what an uninterrupted one would.
"""

import tensorflow as tf

DIM = 32 * 32 * 3
SIZE = 32


def _images(x):
    """A batch as images `(n, h, w, c)`: flattened vectors are 32x32x3 images."""
    return tf.reshape(x, [-1, SIZE, SIZE, 3]) if x.shape.rank == 2 else x


class RandomFlip(tf.Module):
    """Flip each image of a batch left-right with probability 1/2.

    Args:
        seed: seed of the draws.
    """

    def __init__(self, seed):
        super().__init__(name="random_flip")
        self.rng = tf.random.Generator.from_seed(seed)

    def __call__(self, x, y):
        images = _images(x)
        flip = self.rng.uniform([tf.shape(images)[0], 1, 1, 1]) < 0.5
        images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        return tf.reshape(images, tf.shape(x)), y


class RandomShift(tf.Module):
    """Translate each image of a batch by a random integer offset in [-pixels, pixels]
    along each axis (a random crop of the padded image), filling the border with zeros
    (the mean image, after standardization) or, with `mode="reflect"`, the image's
    mirror.

    Args:
        seed: seed of the draws.
        pixels: the largest shift.
        mode: `"constant"` (zeros) or `"reflect"` (needs `pixels` below the image's
            size).
    """

    def __init__(self, seed, pixels, mode="constant"):
        super().__init__(name="random_shift")
        if mode not in ("constant", "reflect"):
            raise ValueError(f"mode must be 'constant' or 'reflect', got {mode!r}.")
        self.rng = tf.random.Generator.from_seed(seed)
        self.pixels = int(pixels)
        self.mode = mode

    def __call__(self, x, y):
        p = self.pixels
        images = _images(x)
        n, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
        padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode=self.mode.upper())
        offsets = self.rng.uniform([n, 2], 0, 2 * p + 1, dtype=tf.int32)
        rows = offsets[:, :1] + tf.range(height)[None]  # (n, height) source rows
        cols = offsets[:, 1:] + tf.range(width)[None]
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, cols, axis=2, batch_dims=1)
        return tf.reshape(images, tf.shape(x)), y


class RandomCutout(tf.Module):
    """Cutout (DeVries & Taylor, 2017): set a `size` x `size` square of each image to 0
    (the mean, after standardization), its centre uniform over the image (the square
    may be clipped by the border).

    Args:
        seed: seed of the draws.
        size: the side of the square, in pixels.

    Reference:
        DeVries, T. and Taylor, G. W. Improved Regularization of Convolutional Neural
        Networks with Cutout. arXiv:1708.04552, 2017.
    """

    def __init__(self, seed, size):
        super().__init__(name="random_cutout")
        self.rng = tf.random.Generator.from_seed(seed)
        self.size = int(size)

    def __call__(self, x, y):
        images = _images(x)
        n, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
        centre = self.rng.uniform([n, 2], 0, 1) * tf.constant([height, width], tf.float32)
        centre = tf.cast(centre, tf.int32)
        top, left = centre[:, :1] - self.size // 2, centre[:, 1:] - self.size // 2
        rows, cols = tf.range(height)[None], tf.range(width)[None]
        inside_r = (rows >= top) & (rows < top + self.size)  # (n, height)
        inside_c = (cols >= left) & (cols < left + self.size)
        hole = inside_r[:, :, None, None] & inside_c[:, None, :, None]
        images = tf.where(hole, tf.zeros_like(images), images)
        return tf.reshape(images, tf.shape(x)), y


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


def random_shift(seed, pixels, mode="constant"):
    """An augmentation: `RandomShift(seed, pixels, mode)`."""
    return RandomShift(seed, pixels, mode)


def random_cutout(seed, size):
    """An augmentation: `RandomCutout(seed, size)`."""
    return RandomCutout(seed, size)


def chain(*augments):
    """One augmentation applying several in turn (None entries are skipped; None when
    none is left)."""
    augments = [a for a in augments if a is not None]
    return Chain(augments) if augments else None
