"""Hand-written Keras layers of the course."""

from kcourse.layers.linear import Linear, course_initializer

__all__ = ["Linear", "course_initializer"]
