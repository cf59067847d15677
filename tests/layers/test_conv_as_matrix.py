"""MatrixConv1D (the course's convolution as a matrix) against keras.layers.Conv1D,
finite differences and the course's MakeMFMatrix / MakeMXMatrix written as loops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.layers import MatrixConv1D
from kcourse.layers.conv_as_matrix import mf_index, mf_matrix, mx_patches, patch_index
from kcourse.training import check_gradients

ATOL = {"float32": 1e-5, "float64": 1e-12}


def one_hot_names(rng, batch, n_len, symbols, dtype, blank=0.2):
    """One-hot rows with some all-zero rows (unknown or padding characters)."""
    x = np.eye(symbols)[rng.integers(0, symbols, size=(batch, n_len))]
    x[rng.random((batch, n_len)) < blank] = 0.0
    return x.astype(dtype)


def make_input(kind, rng, dtype, batch=6, n_len=11, channels=7):
    if kind == "dense":
        return rng.normal(size=(batch, n_len, channels)).astype(dtype)
    return one_hot_names(rng, batch, n_len, channels, dtype)


def pair(filters, kernel_size, shape, dtype, one_hot_input, rng):
    """A MatrixConv1D and a Conv1D with the same (random, non-zero) kernel and bias."""
    mine = MatrixConv1D(filters, kernel_size, one_hot_input=one_hot_input, dtype=dtype, seed=0)
    ref = keras.layers.Conv1D(filters, kernel_size, padding="valid", dtype=dtype)
    mine.build(shape)
    ref.build(shape)
    mine.bias.assign(rng.normal(size=filters).astype(dtype))
    ref.set_weights(mine.get_weights())
    return mine, ref


def outputs_and_gradients(layer, x, weights):
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = layer(x)
        cost = tf.reduce_sum(out * weights)
    grads = tape.gradient(cost, [layer.kernel.value, layer.bias.value, x])
    return [np.asarray(out)] + [np.asarray(g) for g in grads]


def course_mf(kernel, n_len):
    """MakeMFMatrix written with loops, transposed to act on row vectors."""
    k, c, nf = kernel.shape
    positions = n_len - k + 1
    mf = np.zeros((n_len * c, positions * nf))
    for p in range(positions):
        for f in range(nf):
            mf[p * c:(p + k) * c, p * nf + f] = kernel[:, :, f].reshape(-1)
    return mf


def course_mx(x, k):
    """MakeMXMatrix for one filter, with loops: row p is the patch x[p:p+k] flattened."""
    n_len, c = x.shape
    return np.stack([x[p:p + k].reshape(-1) for p in range(n_len - k + 1)])


def test_static_indices_lay_out_the_course_matrices():
    rng = np.random.default_rng(0)
    n_len, c, k, nf = 6, 3, 2, 4
    kernel = rng.normal(size=(k, c, nf))
    mf = np.asarray(mf_matrix(tf.constant(kernel), mf_index(n_len, k)))
    np.testing.assert_array_equal(mf, course_mf(kernel, n_len))
    x = rng.normal(size=(n_len, c))
    patches = np.asarray(mx_patches(tf.constant(x[None]), patch_index(n_len, k)))
    np.testing.assert_array_equal(patches[0], course_mx(x, k))
    # the course's identity: x_flat MF = MX vec(F), both the convolution
    np.testing.assert_allclose(x.reshape(-1) @ mf,
                               (course_mx(x, k) @ kernel.reshape(k * c, nf)).reshape(-1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind, one_hot_input", [("dense", False), ("one_hot", False),
                                                 ("one_hot", True)])
def test_outputs_and_gradients_equal_conv1d(kind, one_hot_input, dtype):
    rng = np.random.default_rng(1)
    x = make_input(kind, rng, dtype)
    mine, ref = pair(5, 4, x.shape, dtype, one_hot_input, rng)
    weights = rng.normal(size=(6, 8, 5)).astype(dtype)
    got = outputs_and_gradients(mine, x, weights)
    expected = outputs_and_gradients(ref, x, weights)
    assert got[0].shape == (6, 8, 5)
    for name, a, b in zip(["output", "d kernel", "d bias", "d input"], got, expected):
        assert a.dtype == dtype, name
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL[dtype] * max(1, np.abs(b).max()),
                                   err_msg=name)


@pytest.mark.parametrize("kind, one_hot_input", [("dense", False), ("one_hot", True)])
def test_hand_written_gradients_pass_the_finite_difference_check(kind, one_hot_input):
    rng = np.random.default_rng(2)
    x = make_input(kind, rng, "float64", batch=3, n_len=7, channels=4)
    layer = MatrixConv1D(3, 3, one_hot_input=one_hot_input, dtype="float64", seed=1)
    layer.build(x.shape)
    layer.bias.assign(rng.normal(size=3))
    weights = tf.constant(rng.normal(size=(3, 5, 3)))
    variables = [layer.kernel, layer.bias]
    x_var = keras.Variable(x, name="x")  # check_gradients reports by variable path
    if not one_hot_input:
        # the one-hot forward pass reads only the positions of the ones, so finite
        # differences in x do not apply there; its d input is compared with Conv1D above
        variables.append(x_var)
    errors = check_gradients(lambda: tf.reduce_sum(tf.tanh(layer(x_var)) * weights),
                             variables, h=1e-6)
    assert len(errors) == len(variables)
    assert max(errors.values()) < 1e-6, errors


def test_gradient_inside_tf_function_is_the_hand_written_one():
    rng = np.random.default_rng(3)
    x = make_input("dense", rng, "float64", batch=4, n_len=9, channels=3)
    mine, ref = pair(4, 3, x.shape, "float64", False, rng)
    weights = tf.constant(rng.normal(size=(4, 7, 4)))

    @tf.function
    def kernel_grad(layer):
        with tf.GradientTape() as tape:
            cost = tf.reduce_sum(layer(x) * weights)
        return tape.gradient(cost, layer.kernel.value)

    np.testing.assert_allclose(kernel_grad(mine), kernel_grad(ref), atol=1e-12)

    @tf.function
    def input_grad(layer):
        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            cost = tf.reduce_sum(layer(inputs) * weights)
        return tape.gradient(cost, inputs)

    np.testing.assert_allclose(input_grad(mine), input_grad(ref), atol=1e-12)
    # a copy whose MF index, used only by the backward pass (dx = G MF^T), is
    # deliberately wrong: same outputs, another input gradient, so the tape runs the
    # hand-written one
    altered, _ = pair(4, 3, x.shape, "float64", False, rng)
    altered.set_weights(mine.get_weights())
    altered._mf_index = altered._mf_index[::-1].copy()
    np.testing.assert_allclose(altered(x), mine(x), atol=1e-12)
    assert np.abs(input_grad(altered) - input_grad(mine)).max() > 1e-3


@pytest.mark.parametrize("one_hot_input", [False, True])
def test_works_under_xla(one_hot_input):
    rng = np.random.default_rng(4)
    x = tf.Variable(make_input("one_hot", rng, "float32"))
    layer, _ = pair(5, 3, x.shape, "float32", one_hot_input, rng)
    weights = tf.constant(rng.normal(size=(6, 9, 5)).astype("float32"))

    def grads():
        with tf.GradientTape() as tape:
            cost = tf.reduce_sum(layer(x) * weights)
        return tape.gradient(cost, [layer.kernel.value, layer.bias.value, x])

    for a, b in zip(tf.function(grads, jit_compile=True)(), grads()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def surname_net(conv, first_kwargs, n_len=19, symbols=28, classes=18, dtype="float32"):
    """The course's two-layer ConvNet (smaller widths for speed), built with `conv`."""
    inputs = keras.Input(shape=(n_len, symbols), dtype=dtype)
    h = conv(8, 5, name="conv1", dtype=dtype, **first_kwargs)(inputs)
    h = keras.layers.ReLU(dtype=dtype)(h)
    h = conv(6, 3, name="conv2", dtype=dtype)(h)
    h = keras.layers.ReLU(dtype=dtype)(h)
    h = keras.layers.Flatten(dtype=dtype)(h)
    outputs = keras.layers.Dense(classes, name="dense", dtype=dtype)(h)
    return keras.Model(inputs, outputs)


