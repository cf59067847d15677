"""CyclicLearningRate is the course's formula rounded to float32, at every step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.schedules import CyclicLearningRate

ETA_MIN, ETA_MAX = 1e-5, 1e-1
CYCLES = 5


def course_eta(t, eta_min, eta_max, n_s):
    """DD2424 A2 equations (14)-(15), written as the course states them (float64)."""
    l = t // (2 * n_s)
    if 2 * l * n_s <= t <= (2 * l + 1) * n_s:
        return eta_min + (t - 2 * l * n_s) / n_s * (eta_max - eta_min)
    return eta_max - (t - (2 * l + 1) * n_s) / n_s * (eta_max - eta_min)


def expected(n_s):
    steps = np.arange(0, CYCLES * 2 * n_s + 1)
    return steps, np.array([np.float32(course_eta(int(t), ETA_MIN, ETA_MAX, n_s))
                            for t in steps])


def eager(schedule, steps):
    if len(steps) < 200:  # one call per step, as Python ints
        return np.array([schedule(int(t)).numpy() for t in steps])
    return schedule(tf.constant(steps, tf.int64)).numpy()  # one eager call on all steps


def mapped_in_a_function(schedule, steps):
    """The schedule called on one scalar step tensor at a time, inside a tf.function."""
    run = tf.function(lambda ts: tf.map_fn(schedule, ts, fn_output_signature=tf.float32))
    return run(tf.constant(steps, tf.int64)).numpy()


def seen_by_an_optimizer(schedule, steps):
    """`learning_rate` of an SGD driven by the schedule, in a compiled loop of updates
    (the schedule is called on the optimizer's int64 `iterations` variable)."""
    var = keras.Variable(0.0)
    opt = keras.optimizers.SGD(schedule)
    opt.build([var])

    @tf.function
    def run(n):
        rates = tf.TensorArray(tf.float32, size=n)
        for k in tf.range(n):
            rates = rates.write(k, opt.learning_rate)
            opt.apply([tf.zeros(())], [var])
        return rates.stack()

    rates = run(tf.constant(len(steps))).numpy()
    assert int(opt.iterations) == len(steps)
    return rates


@pytest.mark.parametrize("call", [eager, mapped_in_a_function, seen_by_an_optimizer])
@pytest.mark.parametrize("n_s", [1, 7, 500, 800, 2450])
def test_every_step_equals_the_course_formula_in_float32(n_s, call):
    schedule = CyclicLearningRate(ETA_MIN, ETA_MAX, n_s)
    steps, want = expected(n_s)
    got = call(schedule, steps)
    assert got.dtype == np.float32
    mismatches = np.flatnonzero(got != want)
    assert mismatches.size == 0, (steps[mismatches[:5]], got[mismatches[:5]],
                                  want[mismatches[:5]])
    # troughs at 2 l n_s and peaks at (2 l + 1) n_s are eta_min and eta_max exactly
    assert (got[::2 * n_s] == np.float32(ETA_MIN)).all()
    assert (got[n_s::2 * n_s] == np.float32(ETA_MAX)).all()
    assert len(got[::2 * n_s]) == CYCLES + 1 and len(got[n_s::2 * n_s]) == CYCLES


@pytest.mark.parametrize("n_s", [1, 7, 500, 2450, 3333])
def test_troughs_and_peaks_of_200_cycles_are_exact(n_s):
    # float32 t / n_s in a tf.function gave 1.0048e-5 at the 4th trough for n_s = 7,
    # 1.0012e-5 at the 2nd for n_s = 3333
    schedule = CyclicLearningRate(ETA_MIN, ETA_MAX, n_s)
    l = np.arange(200)
    for call in (eager, mapped_in_a_function):
        np.testing.assert_array_equal(call(schedule, 2 * l * n_s), np.float32(ETA_MIN))
        np.testing.assert_array_equal(call(schedule, (2 * l + 1) * n_s), np.float32(ETA_MAX))
    in_a_function = tf.function(schedule)
    step = tf.Variable(0, dtype=tf.int64)  # like the optimizer's `iterations`
    for t, want in ((2 * n_s, ETA_MIN), (3 * n_s, ETA_MAX), (398 * n_s, ETA_MIN)):
        step.assign(t)
        rate = in_a_function(step)
        assert rate.dtype == tf.float32 and rate.numpy() == np.float32(want)


@pytest.mark.parametrize("call", [eager, mapped_in_a_function])
def test_variants_stay_at_float32_precision(call):
    n_s, gamma = 500, 0.9995
    steps = np.arange(0, CYCLES * 2 * n_s + 1)
    l = steps // (2 * n_s)
    shape = 1.0 - np.abs(steps / n_s - 2 * l - 1)  # float64
    tri2 = call(CyclicLearningRate(ETA_MIN, ETA_MAX, n_s, mode="triangular2"), steps)
    np.testing.assert_allclose(tri2, ETA_MIN + (ETA_MAX - ETA_MIN) * shape / 2.0 ** l,
                               rtol=1e-7)
    assert (tri2[::2 * n_s] == np.float32(ETA_MIN)).all()
    np.testing.assert_array_equal(  # peaks halve exactly: eta_min + amplitude / 2^l
        tri2[n_s::2 * n_s],
        np.float32(ETA_MIN + (ETA_MAX - ETA_MIN) / 2.0 ** np.arange(CYCLES)))
    exp = call(CyclicLearningRate(ETA_MIN, ETA_MAX, n_s, mode="exp_range", gamma=gamma),
               steps)
    np.testing.assert_allclose(
        exp, ETA_MIN + (ETA_MAX - ETA_MIN) * shape * gamma ** steps.astype(np.float64),
        rtol=1e-6)
    assert (exp[::2 * n_s] == np.float32(ETA_MIN)).all()
