"""Inverted dropout."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kcourse")
class Dropout(keras.layers.Layer):
    """Inverted dropout: in training, zero each unit with probability `rate` and scale
    the kept ones by `1 / (1 - rate)`, so that the expected activation is unchanged and
    inference is the identity (no rescaling at test time).

    The mask is drawn from a `keras.random.SeedGenerator`, so a seeded layer gives
    the same sequence of masks on every run.

    Args:
        rate: probability of dropping a unit, in [0, 1).
        seed: optional int seed of the masks.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: a tensor of any shape.
        training: apply dropout (True) or pass the input through (False, default).

    Reference:
        N. Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
        Overfitting", JMLR 2014; DD2424 Assignment 2 (bonus).
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        keep = 1.0 - self.rate
        draws = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator,
                                     dtype=inputs.dtype)
        return ops.where(draws < keep, inputs / keep, ops.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config
