import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.layers import Linear
from kcourse.regularizers import L1, ElasticNet
from kcourse.tracks.cifar_mlp.models import mlp
from kcourse.training import check_gradients


def random_weights(shape, seed, zeros=0.25):
    """Gaussian entries, about `zeros` of them set to exactly 0 (+0.0 and -0.0)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=shape) * 2.0
    mask = rng.random(shape) < zeros
    w[mask] = 0.0
    w.flat[0], w.flat[-1] = 0.0, -0.0
    return w


def away_from_zero(shape, seed):
    """Random entries with |w| >= 0.01, so finite differences never cross the kink."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * (0.01 + np.abs(rng.normal(size=shape)))


def value_and_gradient(regularizer, w, dtype):
    variable = tf.Variable(w.astype(dtype))
    with tf.GradientTape() as tape:
        value = regularizer(variable)
    return value, tape.gradient(value, variable)


@pytest.mark.parametrize("shape", [(7, 5), (11,), (3, 3, 2, 4)])
def test_values_match_numpy_formulas(shape):
    w = random_weights(shape, seed=len(shape))
    assert (w == 0).sum() >= 2
    absolute, squares = np.abs(w).sum(), (w ** 2).sum()
    l1 = L1(0.3)(tf.constant(w))
    assert l1.dtype == tf.float64
    np.testing.assert_allclose(float(l1), 0.3 * absolute, rtol=1e-13)
    np.testing.assert_allclose(float(ElasticNet(0.3, 0.05)(tf.constant(w))),
                               0.3 * absolute + 0.05 * squares, rtol=1e-13)
    # either part alone, and no factor 1/2 on the squares (the course's lambda ||W||^2)
    np.testing.assert_allclose(float(ElasticNet(0.0, 0.05)(tf.constant(w))), 0.05 * squares,
                               rtol=1e-13)
    np.testing.assert_allclose(float(ElasticNet(0.3, 0.0)(tf.constant(w))), 0.3 * absolute,
                               rtol=1e-13)
    assert float(L1(0.0)(tf.constant(w))) == 0.0
    assert float(L1(1.0)(np.zeros(shape))) == 0.0


# Keras rounds the coefficients to float32 before casting them to the weights' dtype;
# kcourse converts them exactly, so in float64 the two agree to float32's precision only
@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-6), ("float64", 1e-7)])
@pytest.mark.parametrize("ours, theirs", [
    (L1(0.02), keras.regularizers.L1(0.02)),
    (ElasticNet(0.02, 0.3), keras.regularizers.L1L2(l1=0.02, l2=0.3)),
    (ElasticNet(0.0, 0.3), keras.regularizers.L2(0.3)),
])
def test_agrees_with_keras_regularizers(ours, theirs, dtype, rtol):
    w = random_weights((9, 6), seed=4)
    value, grad = value_and_gradient(ours, w, dtype)
    expected_value, expected_grad = value_and_gradient(theirs, w, dtype)
    assert value.dtype == expected_value.dtype == tf.as_dtype(dtype)
    np.testing.assert_allclose(float(value), float(expected_value), rtol=rtol)
    np.testing.assert_allclose(grad.numpy(), expected_grad.numpy(), rtol=rtol, atol=0)


@pytest.mark.parametrize("regularizer, gradient", [
    (L1(0.7), lambda w: 0.7 * np.sign(w)),
    (ElasticNet(0.7, 0.2), lambda w: 0.7 * np.sign(w) + 2 * 0.2 * w),
])
def test_gradients_match_finite_differences_and_the_formula(regularizer, gradient):
    w = away_from_zero((4, 3), seed=5)
    assert np.abs(w).min() > 1e-3
    variable = keras.Variable(w, dtype="float64", name="w")
    errors = check_gradients(lambda: regularizer(variable), [variable], h=1e-6)
    assert max(errors.values()) < 1e-7, errors
    _, grad = value_and_gradient(regularizer, w, "float64")
    np.testing.assert_allclose(grad.numpy(), gradient(w), rtol=1e-13)


@pytest.mark.parametrize("regularizer", [L1(0.7), ElasticNet(0.7, 0.2)])
def test_subgradient_at_exactly_zero_is_zero(regularizer):
    w = random_weights((6, 5), seed=6)
    zero = w == 0
    _, grad = value_and_gradient(regularizer, w, "float64")
    np.testing.assert_array_equal(grad.numpy()[zero], 0.0)
    assert np.all(np.abs(grad.numpy()[~zero]) >= 0.7)  # the |w| part pushes every other entry


@pytest.mark.parametrize("bad", [-0.1, -1, float("nan"), float("inf"), -float("inf"), "0.1x",
                                 None])
def test_bad_coefficients_are_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match=r"l1 must be a non-negative finite number, got .*"
                                         r"give a float >= 0"):
        L1(bad)
    with pytest.raises(ValueError, match="l1 must be a non-negative finite number"):
        ElasticNet(bad, 0.1)
    with pytest.raises(ValueError, match="l2 must be a non-negative finite number"):
        ElasticNet(0.1, bad)


@pytest.mark.parametrize("regularizer", [L1(0.25), ElasticNet(0.25, 0.125)])
def test_serialize_round_trip_and_config(regularizer):
    config = regularizer.get_config()
    assert config == ({"l1": 0.25} if isinstance(regularizer, L1)
                      else {"l1": 0.25, "l2": 0.125})
    serialized = keras.regularizers.serialize(regularizer)
    assert serialized["registered_name"] == f"kcourse>{type(regularizer).__name__}"
    for clone in (keras.regularizers.deserialize(serialized),
                  keras.regularizers.get(serialized),
                  type(regularizer).from_config(config)):
        assert type(clone) is type(regularizer)
        assert clone.get_config() == config
    w = tf.constant(random_weights((3, 4), seed=7))
    assert float(clone(w)) == float(regularizer(w))


def penalties(model):
    return [float(loss) for loss in model.losses]


def test_linear_layer_with_a_penalty_survives_a_keras_file(tmp_path):
    inputs = keras.Input((5,))
    outputs = Linear(3, sigma=0.5, kernel_regularizer=ElasticNet(0.01, 0.02), seed=0,
                     name="lin")(inputs)
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "linear.keras")
    loaded = keras.saving.load_model(tmp_path / "linear.keras")
    regularizer = loaded.get_layer("lin").kernel_regularizer
    assert type(regularizer) is ElasticNet and regularizer.get_config() == {"l1": 0.01,
                                                                           "l2": 0.02}
    w = model.get_layer("lin").kernel.numpy().astype("float64")
    (penalty,) = penalties(loaded)
    assert penalty == pytest.approx(0.01 * np.abs(w).sum() + 0.02 * (w ** 2).sum(), rel=1e-5)
    assert penalties(loaded) == penalties(model)


@pytest.mark.parametrize("l1, lam, kind", [(0.01, 0.02, ElasticNet), (0.01, 0.0, L1)])
def test_mlp_with_penalties_survives_a_keras_file(tmp_path, l1, lam, kind):
    model = mlp(hidden=(8,), input_dim=12, l1=l1, lam=lam, seed=0)
    path = tmp_path / "mlp.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for name in ("linear_1", "linear_2"):
        assert type(loaded.get_layer(name).kernel_regularizer) is kind
    assert len(loaded.losses) == 2
    assert penalties(loaded) == penalties(model)
