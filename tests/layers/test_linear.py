import keras
import numpy as np
import pytest

from kcourse.layers import Linear, course_initializer
from kcourse.tracks.cifar_mlp.models import linear_classifier


def test_linear_computes_xw_plus_b():
    layer = Linear(4, seed=1)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    out = layer(x)
    layer.bias.assign(np.arange(4, dtype="float32"))
    expected = x @ layer.kernel.numpy() + np.arange(4)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(Linear(4, use_bias=False)(x).shape, (3, 4))


@pytest.mark.parametrize("init, expected_std", [("gaussian", 0.01), ("xavier", 1 / np.sqrt(400)),
                                                ("he", np.sqrt(2 / 400))])
def test_initialisations_have_the_course_std(init, expected_std):
    layer = Linear(300, init=init, sigma=0.01, seed=3)
    layer.build((None, 400))
    w = layer.kernel.numpy()
    assert abs(w.mean()) < 0.02 * expected_std * 10
    assert w.std() == pytest.approx(expected_std, rel=0.02)
    np.testing.assert_array_equal(layer.bias.numpy(), 0)


def test_seeded_initialisation_is_reproducible():
    a, b = Linear(10, seed=7), Linear(10, seed=7)
    a.build((None, 30))
    b.build((None, 30))
    np.testing.assert_array_equal(a.kernel.numpy(), b.kernel.numpy())


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="Unknown init"):
        Linear(3, init="uniform")
    with pytest.raises(ValueError, match="units"):
        Linear(0)
    with pytest.raises(ValueError, match="sigma"):
        course_initializer("gaussian", 10, sigma=0.0)


def test_regularizer_is_lambda_times_squared_frobenius_norm():
    model = linear_classifier(input_dim=6, lam=0.3, seed=0)
    w = model.get_layer("linear").kernel.numpy()
    (penalty,) = model.losses
    assert float(penalty) == pytest.approx(0.3 * (w ** 2).sum(), rel=1e-5)
    assert linear_classifier(input_dim=6, lam=0.0).losses == []


def test_config_round_trip():
    layer = Linear(7, init="he", sigma=0.2, use_bias=False,
                   kernel_regularizer=keras.regularizers.L2(0.1), seed=4, name="lin")
    clone = Linear.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_keras_file_round_trip_gives_identical_outputs(tmp_path):
    model = linear_classifier(input_dim=12, init="xavier", lam=0.01, seed=0)
    x = np.random.default_rng(1).normal(size=(4, 12)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("linear"), Linear)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert float(loaded.losses[0]) == pytest.approx(float(model.losses[0]))
