"""GradientScale: the identity forward, `scale` times the gradient backward. Checked
against centered finite differences of the same network without the layer, against
SGD with a smaller learning rate for the body, and through a `.keras` file."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import kcourse
from kcourse.layers import GradientScale

H = 1e-6  # finite-difference step (float64)


def _body_and_head(seed=0):
    """A float64 body (Dense + tanh) and head (Dense), built, with random weights."""
    rng = np.random.default_rng(seed)
    body = keras.layers.Dense(4, activation="tanh", dtype="float64", name="body")
    head = keras.layers.Dense(2, dtype="float64", name="head")
    body.build((None, 3))
    head.build((None, 4))
    for layer in (body, head):
        layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    return body, head


def _x(n=5, seed=1):
    return np.random.default_rng(seed).normal(size=(n, 3))


def _finite_differences(cost, variables, h=H):
    """Centered differences of `cost()` with respect to every entry of `variables`."""
    grads = []
    for variable in variables:
        base = variable.numpy()
        grad = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            for sign in (1, -1):
                moved = base.copy()
                moved[index] += sign * h
                variable.assign(moved)
                grad[index] += sign * float(cost()) / (2 * h)
        variable.assign(base)
        grads.append(grad)
    return grads


def test_forward_is_the_identity():
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype("float32")
    out = GradientScale(0.3)(x)
    assert out.shape == x.shape and out.dtype == tf.float32
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), x)
    assert GradientScale(0.3).compute_output_shape((None, 7)) == (None, 7)
    # in a functional model too (symbolic call, then eager)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, GradientScale(0.0)(inputs))
    assert model.output_shape == (None, 5)
    np.testing.assert_array_equal(model(x[0]), x[0])


@pytest.mark.parametrize("scale", [0.37, 1.0, 2.5])
def test_gradients_are_scale_times_finite_differences(scale):
    body, head = _body_and_head()
    x = tf.constant(_x())
    layer = GradientScale(scale, dtype="float64")

    def plain_cost():  # the same network without the layer
        return tf.reduce_sum(head(body(x)) ** 2)

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z = body(x)
        tape.watch(z)
        scaled = layer(z)
        cost = tf.reduce_sum(head(scaled) ** 2)
    np.testing.assert_array_equal(scaled.numpy(), z.numpy())  # forward unchanged
    assert float(cost) == pytest.approx(float(plain_cost()), abs=0)
    body_grads = tape.gradient(cost, body.trainable_variables)
    head_grads = tape.gradient(cost, head.trainable_variables)
    x_grad = tape.gradient(cost, x)
    z_grad = tape.gradient(cost, z)

    numeric_body = _finite_differences(plain_cost, body.trainable_variables)
    numeric_head = _finite_differences(plain_cost, head.trainable_variables)
    for got, numeric in zip(body_grads, numeric_body):
        assert np.abs(numeric).max() > 1e-2  # a gradient worth checking
        np.testing.assert_allclose(got.numpy(), scale * numeric, rtol=0, atol=1e-7)
    for got, numeric in zip(head_grads, numeric_head):  # the head's: not scaled
        np.testing.assert_allclose(got.numpy(), numeric, rtol=0, atol=1e-7)

    # with respect to the layer's input and the network's input
    z_value = tf.Variable(z)
    x_value = tf.Variable(x)
    numeric_z, = _finite_differences(lambda: tf.reduce_sum(head(z_value) ** 2), [z_value])
    numeric_x, = _finite_differences(lambda: tf.reduce_sum(head(body(x_value)) ** 2),
                                     [x_value])
    np.testing.assert_allclose(z_grad.numpy(), scale * numeric_z, rtol=0, atol=1e-7)
    np.testing.assert_allclose(x_grad.numpy(), scale * numeric_x, rtol=0, atol=1e-7)


def test_scale_zero_stops_the_body_only():
    body, head = _body_and_head(seed=3)
    x = tf.constant(_x())
    with tf.GradientTape() as tape:
        cost = tf.reduce_sum(head(GradientScale(0.0, dtype="float64")(body(x))) ** 2)
    grads = tape.gradient(cost, body.trainable_variables + head.trainable_variables)
    for grad in grads[:2]:
        assert grad is not None
        np.testing.assert_array_equal(grad.numpy(), 0.0)
    for grad in grads[2:]:
        assert np.abs(grad.numpy()).max() > 1e-2


def test_model_fit_with_scale_zero_trains_the_head_only():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation="tanh", name="body")(inputs)
    outputs = keras.layers.Dense(2, name="head")(GradientScale(0.0)(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    body, head = model.get_layer("body").get_weights(), model.get_layer("head").get_weights()
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(16, 3)).astype("float32"),
              rng.normal(size=(16, 2)).astype("float32"), batch_size=4, epochs=1, verbose=0)
    for before, after in zip(body, model.get_layer("body").get_weights()):
        np.testing.assert_array_equal(after, before)
    for before, after in zip(head, model.get_layer("head").get_weights()):
        assert np.abs(after - before).max() > 1e-3


def _copy_weights(source, target):
    for s, t in zip(source, target):
        t.set_weights(s.get_weights())


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_momentum_equals_a_smaller_body_learning_rate(nesterov):
    """One SGD over a model with GradientScale(0.1) == SGD at 0.1x the rate for the
    body (a second optimizer) and the full rate for the head, on a plain copy. (Up to
    rounding: Keras keeps the learning rate in float32, where 0.1 * 0.05 != 0.005.)"""
    eta, scale, steps = 0.05, 0.1, 6
    body, head = _body_and_head(seed=4)
    body2, head2 = _body_and_head(seed=99)
    _copy_weights([body, head], [body2, head2])
    start = [w.copy() for w in body.get_weights()]
    layer = GradientScale(scale, dtype="float64")
    rng = np.random.default_rng(5)
    batches = [(tf.constant(rng.normal(size=(4, 3))), tf.constant(rng.normal(size=(4, 2))))
               for _ in range(steps)]

    def sgd(rate):
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=nesterov)

    one = sgd(eta)
    body_opt, head_opt = sgd(scale * eta), sgd(eta)
    for x, y in batches:
        with tf.GradientTape() as tape:
            cost = tf.reduce_sum((head(layer(body(x))) - y) ** 2)
        variables = body.trainable_variables + head.trainable_variables
        one.apply_gradients(zip(tape.gradient(cost, variables), variables))
        with tf.GradientTape() as tape:
            cost2 = tf.reduce_sum((head2(body2(x)) - y) ** 2)
        g_body, g_head = tape.gradient(cost2, [body2.trainable_variables,
                                               head2.trainable_variables])
        body_opt.apply_gradients(zip(g_body, body2.trainable_variables))
        head_opt.apply_gradients(zip(g_head, head2.trainable_variables))
        assert float(cost) == pytest.approx(float(cost2), rel=1e-7)

    for got, expected, first in zip(body.get_weights(), body2.get_weights(), start):
        assert np.abs(got - first).max() > 1e-3  # the body did train
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)
    for got, expected in zip(head.get_weights(), head2.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)
    # and it is not what the full rate gives the body
    full = sgd(eta)
    body3, head3 = _body_and_head(seed=4)
    for x, y in batches:
        with tf.GradientTape() as tape:
            cost = tf.reduce_sum((head3(body3(x)) - y) ** 2)
        variables = body3.trainable_variables + head3.trainable_variables
        full.apply_gradients(zip(tape.gradient(cost, variables), variables))
    assert np.abs(body3.get_weights()[0] - body.get_weights()[0]).max() > 1e-3


def test_config_and_keras_file_round_trip(tmp_path):
    layer = GradientScale(0.25, name="body_gradient_scale")
    config = layer.get_config()
    assert config["scale"] == 0.25 and config["name"] == "body_gradient_scale"
    clone = GradientScale.from_config(config)
    assert clone.scale == 0.25 and clone.name == "body_gradient_scale"

    kcourse.register_components()
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation="tanh", name="body")(inputs)
    outputs = keras.layers.Dense(2, name="head")(
        GradientScale(0.25, name="body_gradient_scale")(hidden))
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = kcourse.load_model(path)
    restored = loaded.get_layer("body_gradient_scale")
    assert isinstance(restored, GradientScale) and restored.scale == 0.25
    x = _x().astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)

    def body_grad(m):
        with tf.GradientTape() as tape:
            cost = tf.reduce_sum(m(x) ** 2)
        return tape.gradient(cost, m.get_layer("body").kernel).numpy()

    # the loaded model scales the body's gradient as the original does: 0.25x the
    # gradient of the same weights without the layer
    plain = keras.Model(inputs, model.get_layer("head")(hidden))
    np.testing.assert_allclose(body_grad(loaded), body_grad(model), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(body_grad(loaded), 0.25 * body_grad(plain), rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("scale", [-0.1, -1, math.nan, math.inf, -math.inf, "nan"])
def test_bad_scales_are_refused(scale):
    with pytest.raises(ValueError, match=r"scale must be a finite number >= 0"):
        GradientScale(scale)
