"""Learning-rate schedules of the course."""

from kcourse.schedules.cyclic import CyclicLearningRate
from kcourse.schedules.one_cycle import OneCycle

__all__ = ["CyclicLearningRate", "OneCycle"]
