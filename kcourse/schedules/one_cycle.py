"""The one-cycle learning rate (Smith 2018), piecewise linear, as a Keras schedule."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kcourse")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One cycle of the learning rate over a whole training: a linear rise from
    `eta_max * start_factor` to `eta_max` over the first `warmup` fraction of the
    `total` updates, then a linear fall that reaches `eta_max * end_factor` at step
    `total`, held there after it (Keras counts updates from 0: the last of `total`
    updates runs at `eta_max * (e + (1 - e) / (T - w))`):

        t <= w:       eta_t = eta_max * (s + (1 - s) t / w)
        w < t <= T:   eta_t = eta_max * (1 - (1 - e) (t - w) / (T - w))

    with `w = min(round(warmup * T), T - 1)` (no rise when `w` is 0), `s = start_factor`,
    `e = end_factor`. Computed in
    float64 from the integer update counter, returned as float32. This is the
    schedule of D. Page's fast CIFAR-10 ResNet, one cycle of
    `CyclicLearningRate` made asymmetric and run down to 0 so that the last updates
    are small.

    Args:
        eta_max: the peak learning rate.
        total: `T`, the number of updates of the training.
        warmup: the fraction of the updates spent rising, in [0, 1).
        start_factor: the first rate, as a fraction of `eta_max`.
        end_factor: the last rate, as a fraction of `eta_max`.
        name: optional name.

    Reference:
        L. N. Smith, "A disciplined approach to neural network hyper-parameters: Part 1",
        2018 (arXiv:1803.09820); D. Page, "How to train your ResNet", 2018.
    """

    def __init__(self, eta_max, total, warmup=0.25, start_factor=0.1, end_factor=0.0,
                 name=None):
        super().__init__()
        if not eta_max > 0:
            raise ValueError(f"eta_max must be > 0, got {eta_max}.")
        if int(total) != total or total < 1:
            raise ValueError(f"total must be a positive integer (updates), got {total}.")
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {warmup}.")
        for label, factor in (("start_factor", start_factor), ("end_factor", end_factor)):
            if not 0 <= factor <= 1:
                raise ValueError(f"{label} must be in [0, 1], got {factor}.")
        self.eta_max = float(eta_max)
        self.total = int(total)
        self.warmup = float(warmup)
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.name = name

    def warmup_steps(self):
        """`w`: the update at which the rate peaks."""
        return min(int(round(self.warmup * self.total)), self.total - 1)

    def __call__(self, step):
        t = ops.cast(ops.minimum(ops.cast(step, "int64"), self.total), "float64")
        w, total = float(self.warmup_steps()), float(self.total)
        s, e = self.start_factor, self.end_factor
        rise = s + (1.0 - s) * t / max(w, 1.0)
        fall = 1.0 - (1.0 - e) * (t - w) / (total - w)
        eta = self.eta_max * (ops.where(ops.less_equal(t, w), rise, fall) if w else fall)
        return ops.cast(eta, "float32")

    def get_config(self):
        return {"eta_max": self.eta_max, "total": self.total, "warmup": self.warmup,
                "start_factor": self.start_factor, "end_factor": self.end_factor,
                "name": self.name}
