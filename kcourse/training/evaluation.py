"""Evaluation of a model on a batched dataset: the mean loss, the cost (loss + weight
penalties) and any `keras.metrics` (default: accuracy over one-hot labels)."""

import keras
import numpy as np
import tensorflow as tf

from kcourse.training.steps import regularization


def default_metrics():
    """Accuracy, accumulated in float64 (exact counts)."""
    return [keras.metrics.CategoricalAccuracy(name="accuracy", dtype="float64")]


def make_evaluator(model, loss_fn, metrics=None):
    """A function mapping a batched `(x, y)` dataset to `{"loss", "cost", <metric
    names>}`. The batch sums run compiled (traced once per input shape)."""
    metrics = default_metrics() if metrics is None else list(metrics)

    @tf.function(reduce_retracing=True)
    def batch_sum(x, y):
        outputs = model(x, training=False)
        n = tf.cast(tf.shape(x)[0], tf.float64)
        for metric in metrics:
            metric.update_state(y, outputs)
        return tf.cast(loss_fn(y, outputs), tf.float64) * n, n

    def evaluate_dataset(dataset):
        for metric in metrics:
            metric.reset_state()
        loss = n = 0.0
        for x, y in dataset:
            batch_loss, batch_n = batch_sum(x, y)
            loss, n = loss + float(batch_loss), n + float(batch_n)
        if n == 0:
            raise ValueError("Cannot evaluate on an empty dataset.")
        mean_loss = loss / n
        result = {"loss": mean_loss, "cost": mean_loss + float(regularization(model))}
        result.update({m.name: float(m.result()) for m in metrics})
        return result

    return evaluate_dataset


def evaluate(model, loss_fn, dataset, metrics=None):
    """Mean loss, cost (loss + weight penalties) and accuracy (or `metrics`) of `model`
    on `dataset`.

    Args:
        model: a Keras model.
        loss_fn: a loss taking labels and the model's outputs.
        dataset: a batched dataset of `(x, y)`.
        metrics: `keras.metrics` to report (default: accuracy over one-hot labels).
    """
    return make_evaluator(model, loss_fn, metrics)(dataset)


def predict_scores(model, dataset):
    """Concatenated scores and labels of a batched `(x, y)` dataset."""
    scores, labels = [], []
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    for x, y in dataset:
        scores.append(predict(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(scores), np.concatenate(labels)
