"""Batch normalization with the course's hand-written backward pass."""

import keras
import tensorflow as tf
from keras import ops


@tf.custom_gradient
def batch_norm_train(x, gamma, beta, epsilon):
    """Normalize `x` (batch, features) with its batch statistics, then scale and shift.

    Returns `(y, mean, variance)`. The gradient is the course's `BatchNormBackPass`
    written out (not derived by the tape): with `x_hat = (x - mean) / sqrt(v + eps)`
    and upstream gradient `G`,

        dgamma = sum_i G_i * x_hat_i,   dbeta = sum_i G_i,
        G_hat  = G * gamma,
        dx     = (G_hat - mean_i(G_hat) - x_hat * mean_i(G_hat * x_hat)) / sqrt(v + eps).

    `mean` and `variance` (biased, 1/n) only feed the moving averages and get no
    gradient.
    """
    mean = tf.reduce_mean(x, axis=0)
    centered = x - mean
    variance = tf.reduce_mean(tf.square(centered), axis=0)
    inv_std = tf.math.rsqrt(variance + epsilon)
    x_hat = centered * inv_std
    y = x_hat * gamma + beta

    def grad(dy, dmean=None, dvariance=None):
        dgamma = tf.reduce_sum(dy * x_hat, axis=0)
        dbeta = tf.reduce_sum(dy, axis=0)
        g_hat = dy * gamma
        dx = (g_hat - tf.reduce_mean(g_hat, axis=0)
              - x_hat * tf.reduce_mean(g_hat * x_hat, axis=0)) * inv_std
        return dx, dgamma, dbeta, tf.zeros_like(epsilon)

    return (y, tf.stop_gradient(mean), tf.stop_gradient(variance)), grad


@keras.saving.register_keras_serializable(package="kcourse")
class BatchNormalization(keras.layers.Layer):
    """Batch normalization of the course, placed between a linear layer and its ReLU.

    Training: normalize each feature with the mini-batch mean `mu` and (biased)
    variance `v`, `x_hat = (x - mu) / sqrt(v + epsilon)`, output `gamma * x_hat + beta`,
    and update the moving averages `mu_av = momentum * mu_av + (1 - momentum) * mu`
    (same for `v`). Inference: normalize with `mu_av` and `v_av`. The backward pass is
    written by hand (`batch_norm_train`).

    The course initializes the averages from the first training batch
    (`init_from_first_batch=True`, the default); `False` starts them at 0 and 1 as
    `keras.layers.BatchNormalization` does, and then both layers agree in both modes.

    Args:
        momentum: `alpha` of the moving averages (course: 0.9).
        epsilon: small constant added to the variance.
        init_from_first_batch: set the moving averages to the first batch's statistics.
        **kwargs: base `Layer` arguments.

    Input shape: `(batch, features)`. Output shape: the same.

    Reference:
        S. Ioffe and C. Szegedy, "Batch Normalization: Accelerating Deep Network
        Training by Reducing Internal Covariate Shift", ICML 2015; DD2424 Assignment 3.
    """

    def __init__(self, momentum=0.9, epsilon=1e-3, init_from_first_batch=True, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}.")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.init_from_first_batch = bool(init_from_first_batch)
        self.input_spec = keras.layers.InputSpec(ndim=2)

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError("BatchNormalization needs a known number of features.")
        shape = (features,)
        self.gamma = self.add_weight(name="gamma", shape=shape, initializer="ones")
        self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape,
                                           initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape,
                                               initializer="ones", trainable=False)
        # 0 until the first training batch has been seen (for init_from_first_batch)
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros",
                                    trainable=False)
        self.input_spec = keras.layers.InputSpec(ndim=2, axes={-1: features})

    def call(self, inputs, training=False):
        if not training:
            inv_std = ops.rsqrt(ops.cast(self.moving_variance, inputs.dtype) + self.epsilon)
            x_hat = (inputs - ops.cast(self.moving_mean, inputs.dtype)) * inv_std
            return x_hat * ops.cast(self.gamma, inputs.dtype) + ops.cast(self.beta,
                                                                         inputs.dtype)
        gamma = ops.cast(self.gamma, inputs.dtype)
        beta = ops.cast(self.beta, inputs.dtype)
        outputs, mean, variance = batch_norm_train(
            inputs, gamma, beta, ops.convert_to_tensor(self.epsilon, inputs.dtype))
        a = self.momentum
        if self.init_from_first_batch:  # first batch: take its statistics as they are
            a = a * ops.cast(self.seen, inputs.dtype)
        dtype = self.moving_mean.dtype
        self.moving_mean.assign(ops.cast(a * ops.cast(self.moving_mean, inputs.dtype)
                                         + (1 - a) * mean, dtype))
        self.moving_variance.assign(ops.cast(a * ops.cast(self.moving_variance, inputs.dtype)
                                             + (1 - a) * variance, dtype))
        self.seen.assign(1.0)
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon,
                      init_from_first_batch=self.init_from_first_batch)
        return config
