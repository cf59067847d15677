"""AdaGrad with sparse (`tf.IndexedSlices`) gradients: repeated indices are summed first."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.layers import VanillaRNN
from kcourse.optimizers import AdaGrad

EPS = 1e-8


def slices(values, indices, dense_shape, dtype=tf.float64):
    return tf.IndexedSlices(tf.constant(values, dtype), tf.constant(indices, tf.int32),
                            tf.constant(dense_shape, tf.int32))


def one_step(opt, gradient, shape=(2, 1), graph=False):
    """theta and m after one update of a float64 variable that starts at 0."""
    var = keras.Variable(np.zeros(shape), dtype="float64")
    opt.build([var])
    apply = tf.function(lambda g: opt.apply([g], [var])) if graph else \
        (lambda g: opt.apply([g], [var]))
    apply(gradient)
    return np.asarray(var), np.asarray(opt._accumulators[0])


@pytest.mark.parametrize("graph", [False, True])
def test_repeated_index_is_summed_before_squaring(graph):
    # two slices of 1 for row 0: the gradient of row 0 is 2, so m = 4 and the step is 1
    theta, m = one_step(AdaGrad(1.0), slices([[1.0], [1.0]], [0, 0], [2, 1]), graph=graph)
    np.testing.assert_array_equal(m, [[4.0], [0.0]])
    np.testing.assert_allclose(theta, [[-2.0 / np.sqrt(4.0 + EPS)], [0.0]], rtol=1e-15)
    assert theta[0, 0] == pytest.approx(-1.0, abs=1e-8) and theta[1, 0] == 0.0


@pytest.mark.parametrize("graph", [False, True])
def test_rmsprop_variant_takes_slices(graph):
    # m = 0.1 * 2^2 (with the slices it raised a TypeError); lr 0.5 is exact in float32
    theta, m = one_step(AdaGrad(0.5, rho=0.9), slices([[1.0], [1.0]], [0, 0], [2, 1]),
                        graph=graph)
    np.testing.assert_allclose(m, [[0.1 * 4.0], [0.0]], rtol=1e-15)
    np.testing.assert_allclose(theta, [[-0.5 * 2.0 / np.sqrt(0.4 + EPS)], [0.0]],
                               rtol=1e-15)


@pytest.mark.parametrize("clip, want", [
    ({"clipvalue": 1.5}, 1.5),        # 1 + 1 = 2 clipped to 1.5 (not 1 and 1 unclipped)
    ({"clipnorm": 1.5}, 1.5),         # norm of the summed row gradient, 2
    ({"global_clipnorm": 1.5}, 1.5),
])
def test_clipping_acts_on_the_summed_gradient(clip, want):
    theta, m = one_step(AdaGrad(1.0, **clip), slices([[1.0], [1.0]], [0, 0], [2, 1]))
    np.testing.assert_allclose(m, [[want ** 2], [0.0]], rtol=1e-15)
    np.testing.assert_allclose(theta, [[-want / np.sqrt(want ** 2 + EPS)], [0.0]],
                               rtol=1e-15)


@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"rho": 0.9}, {"clipvalue": 1.0},
                                    {"rho": 0.9, "global_clipnorm": 2.0}])
def test_slices_update_equals_the_dense_update(kwargs, graph):
    rng = np.random.default_rng(0)
    shape = (6, 3)
    sparse_var = keras.Variable(np.zeros(shape), dtype="float64")
    dense_var = keras.Variable(np.zeros(shape), dtype="float64")
    sparse_opt, dense_opt = AdaGrad(0.1, **kwargs), AdaGrad(0.1, **kwargs)
    sparse_opt.build([sparse_var])
    dense_opt.build([dense_var])
    sparse_apply = lambda g: sparse_opt.apply([g], [sparse_var])
    dense_apply = lambda g: dense_opt.apply([g], [dense_var])
    if graph:
        sparse_apply, dense_apply = tf.function(sparse_apply), tf.function(dense_apply)
    for _ in range(5):
        # quarters sum exactly, so the dense gradient is the same numbers in any order;
        # rows 4 and 5 are never looked up (their m still decays with rho)
        indices = rng.integers(0, 4, 7)
        values = rng.integers(-8, 9, (7, 3)) / 4.0
        dense = np.zeros(shape)
        np.add.at(dense, indices, values)
        assert len(set(indices)) < len(indices)
        sparse_apply(slices(values, indices, shape))
        dense_apply(tf.constant(dense))
    assert np.abs(np.asarray(dense_var)).max() > 0.1
    np.testing.assert_array_equal(sparse_var, dense_var)
    np.testing.assert_array_equal(sparse_opt._accumulators[0], dense_opt._accumulators[0])


IDS = np.array([[1, 2, 1, 3, 1, 5, 2], [0, 4, 4, 6, 0, 1, 1]], np.int32)


def rnn_model():
    ids = keras.Input((6,), dtype="int32")
    logits, _ = VanillaRNN(7, units=4, sigma=0.3, seed=3)(ids)
    return keras.Model(ids, logits)


def loss_fn(y, logits):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)


@pytest.mark.parametrize("rho", [None, 0.9])
def test_vanilla_rnn_tape_update_equals_the_densified_update(rho):
    sparse_model, dense_model = rnn_model(), rnn_model()
    dense_model.set_weights(sparse_model.get_weights())
    with tf.GradientTape() as tape:
        loss = loss_fn(IDS[:, 1:], sparse_model(IDS[:, :-1]))
    grads = tape.gradient(loss, sparse_model.trainable_variables)
    assert sparse_model.trainable_variables[0].path.endswith("/U")
    assert isinstance(grads[0], tf.IndexedSlices)  # a character repeats: slices of U
    assert len(set(grads[0].indices.numpy())) < len(grads[0].indices)
    dense = [tf.convert_to_tensor(g) for g in grads]
    AdaGrad(0.1, rho=rho, clipvalue=5.0).apply(grads, sparse_model.trainable_variables)
    AdaGrad(0.1, rho=rho, clipvalue=5.0).apply(dense, dense_model.trainable_variables)
    before = rnn_model().get_weights()
    assert np.abs(sparse_model.get_weights()[0] - before[0]).max() > 1e-3  # U moved
    for got, want in zip(sparse_model.get_weights(), dense_model.get_weights()):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rho", [None, 0.9])
def test_vanilla_rnn_model_fit_equals_the_densified_update(rho):
    model, reference = rnn_model(), rnn_model()
    reference.set_weights(model.get_weights())
    model.compile(AdaGrad(0.1, rho=rho, clipvalue=5.0), loss_fn)
    model.fit(IDS[:, :-1], IDS[:, 1:], batch_size=2, epochs=1, shuffle=False, verbose=0)
    with tf.GradientTape() as tape:
        loss = loss_fn(IDS[:, 1:], reference(IDS[:, :-1]))
    grads = tape.gradient(loss, reference.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)
    AdaGrad(0.1, rho=rho, clipvalue=5.0).apply([tf.convert_to_tensor(g) for g in grads],
                                                reference.trainable_variables)
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
