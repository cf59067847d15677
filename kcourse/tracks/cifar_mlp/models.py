"""Model builders for the course's tasks (plain functions returning Keras models)."""

import keras

from kcourse.layers import BatchNormalization, Dropout, Linear


def linear_classifier(input_dim=3072, num_classes=10, init="gaussian", sigma=0.01,
                      lam=0.0, seed=None, dtype=None, name="linear_classifier"):
    """The one-layer network of Assignment 1: scores `s = x W + b`.

    Args:
        input_dim: number of input features (3072 for CIFAR-10).
        num_classes: number of classes.
        init: `"gaussian"` (N(0, sigma^2), the course's default), `"xavier"` or `"he"`.
        sigma: standard deviation of the Gaussian init (course: 0.01).
        lam: the course's lambda; adds `lam * ||W||^2` to the cost (via `model.losses`).
        seed: seed of the weight initialisation.
        dtype: layer dtype (`"float64"` for gradient checks).
    """
    if lam < 0:
        raise ValueError(f"lambda must be non-negative, got {lam}.")
    regularizer = keras.regularizers.L2(lam) if lam > 0 else None
    inputs = keras.Input((input_dim,), name="features", dtype=dtype)
    scores = Linear(num_classes, init=init, sigma=sigma, kernel_regularizer=regularizer,
                    seed=seed, dtype=dtype, name="linear")(inputs)
    return keras.Model(inputs, scores, name=name)


def mlp(hidden=(50,), input_dim=3072, num_classes=10, batch_norm=False, dropout=0.0,
        init="he", sigma=0.01, lam=0.0, bn_momentum=0.9, seed=None, dtype=None,
        name="mlp"):
    """A k-layer network of Assignments 2 and 3: `len(hidden) + 1` linear layers.

    Each hidden layer is `Linear -> [BatchNormalization] -> ReLU -> [Dropout]`; the
    last layer is a plain `Linear` giving the class scores (the softmax is in the loss).

    Args:
        hidden: sizes of the hidden layers, e.g. `[50]` (A2) or `[50, 50]` (A3).
        input_dim: number of input features.
        num_classes: number of classes.
        batch_norm: put a `kcourse.layers.BatchNormalization` before every ReLU. The
            linear layers it follows have no bias: BN subtracts the batch mean, so a
            bias there gets a zero gradient (the course's `b_l`); BN's `beta` takes
            its place.
        dropout: dropout rate after every hidden ReLU (0 for none).
        init: `"he"` (A3), `"xavier"` (A2: N(0, 1/fan_in)) or `"gaussian"` (N(0, sigma^2)
            for every weight, the A3 initialisation study).
        sigma: standard deviation of the `"gaussian"` init.
        lam: the course's lambda: `lam * ||W||^2` for every weight matrix.
        bn_momentum: `alpha` of the batch-norm moving averages (course: 0.9).
        seed: seed of the initialisation and of the dropout masks (layer `i` uses
            `seed + i`, so equal-shaped layers do not start equal).
        dtype: layer dtype (`"float64"` for gradient checks).
    """
    hidden = [int(h) for h in hidden]
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden must be a non-empty list of positive sizes, got {hidden}.")
    if lam < 0:
        raise ValueError(f"lambda must be non-negative, got {lam}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")

    def layer_seed(i):
        return None if seed is None else seed + i

    def linear(units, i, use_bias=True):
        return Linear(units, init=init, sigma=sigma, seed=layer_seed(i), dtype=dtype,
                      use_bias=use_bias,
                      kernel_regularizer=keras.regularizers.L2(lam) if lam > 0 else None,
                      name=f"linear_{i}")

    inputs = keras.Input((input_dim,), name="features", dtype=dtype)
    h = inputs
    for i, units in enumerate(hidden, start=1):
        h = linear(units, i, use_bias=not batch_norm)(h)
        if batch_norm:
            h = BatchNormalization(momentum=bn_momentum, dtype=dtype, name=f"bn_{i}")(h)
        h = keras.layers.ReLU(dtype=dtype, name=f"relu_{i}")(h)
        if dropout > 0:
            h = Dropout(dropout, seed=layer_seed(100 + i), dtype=dtype, name=f"dropout_{i}")(h)
    scores = linear(num_classes, len(hidden) + 1)(h)
    return keras.Model(inputs, scores, name=name)
