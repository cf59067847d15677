"""Hand-written weight penalties of the course, as `keras.regularizers.Regularizer`s.

The course's L2 penalty `lambda * ||W||^2` is Keras' own `keras.regularizers.L2`
(no factor 1/2); these add the L1 penalty and the elastic net (L1 + L2).
"""

from kcourse.regularizers.elastic_net import ElasticNet
from kcourse.regularizers.l1 import L1, check_coefficient

__all__ = ["ElasticNet", "L1", "check_coefficient"]
