"""The affine layer s = x W + b with the course's initialisations."""

import math

import keras
from keras import ops

INITS = ("gaussian", "xavier", "he")


def course_initializer(init, fan_in, sigma=0.01, seed=None):
    """Return the Keras initializer for one of the course's weight initialisations.

    Args:
        init: `"gaussian"` (N(0, sigma^2)), `"xavier"` (N(0, 1/fan_in), the course's
            "Xavier"), or `"he"` (N(0, 2/fan_in)).
        fan_in: number of inputs of the layer.
        sigma: standard deviation for `"gaussian"`.
        seed: optional seed of the initializer.
    """
    if init == "gaussian":
        stddev = float(sigma)
    elif init == "xavier":
        stddev = 1.0 / math.sqrt(fan_in)
    elif init == "he":
        stddev = math.sqrt(2.0 / fan_in)
    else:
        raise ValueError(f"Unknown init {init!r}: use one of {', '.join(INITS)}.")
    if stddev <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}.")
    return keras.initializers.RandomNormal(mean=0.0, stddev=stddev, seed=seed)


@keras.saving.register_keras_serializable(package="kcourse")
class Linear(keras.layers.Layer):
    """Fully connected layer `s = x W + b` with the course's initialisations.

    The course writes `s = W x + b` with `W` of shape (units, d); Keras convention
    stores the transpose, `kernel` of shape (d, units), so that batches are rows.
    Biases start at zero. The weight penalty `lambda * ||W||^2` of the course's cost
    is a Keras regularizer: pass `kernel_regularizer=keras.regularizers.L2(lambda)`
    (Keras' L2 has no factor 1/2, exactly as the course's cost), so it appears in
    `model.losses` for the kcourse trainer and for `model.fit` alike.

    Args:
        units: number of outputs.
        init: `"gaussian"`, `"xavier"` or `"he"` (see `course_initializer`).
        sigma: standard deviation of the `"gaussian"` init (course: 0.01).
        use_bias: whether to add the bias `b`.
        kernel_regularizer: optional Keras regularizer for `W`.
        seed: optional seed for the initializer.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Input shape: `(batch, d)`. Output shape: `(batch, units)`.

    Reference:
        DD2424 Assignment 1 (one-layer network), Assignment 2 (He/Xavier init).
    """

    def __init__(self, units, init="gaussian", sigma=0.01, use_bias=True,
                 kernel_regularizer=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be a positive integer, got {units}.")
        if init not in INITS:
            raise ValueError(f"Unknown init {init!r}: use one of {', '.join(INITS)}.")
        self.units = int(units)
        self.init = init
        self.sigma = float(sigma)
        self.use_bias = use_bias
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.seed = seed
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def build(self, input_shape):
        fan_in = input_shape[-1]
        if fan_in is None:
            raise ValueError("Linear needs a known last input dimension.")
        self.kernel = self.add_weight(
            name="kernel",
            shape=(fan_in, self.units),
            initializer=course_initializer(self.init, fan_in, self.sigma, self.seed),
            regularizer=self.kernel_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        else:
            self.bias = None
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: fan_in})

    def call(self, inputs):
        outputs = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            init=self.init,
            sigma=self.sigma,
            use_bias=self.use_bias,
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            seed=self.seed,
        )
        return config
