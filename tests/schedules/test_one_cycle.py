"""OneCycle: every step against the docstring's formula in NumPy, its landmarks, inside
tf.function and a Keras optimizer, serialization, bad arguments."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.schedules import OneCycle


def docstring_eta(t, eta_max, total, warmup=0.25, s=0.1, e=0.0):
    """The formula of OneCycle's docstring, in float64, written independently:

        t <= w:       eta_t = eta_max * (s + (1 - s) t / w)
        w < t <= T:   eta_t = eta_max * (1 - (1 - e) (t - w) / (T - w))

    with w = round(warmup * T) (no rise when w is 0), held at t > T."""
    t = np.minimum(np.asarray(t, np.float64), total)
    w = float(round(warmup * total))
    fall = eta_max * (1 - (1 - e) * (t - w) / (total - w))
    if w == 0:
        return fall
    rise = eta_max * (s + (1 - s) * t / w)
    return np.where(t <= w, rise, fall)


def values(schedule, steps):
    return np.array([float(schedule(int(t))) for t in steps])


CASES = [  # eta_max, total, warmup, start_factor, end_factor
    (0.4, 20, 0.25, 0.1, 0.0),
    (0.1, 13, 0.3, 0.05, 0.02),  # w = round(3.9) = 4
    (2e-3, 9, 0.5, 0.0, 0.5),  # w = round(4.5) = 4 (banker's rounding)
    (1.0, 7, 0.0, 0.1, 0.1),  # no warmup
]


@pytest.mark.parametrize("eta_max, total, warmup, s, e", CASES)
def test_every_step_equals_the_docstring_formula(eta_max, total, warmup, s, e):
    schedule = OneCycle(eta_max, total, warmup=warmup, start_factor=s, end_factor=e)
    steps = np.arange(0, total + 6)
    expected = docstring_eta(steps, eta_max, total, warmup, s, e)
    got = values(schedule, steps)
    assert schedule(3).dtype == tf.float32
    # float32 output: equal to the float64 formula rounded once
    np.testing.assert_array_equal(got, expected.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=0)


@pytest.mark.parametrize("eta_max, total, warmup, s, e", CASES)
def test_landmarks(eta_max, total, warmup, s, e):
    schedule = OneCycle(eta_max, total, warmup=warmup, start_factor=s, end_factor=e)
    w = schedule.warmup_steps()
    assert w == round(warmup * total)
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    assert float(schedule(w)) == f32(eta_max)  # the peak, exactly
    if w:
        assert float(schedule(0)) == f32(eta_max * s)
        assert float(schedule(w - 1)) < float(schedule(w)) > float(schedule(w + 1))
    else:
        assert float(schedule(0)) == f32(eta_max)  # no rise: starts at the peak
        assert float(schedule(1)) < float(schedule(0))
    assert float(schedule(total)) == pytest.approx(eta_max * e, rel=1e-6, abs=1e-12)
    for later in (total + 1, total + 100, 10**9, 2**40):  # held after the end
        assert float(schedule(later)) == float(schedule(total))
    curve = values(schedule, range(total + 1))
    assert (np.diff(curve[:w + 1]) > 0).all()  # rising, then falling
    assert (np.diff(curve[w:]) < 0).all()


def test_warmup_steps_leaves_at_least_one_falling_update():
    assert OneCycle(1.0, 4, warmup=0.9).warmup_steps() == 3  # round(3.6) = 4 -> 3
    assert OneCycle(1.0, 1, warmup=0.5).warmup_steps() == 0
    schedule = OneCycle(1.0, 4, warmup=0.9, start_factor=0.2, end_factor=0.1)
    np.testing.assert_allclose(values(schedule, range(6)),
                               [0.2, 0.2 + 0.8 / 3, 0.2 + 1.6 / 3, 1.0, 0.1, 0.1], rtol=1e-6)
    single = OneCycle(0.5, 1, end_factor=0.2)
    np.testing.assert_allclose(values(single, range(3)), [0.5, 0.1, 0.1], rtol=1e-7)


def test_inside_tf_function_with_an_int64_step():
    schedule = OneCycle(0.3, 40, warmup=0.2, start_factor=0.1, end_factor=0.01)

    @tf.function
    def rate(step):
        return schedule(step)

    steps = np.array([0, 3, 8, 9, 25, 40, 41, 1000], np.int64)
    expected = docstring_eta(steps, 0.3, 40, 0.2, 0.1, 0.01)
    got = np.array([float(rate(tf.constant(t, tf.int64))) for t in steps])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    got32 = np.array([float(rate(tf.constant(t, tf.int32))) for t in steps])
    np.testing.assert_array_equal(got32, got)
    vector = keras.ops.convert_to_numpy(schedule(tf.constant(steps)))  # a batch of steps
    np.testing.assert_allclose(vector, expected, rtol=1e-6, atol=1e-9)


def test_drives_a_keras_sgd_optimizer():
    """The rate the optimizer reads follows the schedule at `optimizer.iterations`, and
    the k-th update (iterations = k - 1 when applied) is taken with eta_{k-1}."""
    total = 8
    schedule = OneCycle(0.5, total, warmup=0.25, start_factor=0.1, end_factor=0.0)
    optimizer = keras.optimizers.SGD(schedule)
    w = keras.Variable(np.zeros(3, np.float32))
    optimizer.build([w])
    grad = tf.constant([1.0, -2.0, 0.5])
    for k in range(total + 2):
        assert int(optimizer.iterations) == k
        eta = float(optimizer.learning_rate)
        assert eta == pytest.approx(docstring_eta(k, 0.5, total, 0.25, 0.1, 0.0), abs=1e-7)
        before = w.numpy().copy()
        optimizer.apply_gradients([(grad, w)])
        np.testing.assert_allclose(before - w.numpy(), eta * grad.numpy(), rtol=1e-5,
                                   atol=1e-8)
    assert float(optimizer.learning_rate) == 0.0  # after the cycle, held at 0


def test_config_round_trip_and_keras_file(tmp_path):
    schedule = OneCycle(0.2, 30, warmup=0.3, start_factor=0.05, end_factor=0.01,
                        name="cycle")
    config = schedule.get_config()
    assert config == {"eta_max": 0.2, "total": 30, "warmup": 0.3, "start_factor": 0.05,
                      "end_factor": 0.01, "name": "cycle"}
    clone = OneCycle.from_config(config)
    assert clone.get_config() == config
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, OneCycle) and restored.get_config() == config
    steps = range(0, 35, 3)
    np.testing.assert_array_equal(values(restored, steps), values(schedule, steps))

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(schedule, momentum=0.9), "mse")
    model.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), batch_size=2,
              epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 4
    assert float(model.optimizer.learning_rate) == pytest.approx(float(schedule(4)))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    saved = loaded.optimizer.get_config()["learning_rate"]
    assert saved["class_name"] == "OneCycle" and saved["config"] == config


@pytest.mark.parametrize("kwargs, message", [
    ({"eta_max": 0.0, "total": 10}, "eta_max must be > 0"),
    ({"eta_max": -0.1, "total": 10}, "eta_max must be > 0"),
    ({"eta_max": float("nan"), "total": 10}, "eta_max must be > 0"),
    ({"eta_max": 0.1, "total": 0}, "total must be a positive integer"),
    ({"eta_max": 0.1, "total": 12.5}, "total must be a positive integer"),
    ({"eta_max": 0.1, "total": 10, "warmup": 1.0}, r"warmup must be a fraction in \[0, 1\)"),
    ({"eta_max": 0.1, "total": 10, "warmup": -0.1}, "warmup must be a fraction"),
    ({"eta_max": 0.1, "total": 10, "start_factor": 1.5}, r"start_factor must be in \[0, 1\]"),
    ({"eta_max": 0.1, "total": 10, "end_factor": -0.1}, r"end_factor must be in \[0, 1\]"),
    ({"eta_max": 0.1, "total": 10, "end_factor": float("nan")}, "end_factor must be in"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OneCycle(**kwargs)
