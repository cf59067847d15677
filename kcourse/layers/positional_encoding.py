"""Sinusoidal positional encoding."""

import keras
import numpy as np
from keras import ops


def sinusoidal_table(length, dim):
    """The positional encodings `P` `(length, dim)`, float64: `P[i, 2j] = sin(i /
    10000^(2j/dim))`, `P[i, 2j+1] = cos(i / 10000^(2j/dim))` (an odd last column is a
    sine)."""
    positions = np.arange(length, dtype=np.float64)[:, None]
    pairs = np.arange((dim + 1) // 2, dtype=np.float64)[None, :]
    angles = positions / 10000.0 ** (2.0 * pairs / dim)
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : dim // 2])
    return table


@keras.saving.register_keras_serializable(package="kcourse")
class PositionalEncoding(keras.layers.Layer):
    """Adds the sinusoidal position code of every time step to a sequence of vectors.

    `outputs[:, i] = inputs[:, i] + P[i]` with `P` from `sinusoidal_table`: the sine
    and cosine of the position at wavelengths from 2 pi to 10000 * 2 pi, so that
    attention, which treats its inputs as a set, sees their order. No weights.

    Args:
        max_length: the longest sequence the layer accepts.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: `(batch, time, dim)`, `time <= max_length`.

    Reference:
        A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3.5;
        UiB INF265 project 3 (`PositionalEncoder`).
    """

    def __init__(self, max_length=1000, **kwargs):
        super().__init__(**kwargs)
        if int(max_length) < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}.")
        self.max_length = int(max_length)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"PositionalEncoding expects inputs (batch, time, dim) with a "
                             f"known dim, got shape {input_shape}.")
        if input_shape[1] is not None and input_shape[1] > self.max_length:
            raise ValueError(f"sequences of {input_shape[1]} steps are longer than "
                             f"max_length={self.max_length}.")
        self.table = ops.convert_to_tensor(
            sinusoidal_table(self.max_length, input_shape[-1]), self.compute_dtype)

    def call(self, inputs):
        steps = ops.shape(inputs)[1]
        return inputs + ops.cast(self.table[None, :steps], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(max_length=self.max_length)
        return config
