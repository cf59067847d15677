"""Model builders for the course's tasks (plain functions returning Keras models)."""

import keras

from kcourse.layers import BatchNormalization, Dropout, Linear
from kcourse.regularizers import L1, ElasticNet, check_coefficient


def weight_penalty(l1=0.0, lam=0.0):
    """The kernel regularizer for `l1 * sum|W| + lam * ||W||^2` (None when both are 0).

    Only `lam`: Keras' own `keras.regularizers.L2(lam)` (the course's penalty, no
    factor 1/2); only `l1`: `kcourse.regularizers.L1(l1)`; both:
    `kcourse.regularizers.ElasticNet(l1, lam)`. Each call returns a new instance.

    Raises:
        ValueError: if `l1` or `lam` is negative or not finite.
    """
    l1 = check_coefficient(l1, "l1")
    lam = check_coefficient(lam, "lambda")
    if l1 > 0 and lam > 0:
        return ElasticNet(l1, lam)
    if l1 > 0:
        return L1(l1)
    if lam > 0:
        return keras.regularizers.L2(lam)
    return None


def linear_classifier(input_dim=3072, num_classes=10, init="gaussian", sigma=0.01,
                      lam=0.0, seed=None, dtype=None, name="linear_classifier", l1=0.0):
    """The one-layer network of Assignment 1: scores `s = x W + b`.

    Args:
        input_dim: number of input features (3072 for CIFAR-10).
        num_classes: number of classes.
        init: `"gaussian"` (N(0, sigma^2), the course's default), `"xavier"` or `"he"`.
        sigma: standard deviation of the Gaussian init (course: 0.01).
        lam: the course's lambda; adds `lam * ||W||^2` to the cost (via `model.losses`;
            Keras' `L2(lam)`, no factor 1/2).
        seed: seed of the weight initialisation.
        dtype: layer dtype (`"float64"` for gradient checks).
        name: name of the model.
        l1: adds `l1 * sum|W|` to the cost (INF265's L1 penalty; with `lam` too, the
            elastic net `kcourse.regularizers.ElasticNet(l1, lam)`).

    Raises:
        ValueError: if `lam` or `l1` is negative or not finite.
    """
    regularizer = weight_penalty(l1, lam)
    inputs = keras.Input((input_dim,), name="features", dtype=dtype)
    scores = Linear(num_classes, init=init, sigma=sigma, kernel_regularizer=regularizer,
                    seed=seed, dtype=dtype, name="linear")(inputs)
    return keras.Model(inputs, scores, name=name)


def mlp(hidden=(50,), input_dim=3072, num_classes=10, batch_norm=False, dropout=0.0,
        init="he", sigma=0.01, lam=0.0, bn_momentum=0.9, seed=None, dtype=None,
        name="mlp", l1=0.0):
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
        lam: the course's lambda: `lam * ||W||^2` for every weight matrix (Keras'
            `L2(lam)`, no factor 1/2; biases and batch-norm parameters are not penalised).
        bn_momentum: `alpha` of the batch-norm moving averages (course: 0.9).
        seed: seed of the initialisation and of the dropout masks (layer `i` uses
            `seed + i`, so equal-shaped layers do not start equal).
        dtype: layer dtype (`"float64"` for gradient checks).
        name: name of the model.
        l1: `l1 * sum|W|` for every weight matrix (INF265's L1 penalty); with `lam`
            too, the elastic net `kcourse.regularizers.ElasticNet(l1, lam)`.

    Raises:
        ValueError: if an argument is out of range (`lam` or `l1` negative or not
            finite, `dropout` outside [0, 1), empty or non-positive `hidden`).
    """
    hidden = [int(h) for h in hidden]
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden must be a non-empty list of positive sizes, got {hidden}.")
    weight_penalty(l1, lam)  # validates both before any layer is built
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")

    def layer_seed(i):
        return None if seed is None else seed + i

    def linear(units, i, use_bias=True):
        return Linear(units, init=init, sigma=sigma, seed=layer_seed(i), dtype=dtype,
                      use_bias=use_bias,
                      kernel_regularizer=weight_penalty(l1, lam),
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
