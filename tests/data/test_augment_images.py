"""The augmentations on image batches `(n, h, w, c)` and on flattened 32x32x3 vectors:
shapes, what each image becomes (against NumPy), the statistics of the draws over a
large batch, seeding, chaining."""

import numpy as np
import pytest
import tensorflow as tf

from kcourse.data.augment import (Chain, RandomCutout, RandomFlip, RandomShift, chain,
                                  random_cutout, random_flip, random_shift)


def _images(shape, seed=0):
    """Random images with no zero pixel (so a zeroed pixel is a changed one) and all
    values distinct (so two different crops never coincide)."""
    return np.random.default_rng(seed).uniform(0.1, 1.0, size=shape).astype(np.float32)


def _run(augment, x, y=None):
    y = np.arange(len(x), dtype=np.int64) if y is None else y
    out_x, out_y = augment(tf.constant(x), tf.constant(y))
    np.testing.assert_array_equal(out_y.numpy(), y)  # labels pass through
    return out_x.numpy()


AUGMENTS = {
    "flip": lambda seed: RandomFlip(seed),
    "shift_constant": lambda seed: RandomShift(seed, 2),
    "shift_reflect": lambda seed: RandomShift(seed, 3, "reflect"),
    "cutout": lambda seed: RandomCutout(seed, 5),
    "chain": lambda seed: chain(random_flip(seed), random_shift(seed + 1, 2, "reflect"),
                                random_cutout(seed + 2, 4)),
}


def _chi_square(counts):
    counts = np.asarray(counts, np.float64).ravel()
    expected = counts.sum() / len(counts)
    return ((counts - expected) ** 2 / expected).sum()


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("name", AUGMENTS)
@pytest.mark.parametrize("shape", [(6, 9, 7, 3), (5, 28, 28, 1), (4, 3072)])
def test_shape_and_dtype_kept(name, shape):
    x = _images(shape)
    out = _run(AUGMENTS[name](0), x)
    assert out.shape == shape and out.dtype == np.float32
    assert not np.array_equal(out, x)  # something happened (with these seeds)


@pytest.mark.parametrize("name", AUGMENTS)
def test_flattened_vectors_are_32x32x3_images(name):
    """The old behaviour: a (n, 3072) batch is augmented as the (n, 32, 32, 3) images it
    holds, and comes back flattened."""
    images = _images((8, 32, 32, 3), seed=1)
    flat = _run(AUGMENTS[name](3), images.reshape(8, 3072))
    shaped = _run(AUGMENTS[name](3), images)
    np.testing.assert_array_equal(flat, shaped.reshape(8, 3072))


def test_in_a_tf_data_pipeline_with_an_unknown_batch_size():
    x = _images((10, 8, 8, 3))
    augment = chain(RandomFlip(0), RandomShift(1, 2, "reflect"), RandomCutout(2, 3))
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(10))).batch(4).map(augment)
    assert data.element_spec[0].shape.as_list() == [None, 8, 8, 3]
    batches = [b.numpy() for b, _ in data]
    assert [len(b) for b in batches] == [4, 4, 2]
    assert not np.array_equal(np.concatenate(batches), x)


# ----------------------------------------------------------------------------- flips

def test_flip_mirrors_about_half_of_the_images():
    n = 4000
    x = _images((n, 5, 4, 2))
    out = _run(RandomFlip(7), x)
    mirrored = x[:, :, ::-1, :]
    same = (out == x).all(axis=(1, 2, 3))
    flipped = (out == mirrored).all(axis=(1, 2, 3))
    assert (same ^ flipped).all()  # each image: itself or its left-right mirror
    bound = 4 * np.sqrt(n * 0.25)  # 4 binomial standard deviations
    assert abs(flipped.sum() - n / 2) < bound, flipped.sum()
    x1 = _images((3, 28, 28, 1), seed=4)  # 28x28x1 too: left-right is axis 2
    out1 = _run(RandomFlip(11), np.concatenate([x1] * 4))
    for image, original in zip(out1, np.concatenate([x1] * 4)):
        assert (np.array_equal(image, original)
                or np.array_equal(image, original[:, ::-1]))


# ----------------------------------------------------------------------------- shifts

