"""The elastic-net weight penalty `l1 * sum(|W|) + l2 * sum(W^2)`."""

import keras
from keras import ops

from kcourse.regularizers.l1 import check_coefficient


@keras.saving.register_keras_serializable(package="kcourse")
class ElasticNet(keras.regularizers.Regularizer):
    """Elastic-net weight penalty `l1 * sum_ij |W_ij| + l2 * sum_ij W_ij^2`.

    The L2 part is the course's `lambda * ||W||^2` with `lambda = l2`: the squared
    Frobenius norm with no factor 1/2, which is also Keras' definition of
    `keras.regularizers.L2` (so its gradient is `2 * l2 * W`). The L1 part has the
    gradient `l1 * sign(W)`, with the subgradient 0 at `W_ij = 0` (the gradient of
    `tf.abs`). The formula is that of Keras' `keras.regularizers.L1L2(l1, l2)`; the
    coefficients are converted straight to the weights' dtype, where Keras rounds them
    to float32 first (so in float64 this one is exact).

    Args:
        l1: the non-negative, finite coefficient of the L1 penalty.
        l2: the non-negative, finite coefficient of the squared L2 penalty (the
            course's lambda).

    Reference:
        UiB INF265 Project 1 (L1 and L2 regularization); Zou and Hastie,
        "Regularization and variable selection via the elastic net" (2005).
    """

    def __init__(self, l1=0.01, l2=0.01):
        self.l1 = check_coefficient(l1, "l1")
        self.l2 = check_coefficient(l2, "l2")

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        return (ops.convert_to_tensor(self.l1, x.dtype) * ops.sum(ops.absolute(x))
                + ops.convert_to_tensor(self.l2, x.dtype) * ops.sum(ops.square(x)))

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}
