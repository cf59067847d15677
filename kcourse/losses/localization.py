"""The composite loss of object localization and detection (UiB INF265 project 2)."""

import keras
from keras import ops


def _split(y_true, y_pred):
    """Checked and cast: `(p_true, box_true, c_true, logit, box_pred, class_logits)`."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    if y_true.shape[-1] not in (None, 6) or (y_pred.shape[-1] is not None and y_pred.shape[-1] < 7):
        raise ValueError(f"labels of shape {tuple(y_true.shape)} and predictions of shape "
                         f"{tuple(y_pred.shape)}: give labels (..., 6) [p_c, x, y, w, h, c] "
                         "and predictions (..., 5 + K) [p_c logit, x, y, w, h, K class "
                         "logits].")
    if len(y_true.shape) != len(y_pred.shape):
        raise ValueError(f"labels of shape {tuple(y_true.shape)} for predictions of shape "
                         f"{tuple(y_pred.shape)}: both need the same leading dimensions.")
    return (y_true[..., 0], y_true[..., 1:5], y_true[..., 5],
            y_pred[..., 0], y_pred[..., 1:5], y_pred[..., 5:])


def localization_loss_terms(y_true, y_pred):
    """The three terms of the loss for every example (or grid cell), without masking:
    `(bce, mse, ce)`, each of the leading shape of the inputs (see `LocalizationLoss`)."""
    p, box, c, logit, box_pred, class_logits = _split(y_true, y_pred)
    # BCE with logits, stable: max(z, 0) - z t + log(1 + exp(-|z|))
    bce = ops.relu(logit) - logit * p + ops.log1p(ops.exp(-ops.abs(logit)))
    mse = ops.mean(ops.square(box_pred - box), axis=-1)
    shifted = class_logits - ops.stop_gradient(ops.max(class_logits, axis=-1, keepdims=True))
    log_z = ops.log(ops.sum(ops.exp(shifted), axis=-1))
    onehot = ops.one_hot(ops.cast(ops.round(c), "int32"), ops.shape(class_logits)[-1],
                         dtype=class_logits.dtype)
    ce = log_z - ops.sum(onehot * shifted, axis=-1)
    return bce, mse, ce


@keras.saving.register_keras_serializable(package="kcourse")
class LocalizationLoss(keras.losses.Loss):
    """The localization loss of INF265 project 2, per example:

        L = BCE(p_c, s_p) + p_c * (MSE((x, y, w, h), box) + CE(c, class logits))

    `BCE` is the binary cross-entropy of `sigmoid(s_p)` (computed from the logit `s_p`,
    stable for any value), `MSE` the mean of the 4 squared box errors and `CE` the softmax
    cross-entropy of the K class logits (computed from logits, stable). The box and class
    terms count only where an object is present (`p_c = 1`), example by example, as the
    course defines the loss; the course's own solution instead averaged those terms over
    all the images of a batch, which kcourse does not follow.

    For detection the labels are a grid (e.g. `(batch, 2, 3, 6)`) and the loss of an
    example is the sum of this loss over its grid cells. In general every axis between
    the first (the batch) and the last is summed over. With the default reduction the
    loss of a batch is the mean over its examples.

    Inputs: `y_true` `(batch, ..., 6)`, `[p_c, x, y, w, h, c]` (c the class id, ignored
    where `p_c = 0`); `y_pred` `(batch, ..., 5 + K)`, `[p_c logit, x, y, w, h, K class
    logits]` (`K = 10` for the digits: 15 numbers per example or cell).

    Args:
        reduction: Keras reduction (default `"sum_over_batch_size"`, the mean).
        name: name of the loss.
        dtype: dtype of the computation (default: Keras' floatx).
    """

    def __init__(self, reduction="sum_over_batch_size", name="localization_loss", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = ops.convert_to_tensor(y_true)
        # where there is no object the box and class are ignored, whatever they hold
        # (NaN included: 0 * NaN would be NaN)
        y_true = ops.where(ops.expand_dims(y_true[..., 0] > 0, -1), y_true,
                           ops.zeros_like(y_true))
        bce, mse, ce = localization_loss_terms(y_true, y_pred)
        p = ops.cast(y_true[..., 0], bce.dtype)
        loss = bce + p * (mse + ce)
        rank = len(loss.shape)
        if rank > 1:  # a grid per example: sum over the cells
            loss = ops.sum(loss, axis=tuple(range(1, rank)))
        return loss

    def get_config(self):
        return {"reduction": self.reduction, "name": self.name, "dtype": self.dtype}