def _offsets(out, x, pixels, mode):
    """The offset (row, column) in [0, 2p] of the crop of the padded original that each
    output image equals; every image must match exactly one."""
    p = pixels
    padded = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)], mode=mode)
    h, w = x.shape[1:3]
    matches = np.zeros((len(x), 2 * p + 1, 2 * p + 1), bool)
    for r in range(2 * p + 1):
        for c in range(2 * p + 1):
            crop = padded[:, r:r + h, c:c + w]
            matches[:, r, c] = (out == crop).all(axis=(1, 2, 3))
    assert (matches.sum(axis=(1, 2)) == 1).all(), "an image is no crop of its padded self"
    index = matches.reshape(len(x), -1).argmax(1)
    return np.stack([index // (2 * p + 1), index % (2 * p + 1)], 1)


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_shift_crops_the_padded_image_at_uniform_offsets(mode):
    n, p = 4000, 2
    x = _images((n, 6, 7, 2), seed=2)
    out = _run(RandomShift(5, p, mode), x)
    offsets = _offsets(out, x, p, mode)  # checks every image against np.pad
    counts = np.zeros((2 * p + 1, 2 * p + 1), int)
    np.add.at(counts, (offsets[:, 0], offsets[:, 1]), 1)
    assert counts.min() > 0
    # 25 equally likely offsets: chi-square with 24 degrees of freedom, P(> 60) ~ 6e-5
    assert _chi_square(counts) < 60, counts
    for axis in (0, 1):  # and each axis' offset uniform over 2p + 1 values
        assert _chi_square(np.bincount(offsets[:, axis], minlength=2 * p + 1)) < 25
    if mode == "constant":
        # the border of a shifted image is zeros: e.g. shift down by p -> the first
        # p rows are 0
        down = offsets[:, 0] == 0
        assert (out[down, :p] == 0).all()
        only_down = down & (offsets[:, 1] == p)  # no column shift: the rest is the image
        np.testing.assert_array_equal(out[only_down, p:], x[only_down, :-p])
    else:
        assert (out > 0).all()  # reflected pixels, never zeros


def test_reflect_mode_mirrors_the_border():
    """The reflected border repeats the pixels next to the edge, not the edge itself
    (np.pad's "reflect", not "symmetric"); 28x28x1 images included."""
    x = _images((200, 28, 28, 1), seed=3)
    p = 3
    out = _run(RandomShift(9, p, "reflect"), x)
    offsets = _offsets(out, x, p, "reflect")
    # an image shifted right and down by p: its first row and column mirror rows /
    # columns 1..p of the original
    corner = np.flatnonzero((offsets == 0).all(1))
    assert len(corner)
    i = corner[0]
    np.testing.assert_array_equal(out[i, :p, p:, 0], x[i, p:0:-1, :-p, 0])
    np.testing.assert_array_equal(out[i, p:, :p, 0], x[i, :-p, p:0:-1, 0])
    symmetric = np.pad(x[i], [(p, p), (p, p), (0, 0)], mode="symmetric")[:28, :28]
    assert not np.array_equal(out[i], symmetric)


def test_shift_by_zero_pixels_is_the_identity():
    x = _images((4, 6, 6, 3))
    np.testing.assert_array_equal(_run(RandomShift(0, 0), x), x)
    np.testing.assert_array_equal(_run(RandomShift(0, 0, "reflect"), x), x)


@pytest.mark.parametrize("mode", ["wrap", "symmetric", "zeros", "Reflect", None])
def test_bad_shift_mode_is_refused(mode):
    with pytest.raises(ValueError, match="mode must be 'constant' or 'reflect'"):
        RandomShift(0, 2, mode)
    with pytest.raises(ValueError, match="mode must be 'constant' or 'reflect'"):
        random_shift(0, 2, mode)


# ----------------------------------------------------------------------------- cutout

def _cutout_centres(out, x, size):
    """Check that each output is its original with one axis-aligned rectangle zeroed
    in every channel, a `size` x `size` square clipped by the border, and return the
    square's centre (row, column) (-1 where clipped on both sides of an axis)."""
    n, h, w, _ = x.shape
    changed = (out != x).any(-1)
    assert (out[changed] == 0).all()  # every channel of a changed pixel is zeroed
    assert (out[~changed] == x[~changed]).all()
    rows, cols = changed.any(2), changed.any(1)
    assert rows.any(1).all()  # every image has a hole
    # one rectangle: the changed pixels are the product of their rows and columns
    np.testing.assert_array_equal(changed, rows[:, :, None] & cols[:, None, :])
    centres = np.full((n, 2), -1)
    for axis, (mask, length) in enumerate(((rows, h), (cols, w))):
        first = mask.argmax(1)
        last = length - 1 - mask[:, ::-1].argmax(1)
        extent = last - first + 1
        assert (mask.sum(1) == extent).all()  # contiguous
        assert (extent <= size).all()
        clipped = extent < size
        assert ((first == 0) | (last == length - 1) | ~clipped).all()  # only by a border
        start = np.where(first > 0, first, last + 1 - size)  # the square's first line
        both = (first == 0) & (last == length - 1) & clipped
        centres[:, axis] = np.where(both, -1, start + size // 2)
    return centres


@pytest.mark.parametrize("size", [3, 4])
def test_cutout_zeroes_one_square_with_a_uniform_centre(size):
    n, h, w = 4000, 8, 10
    x = _images((n, h, w, 2), seed=5)
    out = _run(RandomCutout(13, size), x)
    centres = _cutout_centres(out, x, size)
    assert (centres >= 0).all()
    assert (centres[:, 0] < h).all() and (centres[:, 1] < w).all()
    # not clipped: a whole size x size square
    inside = ((centres[:, 0] >= size // 2) & (centres[:, 0] + size - size // 2 <= h)
              & (centres[:, 1] >= size // 2) & (centres[:, 1] + size - size // 2 <= w))
    assert ((out[inside] == 0).all(-1).sum(axis=(1, 2)) == size * size).all()
    assert inside.any() and (~inside).any()
    row_counts = np.bincount(centres[:, 0], minlength=h)
    col_counts = np.bincount(centres[:, 1], minlength=w)
    assert len(row_counts) == h and len(col_counts) == w
    # chi-square, 7 and 9 degrees of freedom: P(> 30) ~ 1e-4 and 4e-4
    assert _chi_square(row_counts) < 30, row_counts
    assert _chi_square(col_counts) < 30, col_counts
    joint = np.zeros((h, w), int)
    np.add.at(joint, (centres[:, 0], centres[:, 1]), 1)
    assert joint.min() > 0
    assert _chi_square(joint) < 150  # 79 degrees of freedom: P(> 150) ~ 1e-6


def test_cutout_on_mnist_sized_images_and_a_hole_larger_than_the_image():
    x = _images((300, 28, 28, 1), seed=6)
    centres = _cutout_centres(_run(RandomCutout(1, 8), x), x, 8)
    assert (centres >= 0).all() and len(np.unique(centres[:, 0])) > 15
    small = _images((50, 4, 4, 1), seed=7)
    out = _run(RandomCutout(2, 9), small)  # 9 > 2 * 4: always the whole image
    np.testing.assert_array_equal(out, 0.0)
    one = _run(RandomCutout(3, 1), x[:50])  # a single pixel
    assert ((one != x[:50]).sum(axis=(1, 2, 3)) == 1).all()


# ----------------------------------------------------------------------------- seeds

@pytest.mark.parametrize("name", AUGMENTS)
def test_same_seed_same_output_other_seed_other_output(name):
    x = _images((64, 8, 8, 3), seed=8)
    first = _run(AUGMENTS[name](21), x)
    np.testing.assert_array_equal(_run(AUGMENTS[name](21), x), first)
    assert not np.array_equal(_run(AUGMENTS[name](22), x), first)
    augment = AUGMENTS[name](21)
    _run(augment, x)
    assert not np.array_equal(_run(augment, x), first)  # the next batch: new draws


def test_chain_applies_each_in_turn_and_skips_none():
    x = _images((16, 8, 8, 3), seed=9)
    chained = chain(None, RandomFlip(1), None, RandomShift(2, 2, "reflect"),
                    RandomCutout(3, 3))
    assert isinstance(chained, Chain) and len(chained.augments) == 3
    expected = x
    for augment in (RandomFlip(1), RandomShift(2, 2, "reflect"), RandomCutout(3, 3)):
        expected = _run(augment, expected)
    np.testing.assert_array_equal(_run(chained, x), expected)
    assert chain() is None and chain(None, None) is None


def test_checkpoint_restores_the_draws(tmp_path):
    """A chain's generators are checkpointed: restored, it draws the same again."""
    x = _images((16, 8, 8, 3), seed=10)
    augment = chain(RandomFlip(1), RandomShift(2, 2, "reflect"), RandomCutout(3, 3))
    _run(augment, x)
    checkpoint = tf.train.Checkpoint(augment=augment)
    path = checkpoint.write(str(tmp_path / "ckpt"))
    after = _run(augment, x)
    assert not np.array_equal(_run(augment, x), after)
    checkpoint.read(path).assert_consumed()
    np.testing.assert_array_equal(_run(augment, x), after)
