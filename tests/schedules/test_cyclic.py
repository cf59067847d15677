import keras
import numpy as np
import pytest

from kcourse.schedules import CyclicLearningRate


def course_eta(t, eta_min, eta_max, n_s):
    """DD2424 A2 equations (14)-(15), written as the course states them."""
    l = t // (2 * n_s)
    if 2 * l * n_s <= t <= (2 * l + 1) * n_s:
        return eta_min + (t - 2 * l * n_s) / n_s * (eta_max - eta_min)
    return eta_max - (t - (2 * l + 1) * n_s) / n_s * (eta_max - eta_min)


@pytest.mark.parametrize("n_s", [1, 7, 500, 800])
def test_triangular_equals_course_formula_at_every_step(n_s):
    schedule = CyclicLearningRate(1e-5, 1e-1, n_s)
    steps = np.arange(0, 3 * 2 * n_s + 1)
    got = np.array([float(schedule(t)) for t in steps]) if n_s < 100 else \
        keras.ops.convert_to_numpy(keras.ops.vectorized_map(schedule, steps))
    expected = np.array([course_eta(int(t), 1e-5, 1e-1, n_s) for t in steps])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    # cycle boundaries exactly: minimum at 2 l n_s, maximum at (2l+1) n_s
    for l in range(3):
        assert float(schedule(2 * l * n_s)) == pytest.approx(1e-5, rel=1e-4)
        assert float(schedule((2 * l + 1) * n_s)) == pytest.approx(1e-1, rel=1e-6)


def test_variants_scale_the_amplitude():
    tri2 = CyclicLearningRate(0.0, 1.0, 10, mode="triangular2")
    assert [float(tri2(t)) for t in (10, 30, 50)] == pytest.approx([1.0, 0.5, 0.25])
    exp = CyclicLearningRate(0.1, 1.1, 10, mode="exp_range", gamma=0.99)
    for t in (0, 5, 10, 33):
        expected = 0.1 + 1.0 * 0.99 ** t * max(0.0, 1 - abs(t / 10 - 2 * (t // 20) - 1))
        assert float(exp(t)) == pytest.approx(expected, rel=1e-5)


def test_config_round_trip_and_serialization():
    schedule = CyclicLearningRate(1e-4, 0.05, 300, mode="exp_range", gamma=0.999)
    clone = CyclicLearningRate.from_config(schedule.get_config())
    assert clone.get_config() == schedule.get_config()
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, CyclicLearningRate)
    assert float(restored(123)) == pytest.approx(float(schedule(123)))


def test_drives_model_fit_and_survives_a_keras_file(tmp_path):
    schedule = CyclicLearningRate(1e-3, 1e-2, 4)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(schedule), "mse")
    x = np.zeros((12, 3), "float32")
    model.fit(x, np.zeros((12, 2), "float32"), batch_size=2, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 6
    assert float(model.optimizer.learning_rate) == pytest.approx(course_eta(6, 1e-3, 1e-2, 4))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    restored = loaded.optimizer.get_config()["learning_rate"]
    assert restored["class_name"] == "CyclicLearningRate"
    assert restored["config"] == schedule.get_config()


@pytest.mark.parametrize("kwargs, message", [
    ({"eta_min": 0.1, "eta_max": 0.01, "step_size": 5}, "eta_min <= eta_max"),
    ({"eta_min": 0.0, "eta_max": 0.1, "step_size": 0}, "step_size"),
    ({"eta_min": 0.0, "eta_max": 0.1, "step_size": 2.5}, "step_size"),
    ({"eta_min": 0.0, "eta_max": 0.1, "step_size": 5, "mode": "sine"}, "Unknown mode"),
    ({"eta_min": 0.0, "eta_max": 0.1, "step_size": 5, "gamma": 1.5}, "gamma"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CyclicLearningRate(**kwargs)
