"""Scale the gradient flowing back through a layer: a per-part learning rate."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="kcourse")
class GradientScale(keras.layers.Layer):
    """The identity forward; backward, the gradient times `scale`.

    Put between a pretrained body and a new head, it gives the body's weights the
    gradient `scale * dL/dw`: with SGD (momentum included) that is training the body at
    `scale` times the head's learning rate, the usual way to fine-tune ("discriminative
    learning rates"), with one optimizer. An optimizer's decoupled weight decay is not
    scaled (it acts on the weights, not the gradient): with it, `scale=0` still shrinks
    the body's weights. Without it, `scale=0` stops the body's updates (a frozen body,
    but its batch norm still in training mode). `scale=1` is the identity both ways.
    (Adam's updates do not change when a gradient is scaled: use SGD.)

    Args:
        scale: the gradient's factor, >= 0.
        **kwargs: base `Layer` arguments.

    Reference:
        J. Howard and S. Ruder, "Universal Language Model Fine-tuning for Text
        Classification", ACL 2018 (discriminative fine-tuning); UiB INF265
        (transfer learning).
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        scale = float(scale)
        if not scale >= 0 or scale == float("inf"):
            raise ValueError(f"GradientScale: scale must be a finite number >= 0, got {scale}.")
        self.scale = scale

    def call(self, inputs):
        scale = self.scale

        @tf.custom_gradient
        def identity(x):
            def grad(upstream):
                return upstream * tf.cast(scale, upstream.dtype)
            return tf.identity(x), grad

        return identity(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
