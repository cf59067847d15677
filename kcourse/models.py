"""Model builders for the course's tasks (plain functions returning Keras models)."""

import keras

from kcourse.layers import Linear


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
