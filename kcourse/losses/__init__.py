"""Hand-written losses of the course, as `keras.losses.Loss` subclasses."""

from kcourse.losses.cross_entropy import SoftmaxCrossEntropy, balanced_class_weights
from kcourse.losses.localization import LocalizationLoss
from kcourse.losses.svm import MulticlassSVM

LOSSES = {"cross_entropy": SoftmaxCrossEntropy, "svm": MulticlassSVM}


def get(name, **kwargs):
    """Return a loss instance by its course name (`"cross_entropy"` or `"svm"`)."""
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}: use one of {', '.join(LOSSES)}.")
    return LOSSES[name](**kwargs)


__all__ = ["SoftmaxCrossEntropy", "balanced_class_weights", "LocalizationLoss", "MulticlassSVM",
           "LOSSES", "get"]
