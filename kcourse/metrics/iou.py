"""Intersection over union of boxes, and the course's localization / detection scores
(UiB INF265 project 2) as Keras metrics.

Boxes are `(x, y, w, h)`: centre and size, in any one unit (canvas-relative for
localization, cell units for detection cells). Labels are `(..., 6)` `[p_c, x, y, w, h,
c]` and predictions `(..., 5 + K)` `[p_c logit, x, y, w, h, K class logits]`, as for
`kcourse.losses.LocalizationLoss`; the leading axes are examples (localization) or
examples and grid cells (detection: every cell counts on its own).

The course's scores, over the examples (or cells) holding an object (`p_c = 1`; the
others are left out, a false detection there costs nothing):

- accuracy: the fraction detected (`sigmoid(p_c logit) > 0.5`) with the right class
  (`argmax` of the class logits);
- IoU: the mean IoU of the predicted and true boxes, 0 where the object is missed;
- score: `(accuracy + IoU) / 2`.

`ObjectAccuracy`, `BoxIoU` and `LocalizationScore` accumulate them over batches (a
dataset's value is over all its objects, not a mean of batch values); `localization_scores`
computes all three at once in NumPy.
"""

import keras
import numpy as np
from keras import ops


def box_iou(a, b):
    """The IoU of boxes `a` and `b`, `(..., 4)` as `(x, y, w, h)` (centre, size), over
    the leading axes (broadcast). Negative sizes count as 0; when the union has no area
    (two zero-area boxes) the IoU is 0. Touching boxes have IoU 0."""
    a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
    dtype = a.dtype if "float" in str(a.dtype) else "float32"
    a, b = ops.cast(a, dtype), ops.cast(b, dtype)
    wa, ha = ops.relu(a[..., 2]), ops.relu(a[..., 3])
    wb, hb = ops.relu(b[..., 2]), ops.relu(b[..., 3])
    iw = ops.relu(ops.minimum(a[..., 0] + wa / 2, b[..., 0] + wb / 2)
                  - ops.maximum(a[..., 0] - wa / 2, b[..., 0] - wb / 2))
    ih = ops.relu(ops.minimum(a[..., 1] + ha / 2, b[..., 1] + hb / 2)
                  - ops.maximum(a[..., 1] - ha / 2, b[..., 1] - hb / 2))
    inter = iw * ih
    union = wa * ha + wb * hb - inter
    return ops.divide_no_nan(inter, union)


def _numpy_iou(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    wa, ha, wb, hb = (np.maximum(v, 0) for v in (a[..., 2], a[..., 3], b[..., 2], b[..., 3]))
    iw = np.maximum(np.minimum(a[..., 0] + wa / 2, b[..., 0] + wb / 2)
                    - np.maximum(a[..., 0] - wa / 2, b[..., 0] - wb / 2), 0)
    ih = np.maximum(np.minimum(a[..., 1] + ha / 2, b[..., 1] + hb / 2)
                    - np.maximum(a[..., 1] - ha / 2, b[..., 1] - hb / 2), 0)
    inter = iw * ih
    union = wa * ha + wb * hb - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def localization_scores(y_true, y_pred):
    """The course's `{"accuracy", "iou", "score"}` of predictions, in NumPy (float64),
    over every example or cell with an object (0 each when there is none)."""
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    present = y_true[..., 0] > 0.5
    detected = y_pred[..., 0] > 0  # sigmoid(s) > 0.5
    right = np.argmax(y_pred[..., 5:], -1) == np.rint(y_true[..., 5]).astype(np.int64)
    iou = np.where(detected, _numpy_iou(y_true[..., 1:5], y_pred[..., 1:5]), 0.0)
    count = present.sum()
    if not count:
        return {"accuracy": 0.0, "iou": 0.0, "score": 0.0}
    accuracy = float((detected & right)[present].sum() / count)
    mean_iou = float(iou[present].sum() / count)
    return {"accuracy": accuracy, "iou": mean_iou, "score": (accuracy + mean_iou) / 2}


class _ObjectMetric(keras.metrics.Metric):
    """Sums over the examples / cells with an object: right detections, IoU (0 when
    missed), and their count."""

    def __init__(self, name, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.iou_sum = self.add_variable(shape=(), initializer="zeros", name="iou_sum")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Accumulate a batch: `y_true` `(batch, ..., 6)`, `y_pred` `(batch, ..., 5 + K)`,
        `sample_weight` optional `(batch,)` (or any shape broadcasting over the cells)."""
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), self.dtype)
        y_true = ops.cast(ops.convert_to_tensor(y_true), self.dtype)
        if y_true.shape[-1] != 6 or (y_pred.shape[-1] is not None and y_pred.shape[-1] < 7):
            raise ValueError(f"labels of shape {tuple(y_true.shape)} and predictions of "
                             f"shape {tuple(y_pred.shape)}: give labels (..., 6) and "
                             "predictions (..., 5 + K).")
        present = ops.cast(y_true[..., 0] > 0.5, self.dtype)
        detected = ops.cast(y_pred[..., 0] > 0, self.dtype)
        classes = ops.cast(ops.argmax(y_pred[..., 5:], axis=-1), "int32")
        right = ops.cast(ops.equal(classes, ops.cast(ops.round(y_true[..., 5]), "int32")),
                         self.dtype)
        iou = box_iou(y_true[..., 1:5], y_pred[..., 1:5])
        weight = present
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), self.dtype)
            while len(sample_weight.shape) < len(present.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weight = weight * sample_weight
        self.correct.assign_add(ops.sum(weight * detected * right))
        self.iou_sum.assign_add(ops.sum(weight * detected * iou))
        self.count.assign_add(ops.sum(weight * ops.ones_like(detected)))

    def reset_state(self):
        for variable in (self.correct, self.iou_sum, self.count):
            variable.assign(ops.zeros((), self.dtype))

    def _accuracy(self):
        return ops.divide_no_nan(self.correct, self.count)

    def _iou(self):
        return ops.divide_no_nan(self.iou_sum, self.count)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="kcourse")
class ObjectAccuracy(_ObjectMetric):
    """The course's accuracy: over the examples (cells) with an object, the fraction
    detected (`sigmoid(p_c logit) > 0.5`) with the right class. See the module."""

    def __init__(self, name="object_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def result(self):
        return self._accuracy()


@keras.saving.register_keras_serializable(package="kcourse")
class BoxIoU(_ObjectMetric):
    """The course's IoU: over the examples (cells) with an object, the mean IoU of the
    predicted and true boxes, 0 where the object is not detected. See the module."""

    def __init__(self, name="box_iou", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def result(self):
        return self._iou()


@keras.saving.register_keras_serializable(package="kcourse")
class LocalizationScore(_ObjectMetric):
    """The course's score: `(ObjectAccuracy + BoxIoU) / 2`. See the module."""

    def __init__(self, name="score", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def result(self):
        return (self._accuracy() + self._iou()) / 2