def test_two_stacked_layers_match_the_conv1d_stack():
    rng = np.random.default_rng(5)
    mine = surname_net(MatrixConv1D, {"one_hot_input": True, "seed": 0})
    ref = surname_net(keras.layers.Conv1D, {})
    assert isinstance(mine.get_layer("conv1"), MatrixConv1D)
    ref.set_weights([w + 0.1 * rng.normal(size=w.shape).astype("float32")
                     for w in mine.get_weights()])
    mine.set_weights(ref.get_weights())
    assert mine.output_shape == ref.output_shape == (None, 18)
    x = one_hot_names(rng, 10, 19, 28, "float32")
    y = keras.utils.to_categorical(rng.integers(0, 18, size=10), 18)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    results = []
    for model in (mine, ref):
        with tf.GradientTape() as tape:
            scores = model(x)
            cost = loss(y, scores)
        results.append([scores] + tape.gradient(cost, model.trainable_variables))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_keras_file_round_trip_gives_identical_outputs(tmp_path):
    model = surname_net(MatrixConv1D, {"one_hot_input": True, "seed": 1,
                                       "kernel_regularizer": keras.regularizers.L2(0.01)})
    x = one_hot_names(np.random.default_rng(6), 4, 19, 28, "float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.get_layer("conv1")
    assert isinstance(layer, MatrixConv1D) and layer.one_hot_input
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert float(loaded.losses[0]) == pytest.approx(float(model.losses[0]))


def test_config_round_trip():
    layer = MatrixConv1D(7, 3, use_bias=False, one_hot_input=True, init="xavier", sigma=0.2,
                         kernel_regularizer=keras.regularizers.L2(0.1), seed=4, name="mc",
                         dtype="float64")
    config = layer.get_config()
    for key in ("filters", "kernel_size", "use_bias", "one_hot_input", "init", "sigma",
                "kernel_regularizer", "seed"):
        assert key in config
    clone = MatrixConv1D.from_config(config)
    assert clone.get_config() == config
    out = clone(np.zeros((2, 5, 4)))
    assert out.shape == (2, 3, 7) and out.dtype == "float64" and clone.bias is None
    assert clone.compute_output_shape((None, 5, 4)) == (None, 3, 7)


@pytest.mark.parametrize("one_hot_input, fan_in", [(True, 5), (False, 5 * 28)])
def test_he_init_uses_the_sparse_fan_in_for_one_hot_inputs(one_hot_input, fan_in):
    layer = MatrixConv1D(100, 5, one_hot_input=one_hot_input, seed=3)
    layer.build((None, 19, 28))
    assert layer.kernel.shape == (5, 28, 100)
    assert layer.kernel.numpy().std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.03)
    np.testing.assert_array_equal(layer.bias.numpy(), 0)


def test_bad_shapes_and_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="known input length"):
        MatrixConv1D(4, 3)(keras.Input(shape=(None, 28)))
    with pytest.raises(ValueError, match="kernel_size 6 .*input length 5"):
        MatrixConv1D(4, 6)(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(ValueError, match="Unknown init"):
        MatrixConv1D(4, 3, init="uniform")
    with pytest.raises(ValueError, match="filters"):
        MatrixConv1D(0, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        MatrixConv1D(4, 0)
    layer = MatrixConv1D(4, 3)
    layer(np.zeros((2, 8, 3), "float32"))
    with pytest.raises(ValueError):
        layer(np.zeros((2, 9, 3), "float32"))  # built for length 8
