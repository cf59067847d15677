"""Numerical gradient checking: the tape's gradients against centered differences."""

import numpy as np
import tensorflow as tf

from kcourse.training.steps import regularization


def relative_error(analytic, numeric, eps=1e-10):
    """Element-wise |ga - gn| / max(eps, |ga| + |gn|) (the course's measure)."""
    return np.abs(analytic - numeric) / np.maximum(eps, np.abs(analytic) + np.abs(numeric))


def gradcheck(model, loss_fn, x, y, h=1e-6, eps=1e-10, training=True):
    """Compare the gradients of the course's cost with centered finite differences.

    The cost is `loss_fn(y, model(x)) + sum(model.losses)`. Build the model and the
    loss in float64 (`dtype="float64"`), on a reduced input (the course uses the first
    ~20 dimensions and a few examples), and without random layers such as dropout.

    Args:
        model: a built Keras model.
        loss_fn: a `keras.losses.Loss`.
        x, y: inputs and one-hot labels.
        h: the finite-difference step.
        eps: floor of the relative error's denominator.
        training: the `training` flag of the forward pass (batch statistics for BN).

    Returns:
        `{variable path: max relative error}` over every trainable variable.
    """
    x = tf.convert_to_tensor(x, tf.float64)
    y = tf.convert_to_tensor(y, tf.float64)
    return check_gradients(
        lambda: loss_fn(y, model(x, training=training)) + regularization(model, tf.float64),
        model.trainable_variables, h=h, eps=eps)


def check_gradients(cost, variables, h=1e-6, eps=1e-10):
    """Compare the tape's gradients of `cost()` with centered finite differences.

    Args:
        cost: a function of no arguments returning a float64 scalar that depends on
            `variables` (it is called once per perturbed entry).
        variables: float64 variables to check, every entry of each.
        h: the finite-difference step.
        eps: floor of the relative error's denominator.

    Returns:
        `{variable path: max relative error}`.
    """
    not64 = [v.path for v in variables if v.dtype != "float64"]
    if not64:
        raise ValueError(f"gradient checking needs float64, but {', '.join(not64)} are "
                         "not float64: build the model with dtype='float64'.")
    cost = tf.function(cost)
    with tf.GradientTape() as tape:
        value = cost()
    analytic = tape.gradient(value, variables)

    errors = {}
    for variable, grad in zip(variables, analytic):
        if grad is None:
            raise ValueError(f"No gradient reaches {variable.path}.")
        grad = tf.convert_to_tensor(grad)
        original = np.array(variable.numpy())
        values = original.copy()  # perturbed one entry at a time, in place
        flat = values.reshape(-1)
        numeric = np.zeros(flat.size)
        for i in range(flat.size):
            for sign in (1.0, -1.0):
                flat[i] = original.flat[i] + sign * h
                variable.assign(values)
                numeric[i] += sign * float(cost())
            flat[i] = original.flat[i]
        variable.assign(original)
        numeric = (numeric / (2 * h)).reshape(original.shape)
        errors[variable.path] = float(relative_error(np.asarray(grad), numeric, eps).max())
    return errors
