"""The learning-rate range test (Smith 2015): pick eta_min and eta_max for a cyclical rate."""

import math

import keras
import numpy as np

from kcourse.training.fit import fit
from kcourse.training.steps import as_source


def suggest_rates(rows, metric="val_accuracy", rise=0.1, window=3):
    """Suggest `eta_min` and `eta_max` from the rows of a range test.

    As Smith describes: `eta_max` is the rate where the (smoothed) accuracy peaks,
    after which it levels off or falls; `eta_min` is the rate where the accuracy has
    started to rise, i.e. first exceeds its starting value by `rise` of the way to the
    peak.

    Args:
        rows: dicts with `learning_rate` and `metric`, in training order.
        metric: the accuracy to follow.
        rise: fraction of the initial-to-peak gain that marks the start of the rise.
        window: width of the moving average that smooths the curve.
    """
    rows = [r for r in rows if r.get(metric) is not None and math.isfinite(r[metric])]
    if len(rows) < 3:
        raise ValueError("The range test has too few finite points to suggest rates; "
                         "run it for more updates or with a lower eta_max.")
    rates = np.array([r["learning_rate"] for r in rows])
    values = np.array([r[metric] for r in rows])
    kernel = np.ones(window) / window
    smooth = np.convolve(np.pad(values, window // 2, mode="edge"), kernel, mode="valid")
    peak = int(smooth.argmax())
    threshold = smooth[0] + rise * (smooth[peak] - smooth[0])
    start = int(np.argmax(smooth[: peak + 1] >= threshold))
    return {"eta_min": float(rates[start]), "eta_max": float(rates[peak]),
            "peak_" + metric: float(smooth[peak])}


def lr_range_test(model, loss_fn, train, val, *, eta_min=1e-5, eta_max=1.0, epochs=8,
                  points=40, ramp="exponential", train_eval=None, verbose=0):
    """Train `model` while its learning rate rises from `eta_min` to `eta_max`.

    Smith raises the rate linearly over a narrow range; over several decades a
    geometric ramp (`"exponential"`, the default) spreads the evaluations evenly on the
    log scale the result is read on.

    Args:
        model, loss_fn: the model and loss (as for `kcourse.train.fit`).
        train: shuffled training batches (a batched dataset or `InMemoryBatches`);
            val: batched validation data.
        eta_min, eta_max: the range of the rate.
        epochs: length of the test (Smith: a few epochs).
        points: number of evaluations along the way.
        ramp: `"exponential"` (geometric) or `"linear"`.
        train_eval: batched data for the training loss (default: `train`).

    Returns:
        `(rows, suggestion)`: one dict per evaluation (`learning_rate`, `train_loss`,
        `val_accuracy`, ...) and `suggest_rates(rows)`.

    Reference:
        L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", 2015,
        section 3.3; DD2424 Assignment 2 (bonus).
    """
    if not 0 < eta_min < eta_max:
        raise ValueError(f"Need 0 < eta_min < eta_max, got {eta_min} and {eta_max}.")
    steps = epochs * as_source(train).steps_per_epoch
    if ramp == "exponential":
        rate = keras.optimizers.schedules.ExponentialDecay(eta_min, steps, eta_max / eta_min)
    elif ramp == "linear":
        rate = keras.optimizers.schedules.PolynomialDecay(eta_min, steps, eta_max, power=1.0)
    else:
        raise ValueError(f"Unknown ramp {ramp!r}: use 'exponential' or 'linear'.")
    history = fit(model, loss_fn, train, val, optimizer=keras.optimizers.SGD(rate),
                  max_steps=steps, eval_every=max(1, steps // points),
                  train_eval=train_eval, verbose=verbose)
    return history.rows, suggest_rates(history.rows)
