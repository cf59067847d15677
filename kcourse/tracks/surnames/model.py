"""The surname ConvNet of DD2424 Assignment 3 (2019 edition), as a plain builder."""

import math

import keras

from kcourse.layers import Dropout, Linear, MatrixConv1D


def surname_convnet(length, alphabet_size, num_classes=18, n1=20, k1=5, n2=20, k2=3,
                    dropout=0.0, conv="matrix", seed=None, dtype=None, name="surname_convnet"):
    """Two 1-D convolutions over a one-hot name, then a dense layer of class scores.

    `conv_1`: n1 filters of width k1 over the one-hot characters, stride 1, no padding,
    ReLU; `conv_2`: n2 filters of width k2, ReLU; flatten; optional dropout; `scores`:
    a `Linear` layer (the softmax is in the loss). Every layer has a bias (as Keras'
    layers do by default; the course's equations leave the convolutions' out, and a
    bias starting at zero changes nothing until trained). He initialisation, with the first
    layer's fan-in taken as k1 (a patch of a one-hot name has at most k1 non-zero
    entries, not k1 * alphabet_size: the course's remark on the sparse input).

    Args:
        length: characters per (padded) name (19 for the course's data).
        alphabet_size: one-hot size d (28 for the course's data).
        num_classes: number of languages.
        n1, k1, n2, k2: filters and widths of the two convolutions.
        dropout: dropout rate before the dense layer (0 for none).
        conv: `"matrix"`: the course's convolution as a matrix, written by hand
            (`kcourse.layers.MatrixConv1D`, sparse first layer); `"keras"`:
            `keras.layers.Conv1D` with the same initialisation.
        seed: seed of the initialisations and the dropout masks.
        dtype: layer dtype (`"float64"` for gradient checks).
    """
    positions = length - k1 - k2 + 2
    if positions < 1:
        raise ValueError(f"k1={k1} and k2={k2} leave no position of a {length}-character "
                         "name: k1 + k2 must be at most length + 1.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    if conv not in ("matrix", "keras"):
        raise ValueError(f"conv must be 'matrix' or 'keras', got {conv!r}.")

    def seed_of(i):
        return None if seed is None else seed + i

    def convolution(filters, width, i, one_hot):
        if conv == "matrix":
            return MatrixConv1D(filters, width, one_hot_input=one_hot, init="he",
                                seed=seed_of(i), dtype=dtype, name=f"conv_{i}")
        fan_in = width if one_hot else width * n1
        return keras.layers.Conv1D(
            filters, width, kernel_initializer=keras.initializers.RandomNormal(
                stddev=math.sqrt(2.0 / fan_in), seed=seed_of(i)),
            dtype=dtype, name=f"conv_{i}")

    inputs = keras.Input((length, alphabet_size), name="names", dtype=dtype)
    h = convolution(n1, k1, 1, True)(inputs)
    h = keras.layers.ReLU(dtype=dtype, name="relu_1")(h)
    h = convolution(n2, k2, 2, False)(h)
    h = keras.layers.ReLU(dtype=dtype, name="relu_2")(h)
    h = keras.layers.Flatten(dtype=dtype, name="flatten")(h)
    if dropout > 0:
        h = Dropout(dropout, seed=seed_of(10), dtype=dtype, name="dropout")(h)
    scores = Linear(num_classes, init="he", seed=seed_of(3), dtype=dtype, name="scores")(h)
    return keras.Model(inputs, scores, name=name)
