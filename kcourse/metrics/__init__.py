"""Hand-written metrics of the course, as `keras.metrics.Metric` subclasses."""

from kcourse.metrics.iou import (BoxIoU, LocalizationScore, ObjectAccuracy, box_iou,
                                 localization_scores)

__all__ = ["BoxIoU", "LocalizationScore", "ObjectAccuracy", "box_iou", "localization_scores"]
