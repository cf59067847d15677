"""Softmax cross-entropy computed from logits."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kcourse")
class SoftmaxCrossEntropy(keras.losses.Loss):
    """Cross-entropy of softmax(scores) against one-hot labels, from logits.

    `l(x, y) = -log p_y = logsumexp(s) - s_y` where `s` are the scores (logits).
    Subtracting the row maximum before exponentiating keeps it finite for any
    scores (`exp` never overflows). With the default reduction the loss of a batch is
    the mean over its examples, the course's `(1/n) sum l`.

    Args:
        reduction: Keras reduction (default `"sum_over_batch_size"`, the mean).
        name: name of the loss.
        dtype: dtype of the computation (default: Keras' floatx).

    Inputs: `y_true` one-hot of shape (batch, K); `y_pred` scores (batch, K).

    Reference:
        DD2424 Assignment 1, equations (1)-(5).
    """

    def __init__(self, reduction="sum_over_batch_size", name="softmax_cross_entropy",
                 dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        shifted = y_pred - ops.stop_gradient(ops.max(y_pred, axis=-1, keepdims=True))
        log_z = ops.log(ops.sum(ops.exp(shifted), axis=-1))
        return log_z - ops.sum(y_true * shifted, axis=-1)

    def get_config(self):
        return {"reduction": self.reduction, "name": self.name, "dtype": self.dtype}
