"""Cyclical learning rates (Smith 2015) as a Keras learning-rate schedule."""

import keras
from keras import ops

MODES = ("triangular", "triangular2", "exp_range")


@keras.saving.register_keras_serializable(package="kcourse")
class CyclicLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Cyclical learning rate: eta oscillates linearly between `eta_min` and `eta_max`.

    With step size `n_s`, update `t` lies in cycle `l = floor(t / (2 n_s))`. In the
    first half of the cycle the rate rises linearly from `eta_min` to `eta_max`, in
    the second half it falls back:

        t in [2 l n_s, (2l+1) n_s]:      eta_t = eta_min + (t - 2 l n_s) / n_s * (eta_max - eta_min)
        t in [(2l+1) n_s, 2(l+1) n_s]:   eta_t = eta_max - (t - (2l+1) n_s) / n_s * (eta_max - eta_min)

    which is `eta_min + (eta_max - eta_min) * max(0, 1 - |t / n_s - 2 l - 1|)`. One
    cycle is `2 n_s` updates. The variants scale the amplitude `eta_max - eta_min`:
    `"triangular2"` halves it every cycle (`/ 2^l`), `"exp_range"` multiplies it by
    `gamma^t`.

    Keras calls the schedule with the optimizer's update counter, which is 0 for the
    first update, so training starts at `eta_min` as in the course.

    The position in the cycle is computed in integers (`step` as int64) and the rate
    in float64, then returned as float32: every step, inside `tf.function` too, gives
    the course's float64 value rounded to float32 (`eta_min` exactly at the troughs,
    `eta_max` at the peaks).

    Args:
        eta_min: smallest learning rate (course: 1e-5).
        eta_max: largest learning rate (course: 1e-1).
        step_size: `n_s`, the number of updates of half a cycle.
        mode: `"triangular"`, `"triangular2"` or `"exp_range"`.
        gamma: decay base of `"exp_range"` per update (e.g. 0.99994).
        name: optional name.

    Reference:
        L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", 2015
        (arXiv:1506.01186); DD2424 Assignment 2, equations (14)-(15).
    """

    def __init__(self, eta_min, eta_max, step_size, mode="triangular", gamma=1.0, name=None):
        super().__init__()
        if not 0 <= eta_min <= eta_max:
            raise ValueError(f"Need 0 <= eta_min <= eta_max, got eta_min={eta_min}, "
                             f"eta_max={eta_max}.")
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"step_size (n_s) must be a positive integer, got {step_size}.")
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}.")
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}.")
        self.eta_min = float(eta_min)
        self.eta_max = float(eta_max)
        self.step_size = int(step_size)
        self.mode = mode
        self.gamma = float(gamma)
        self.name = name

    def cycle_length(self):
        """Updates per cycle, `2 n_s`."""
        return 2 * self.step_size

    def __call__(self, step):
        # the position in the cycle in integers, the rate in float64 (a float32 t / n_s
        # is off by ~1e-7 t / n_s: 1.0012e-5 for eta_min at a trough in tf.function)
        t = ops.cast(step, "int64")
        n_s = self.step_size
        cycle = ops.floor_divide(t, 2 * n_s)
        pos = t - 2 * n_s * cycle  # t - 2 l n_s, in [0, 2 n_s)
        rising = ops.less_equal(pos, n_s)
        pos = ops.cast(pos, "float64")
        amplitude = ops.convert_to_tensor(self.eta_max - self.eta_min, "float64")
        peak = ops.convert_to_tensor(self.eta_max, "float64")
        if self.mode != "triangular":
            if self.mode == "triangular2":
                scale = ops.power(ops.convert_to_tensor(0.5, "float64"),
                                  ops.cast(cycle, "float64"))
            else:  # exp_range
                scale = ops.power(ops.convert_to_tensor(self.gamma, "float64"),
                                  ops.cast(t, "float64"))
            amplitude = amplitude * scale
            peak = self.eta_min + amplitude
        # the course's two halves, as written (eta_min at 2 l n_s, the peak at (2l+1) n_s)
        eta = ops.where(rising, self.eta_min + pos / n_s * amplitude,
                        peak - (pos - n_s) / n_s * amplitude)
        return ops.cast(eta, "float32")

    def get_config(self):
        return {"eta_min": self.eta_min, "eta_max": self.eta_max,
                "step_size": self.step_size, "mode": self.mode, "gamma": self.gamma,
                "name": self.name}
