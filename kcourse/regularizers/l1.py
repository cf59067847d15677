"""The L1 weight penalty `l1 * sum(|W|)`."""

import math

import keras
from keras import ops


def check_coefficient(value, name):
    """Return `value` as a float, or raise ValueError if it is not a non-negative,
    finite number (a penalty coefficient; 0 means no penalty)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}: "
                         f"give a float >= 0 (0 for no penalty).")
    return number


@keras.saving.register_keras_serializable(package="kcourse")
class L1(keras.regularizers.Regularizer):
    """L1 weight penalty `l1 * sum_ij |W_ij|`, added to the cost via `model.losses`.

    Its gradient is `l1 * sign(W)`. `|w|` has no derivative at `w = 0`; the penalty
    uses the subgradient 0 there (the gradient of `tf.abs`, which autodiff gives), so
    an entry that is exactly zero gets no push from the penalty. The formula is that of
    Keras' `keras.regularizers.L1`; the one difference is that the coefficient is
    converted straight to the weights' dtype, where Keras rounds it to float32 first
    (so in float64, e.g. for gradient checks, this one is exact).

    Args:
        l1: the non-negative, finite coefficient of the penalty.

    Example:
        `Linear(10, kernel_regularizer=L1(1e-3))`.

    Reference:
        UiB INF265 Project 1 (L1 and L2 regularization); Goodfellow, Bengio and
        Courville, "Deep Learning", Section 7.1.2 (L1 regularization).
    """

    def __init__(self, l1=0.01):
        self.l1 = check_coefficient(l1, "l1")

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        return ops.convert_to_tensor(self.l1, x.dtype) * ops.sum(ops.absolute(x))

    def get_config(self):
        return {"l1": self.l1}
