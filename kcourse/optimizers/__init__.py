"""Hand-written Keras optimizers of the course."""

from kcourse.optimizers.adagrad import AdaGrad

__all__ = ["AdaGrad"]
