"""Hand-written Keras layers of the course."""

from kcourse.layers.batch_norm import BatchNormalization, batch_norm_train
from kcourse.layers.dropout import Dropout
from kcourse.layers.linear import Linear, course_initializer

__all__ = ["BatchNormalization", "Dropout", "Linear", "batch_norm_train",
           "course_initializer"]
