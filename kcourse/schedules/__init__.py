"""Learning-rate schedules of the course."""

from kcourse.schedules.cyclic import CyclicLearningRate

__all__ = ["CyclicLearningRate"]
