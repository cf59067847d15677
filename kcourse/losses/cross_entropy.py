"""Softmax cross-entropy computed from logits, optionally weighted per class."""

import keras
import numpy as np
from keras import ops


def balanced_class_weights(labels, num_classes):
    """Class weights that compensate an unbalanced training set: `w_k = N / (K n_k)`.

    The course weights the loss of an example of class `y` by `1 / (K n_y)` (DD2424
    Assignment 3, 2019); multiplied by the number of examples `N` those weights average
    1 over the training set, so the mean weighted loss of a mini-batch estimates the
    class-balanced loss `(1/K) sum_k mean_{i in class k} l_i` at the same scale as the
    plain mean (the learning rate keeps its meaning).

    Args:
        labels: integer class labels of the training examples.
        num_classes: K; every class must occur.
    """
    labels = np.asarray(labels, np.int64)
    if labels.size == 0 or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be class ids in 0..{num_classes - 1}, got "
                         f"{labels.min() if labels.size else 'none'} to "
                         f"{labels.max() if labels.size else 'none'}.")
    counts = np.bincount(labels, minlength=num_classes)
    if counts.min() == 0:
        raise ValueError(f"every one of the {num_classes} classes needs training examples; "
                         f"counts {counts.tolist()}")
    return (counts.sum() / (num_classes * counts)).tolist()


@keras.saving.register_keras_serializable(package="kcourse")
class SoftmaxCrossEntropy(keras.losses.Loss):
    """Cross-entropy of softmax(scores) against one-hot labels, from logits.

    `l(x, y) = -log p_y = logsumexp(s) - s_y` where `s` are the scores (logits).
    Subtracting the row maximum before exponentiating keeps it finite for any
    scores (`exp` never overflows). With the default reduction the loss of a batch is
    the mean over its examples, the course's `(1/n) sum l`. With `class_weights`,
    the loss of an example of class `y` is `w_y l` (see `balanced_class_weights`).

    Args:
        class_weights: optional list of K weights, one per class.
        reduction: Keras reduction (default `"sum_over_batch_size"`, the mean).
        name: name of the loss.
        dtype: dtype of the computation (default: Keras' floatx).

    Inputs: `y_true` one-hot of shape (batch, K), or class ids of shape (batch,);
    `y_pred` scores (batch, K).

    Reference:
        DD2424 Assignment 1, equations (1)-(5).
    """

    def __init__(self, class_weights=None, reduction="sum_over_batch_size",
                 name="softmax_cross_entropy", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        if class_weights is not None:
            class_weights = [float(w) for w in class_weights]
            if not class_weights or min(class_weights) < 0 or not np.all(
                    np.isfinite(class_weights)):
                raise ValueError("class_weights must be a non-empty list of finite, "
                                 f"non-negative numbers, got {class_weights}.")
        self.class_weights = class_weights

    def call(self, y_true, y_pred):
        if len(y_true.shape) == len(y_pred.shape) - 1:  # sparse: class ids
            y_true = ops.one_hot(ops.cast(y_true, "int32"), y_pred.shape[-1])
        elif y_true.shape[-1] is not None and y_pred.shape[-1] is not None and \
                y_true.shape[-1] != y_pred.shape[-1]:
            raise ValueError(f"labels of shape {tuple(y_true.shape)} for scores of shape "
                             f"{tuple(y_pred.shape)}: give one-hot labels (batch, K) or "
                             "class ids (batch,).")
        y_true = ops.cast(y_true, y_pred.dtype)
        shifted = y_pred - ops.stop_gradient(ops.max(y_pred, axis=-1, keepdims=True))
        log_z = ops.log(ops.sum(ops.exp(shifted), axis=-1))
        loss = log_z - ops.sum(y_true * shifted, axis=-1)
        if self.class_weights is not None:
            if len(self.class_weights) != y_pred.shape[-1]:
                raise ValueError(f"class_weights has {len(self.class_weights)} weights for "
                                 f"{y_pred.shape[-1]} classes.")
            weights = ops.convert_to_tensor(self.class_weights, dtype=y_pred.dtype)
            loss = loss * ops.sum(y_true * weights, axis=-1)
        return loss

    def get_config(self):
        return {"class_weights": self.class_weights, "reduction": self.reduction,
                "name": self.name, "dtype": self.dtype}
