"""AdaGrad (and its RMSProp variant), the optimizer of the course's char-RNN."""

import keras
import tensorflow as tf
from keras import ops


def summed_gradient(gradient, variable):
    """The dense gradient of `variable`: `tf.IndexedSlices` summed over their indices.

    The gradient of a row lookup (`ops.take(U, ids)`, an embedding) is a
    `tf.IndexedSlices` with one slice per looked-up id, and an id that repeats in
    the batch gives several slices for the same row. The gradient of the row is
    their sum. Other gradients (dense tensors, `None`) are returned as they are.
    """
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    rows = variable.shape[0]
    if rows is None:
        rows = gradient.dense_shape[0]
    return tf.math.unsorted_segment_sum(gradient.values, gradient.indices, rows)


@keras.saving.register_keras_serializable(package="kcourse")
class AdaGrad(keras.optimizers.Optimizer):
    """AdaGrad as the course writes it, with an RMSProp variant.

    For every parameter θ with gradient g, a running sum m of squared gradients
    scales the step:

        m ← m + g²                     (AdaGrad, `rho=None`)
        m ← rho·m + (1 − rho)·g²       (RMSProp, `rho` in (0, 1))
        θ ← θ − η · g / sqrt(m + ε)

    With `initial_accumulator_value=0` and the same epsilon this is exactly
    `keras.optimizers.Adagrad` (whose default accumulator starts at 0.1). The course
    clips every gradient entry to [−5, 5] first: pass `clipvalue=5.0`, or
    `global_clipnorm=...` to clip by the global norm (Keras' base-optimizer options).

    g is the full gradient of θ, as in the course. A sparse gradient
    (`tf.IndexedSlices`, e.g. of the one-hot input weights `U` when a character
    repeats in the sequence) is first summed into its dense tensor, so that
    clipping, g² and the RMSProp decay act on the summed gradient of every row
    exactly as on the equivalent dense gradient (Keras' base optimizer would
    otherwise clip and square each slice separately).

    Args:
        learning_rate: η, a float or a `LearningRateSchedule` (course: 0.1).
        epsilon: ε inside the square root (course: 1e-8).
        rho: None for AdaGrad, else the RMSProp decay of the running average.
        initial_accumulator_value: starting value of m (course: 0).
        **kwargs: base `keras.optimizers.Optimizer` arguments (`clipvalue`,
            `global_clipnorm`, `name`, ...).

    Reference:
        J. Duchi, E. Hazan, Y. Singer, "Adaptive Subgradient Methods for Online
        Learning and Stochastic Optimization", JMLR 2011; T. Tieleman, G. Hinton,
        Lecture 6.5 (RMSProp), 2012; DD2424 Assignment 4.
    """

    def __init__(self, learning_rate=0.1, epsilon=1e-8, rho=None,
                 initial_accumulator_value=0.0, name="adagrad", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if rho is not None and not 0 < rho < 1:
            raise ValueError(f"rho must be None (AdaGrad) or in (0, 1) (RMSProp), got {rho}.")
        if epsilon < 0 or initial_accumulator_value < 0:
            raise ValueError("epsilon and initial_accumulator_value must be non-negative.")
        self.epsilon = float(epsilon)
        self.rho = None if rho is None else float(rho)
        self.initial_accumulator_value = float(initial_accumulator_value)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._accumulators = self.add_optimizer_variables(
            var_list, "accumulator",
            initializer=keras.initializers.Constant(self.initial_accumulator_value))

    def apply(self, grads, trainable_variables=None):
        # sum sparse gradients before the base optimizer scales and clips them
        grads = list(grads)
        if trainable_variables is not None:
            trainable_variables = list(trainable_variables)
        variables = (self._trainable_variables if trainable_variables is None
                     else trainable_variables)
        if len(variables) == len(grads):  # else the base class raises its error
            grads = [summed_gradient(g, v) for g, v in zip(grads, variables)]
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(summed_gradient(gradient, variable), variable.dtype)
        m = self._accumulators[self._get_variable_index(variable)]
        if self.rho is None:
            self.assign_add(m, ops.square(g))
        else:
            self.assign(m, self.rho * m + (1.0 - self.rho) * ops.square(g))
        self.assign_sub(variable, lr * g / ops.sqrt(m + self.epsilon))

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, rho=self.rho,
                      initial_accumulator_value=self.initial_accumulator_value)
        return config
