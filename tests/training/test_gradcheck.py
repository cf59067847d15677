import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.training import gradcheck, relative_error
from kcourse.losses import MulticlassSVM, SoftmaxCrossEntropy
from kcourse.tracks.cifar_mlp.models import linear_classifier

RNG = np.random.default_rng(0)
X = RNG.normal(size=(5, 20))
Y = np.eye(10)[RNG.integers(0, 10, 5)]


@pytest.mark.parametrize("loss_cls", [SoftmaxCrossEntropy, MulticlassSVM])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_tape_gradients_match_finite_differences(loss_cls, lam):
    model = linear_classifier(input_dim=20, lam=lam, seed=0, dtype="float64")
    errors = gradcheck(model, loss_cls(dtype="float64"), X, Y)
    assert set(errors) == {"linear/kernel", "linear/bias"}
    assert max(errors.values()) < 1e-6, errors


@keras.saving.register_keras_serializable(package="kcourse_tests")
class WrongGradient(keras.layers.Layer):
    """Identity whose backward pass is wrong by a factor 1.01."""

    def call(self, x):
        @tf.custom_gradient
        def identity(v):
            return v, lambda g: 1.01 * g
        return identity(x)


def test_gradcheck_catches_a_wrong_gradient():
    inputs = keras.Input((20,), dtype="float64")
    base = linear_classifier(input_dim=20, seed=0, dtype="float64")
    model = keras.Model(inputs, WrongGradient(dtype="float64")(base(inputs)))
    errors = gradcheck(model, SoftmaxCrossEntropy(dtype="float64"), X, Y)
    assert max(errors.values()) > 1e-3


def test_gradcheck_needs_float64():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(linear_classifier(input_dim=20), SoftmaxCrossEntropy(), X, Y)


def test_relative_error_formula():
    np.testing.assert_allclose(relative_error(np.array([1.0, 0.0]), np.array([3.0, 0.0])),
                               [0.5, 0.0])
