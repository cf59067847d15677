"""Hand-written BatchNormalization and Dropout against Keras' own and the definitions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.training import gradcheck
from kcourse.layers import BatchNormalization, Dropout, batch_norm_train
from kcourse.losses import SoftmaxCrossEntropy
from kcourse.tracks.cifar_mlp.models import mlp


def _pair(momentum, epsilon, features=7, seed=0):
    rng = np.random.default_rng(seed)
    mine = BatchNormalization(momentum=momentum, epsilon=epsilon, init_from_first_batch=False)
    ref = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    for layer in (mine, ref):
        layer.build((None, features))
    gamma, beta = rng.normal(size=(2, features)).astype("float32")
    for layer in (mine, ref):
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    return mine, ref, rng


@pytest.mark.parametrize("momentum, epsilon", [(0.9, 1e-3), (0.99, 1e-5), (0.5, 1e-2)])
def test_batch_norm_matches_keras_in_both_modes(momentum, epsilon):
    mine, ref, rng = _pair(momentum, epsilon)
    for _ in range(6):
        x = rng.normal(3.0, 2.0, size=(50, 7)).astype("float32")
        np.testing.assert_allclose(mine(x, training=True), ref(x, training=True), atol=1e-5)
    np.testing.assert_allclose(mine.moving_mean, ref.moving_mean, atol=1e-5)
    np.testing.assert_allclose(mine.moving_variance, ref.moving_variance, atol=1e-5)
    x = rng.normal(3.0, 2.0, size=(20, 7)).astype("float32")
    np.testing.assert_allclose(mine(x, training=False), ref(x, training=False), atol=1e-5)


def test_batch_norm_training_output_is_normalized_then_scaled():
    layer = BatchNormalization(epsilon=1e-8)
    x = np.random.default_rng(1).normal(5.0, 3.0, size=(200, 4)).astype("float64")
    layer.build(x.shape)
    layer.gamma.assign([1.0, 2.0, 3.0, 4.0])
    layer.beta.assign([0.0, -1.0, 1.0, 0.5])
    y = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(y.mean(0), [0.0, -1.0, 1.0, 0.5], atol=1e-5)
    np.testing.assert_allclose(y.std(0), [1.0, 2.0, 3.0, 4.0], rtol=1e-5)


def test_moving_averages_start_from_the_first_batch_like_the_course():
    layer = BatchNormalization(momentum=0.9)
    rng = np.random.default_rng(2)
    a, b = (rng.normal(size=(30, 3)).astype("float32") for _ in range(2))
    layer(a, training=True)
    np.testing.assert_allclose(layer.moving_mean, a.mean(0), atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance, a.var(0), atol=1e-6)
    layer(b, training=True)
    np.testing.assert_allclose(layer.moving_mean, 0.9 * a.mean(0) + 0.1 * b.mean(0), atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance, 0.9 * a.var(0) + 0.1 * b.var(0),
                               atol=1e-6)
    # inference uses the averages, not the batch
    x = rng.normal(size=(5, 3)).astype("float32")
    expected = (x - layer.moving_mean.numpy()) / np.sqrt(layer.moving_variance.numpy() + 1e-3)
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)


def test_hand_written_backward_equals_the_tape_and_finite_differences():
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(16, 5)))
    gamma = tf.constant(rng.normal(size=5))
    beta = tf.constant(rng.normal(size=5))
    upstream = tf.constant(rng.normal(size=(16, 5)))
    eps = tf.constant(1e-5, tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, gamma, beta])
        mine = tf.reduce_sum(batch_norm_train(x, gamma, beta, eps)[0] * upstream)
        mean, var = tf.nn.moments(x, [0])
        ref = tf.reduce_sum(((x - mean) / tf.sqrt(var + eps) * gamma + beta) * upstream)
    for a, b in zip(tape.gradient(mine, [x, gamma, beta]), tape.gradient(ref, [x, gamma, beta])):
        np.testing.assert_allclose(a, b, atol=1e-12)

    model = mlp([8, 6], input_dim=5, batch_norm=True, lam=0.01, seed=0, dtype="float64")
    y = np.eye(10)[rng.integers(0, 10, 16)]
    errors = gradcheck(model, SoftmaxCrossEntropy(dtype="float64"), x.numpy(), y, h=1e-5)
    assert any("gamma" in path for path in errors) and any("beta" in path for path in errors)
    assert max(errors.values()) < 1e-5, errors


def test_a_wrong_backward_pass_is_caught():
    @tf.custom_gradient
    def wrong(x):
        mean, var = tf.nn.moments(x, [0])
        y = (x - mean) * tf.math.rsqrt(var + 1e-5)
        return y, lambda dy: dy * tf.math.rsqrt(var + 1e-5)  # forgets the batch terms

    class Wrong(keras.layers.Layer):
        def call(self, x):
            return wrong(x)

    inputs = keras.Input((4,), dtype="float64")
    h = keras.layers.Dense(6, dtype="float64")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, dtype="float64")(
        Wrong(dtype="float64")(h)))
    rng = np.random.default_rng(4)
    errors = gradcheck(model, SoftmaxCrossEntropy(dtype="float64"), rng.normal(size=(8, 4)),
                       np.eye(10)[rng.integers(0, 10, 8)])
    assert max(errors.values()) > 1e-3


def test_batch_norm_serializes_with_its_moving_averages(tmp_path):
    model = mlp([6], input_dim=4, batch_norm=True, seed=0)
    x = np.random.default_rng(5).normal(size=(32, 4)).astype("float32")
    model(x, training=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.get_layer("bn_1"), BatchNormalization)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert loaded.get_layer("bn_1").get_config()["momentum"] == 0.9


def test_batch_norm_and_dropout_train_in_model_fit():
    model = mlp([16], input_dim=6, batch_norm=True, dropout=0.2, seed=0)
    model.compile(keras.optimizers.SGD(0.05), SoftmaxCrossEntropy(), metrics=["accuracy"])
    rng = np.random.default_rng(6)
    x = rng.normal(size=(200, 6)).astype("float32")
    y = np.eye(10, dtype="float32")[(x[:, 0] > 0).astype(int)]
    history = model.fit(x, y, batch_size=20, epochs=15, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.6
    assert model.evaluate(x, y, verbose=0)[1] > 0.85


def test_dropout_is_inverted_seeded_and_identity_at_inference():
    x = np.ones((400, 250), "float32")
    layer = Dropout(0.3, seed=1)
    out = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.7], rtol=1e-6)
    assert (out == 0).mean() == pytest.approx(0.3, abs=0.01)
    assert out.mean() == pytest.approx(1.0, abs=0.02)  # expectation kept
    np.testing.assert_array_equal(layer(x, training=False), x)
    again = np.asarray(Dropout(0.3, seed=1)(x, training=True))
    np.testing.assert_array_equal(again, out)  # same seed, same masks
    assert not np.array_equal(np.asarray(layer(x, training=True)), out)  # new mask per call
    # Keras' Dropout has the same definition: same support, same drop rate, same inference
    ref = np.asarray(keras.layers.Dropout(0.3, seed=1)(x, training=True))
    assert set(np.unique(ref)) == set(np.unique(out))
    assert (ref == 0).mean() == pytest.approx((out == 0).mean(), abs=0.01)
    np.testing.assert_array_equal(keras.layers.Dropout(0.3)(x, training=False),
                                  layer(x, training=False))


def test_bad_arguments():
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="momentum"):
        BatchNormalization(momentum=1.0)
    with pytest.raises(ValueError, match="epsilon"):
        BatchNormalization(epsilon=0)
    assert Dropout.from_config(Dropout(0.2, seed=3).get_config()).get_config()["seed"] == 3
