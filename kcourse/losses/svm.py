"""The multiclass SVM (hinge) loss."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kcourse")
class MulticlassSVM(keras.losses.Loss):
    """Multiclass SVM loss `l(x, y) = sum_{j != y} max(0, s_j - s_y + margin)`.

    The scores `s` are the raw outputs of the classifier (no softmax). With the default
    reduction the batch loss is the mean over examples.

    Args:
        margin: the margin (course: 1).
        reduction: Keras reduction (default `"sum_over_batch_size"`, the mean).
        name: name of the loss.
        dtype: dtype of the computation (default: Keras' floatx).

    Inputs: `y_true` one-hot of shape (batch, K); `y_pred` scores (batch, K).

    Reference:
        DD2424 Assignment 1, bonus (2019 edition); CS231n "Linear classification".
    """

    def __init__(self, margin=1.0, reduction="sum_over_batch_size", name="multiclass_svm",
                 dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        if float(margin) <= 0:
            raise ValueError(f"margin must be positive, got {margin}.")
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        correct = ops.sum(y_true * y_pred, axis=-1, keepdims=True)
        margins = ops.maximum(0.0, y_pred - correct + self.margin)
        # the j = y term equals max(0, margin) = margin for every example: drop it
        return ops.sum(margins * (1.0 - y_true), axis=-1)

    def get_config(self):
        return {"margin": self.margin, "reduction": self.reduction, "name": self.name,
                "dtype": self.dtype}
