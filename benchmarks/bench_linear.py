"""Training throughput of the linear classifier: kcourse trainer vs model.fit vs NumPy.

One process trains the same one-layer classifier (3072 -> 10, cross-entropy, lambda .1,
SGD eta .001, batch 100, reshuffled every epoch) on the 10,000 images of data_batch_1
three ways, and reports images/second of one epoch in steady state (the median over
the timed epochs; the first epoch, which includes tracing, is not timed):

  kcourse    kcourse.train.fit (GradientTape inside tf.function)
  model.fit  Keras' model.fit with the same model, loss and optimizer
             (default steps_per_execution=1, and =10 like kcourse's default)
  numpy      the forward/backward pass written in NumPy, as the course solutions do:
             in float64 (NumPy's and Matlab's default, what the course code runs in) and
             in float32 (a stronger baseline than the course's)

Usage: python benchmarks/bench_linear.py [--data-dir PATH] [--epochs 5]
"""

import argparse
import json
import os
import sys
import time

import keras
import numpy as np


class EpochTimer(keras.callbacks.Callback):
    """Keras callback recording the wall time of every epoch."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def numpy_epoch(W, b, x, y, lam, eta, batch_size, rng):
    """One epoch of mini-batch GD for softmax + cross-entropy + lambda ||W||^2."""
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        xb, yb = x[idx], y[idx]
        s = xb @ W + b
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - yb) / len(xb)
        W -= eta * (xb.T @ g + 2 * lam * W)
        b -= eta * g.sum(axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("KCOURSE_DATA_DIR"))
    parser.add_argument("--epochs", type=int, default=5, help="epochs timed (after one warm-up)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    from kcourse.data import DataNotFoundError, batched, load_cifar10
    from kcourse.losses import SoftmaxCrossEntropy
    from kcourse.models import linear_classifier
    from kcourse.train import fit

    try:
        splits = load_cifar10("a1", data_dir=args.data_dir)
    except DataNotFoundError as error:
        sys.exit(f"benchmark needs the real CIFAR-10: {error}")
    lam, eta, batch, epochs = 0.1, 0.001, 100, args.epochs + 1
    train = batched(splits.train, batch, shuffle_seed=0)
    n = splits.sizes()["train"]
    results = {}

    keras.utils.set_random_seed(0)
    timer = EpochTimer()
    fit(linear_classifier(lam=lam, seed=0), SoftmaxCrossEntropy(), train, train_eval=False,
        optimizer=keras.optimizers.SGD(eta), epochs=epochs, callbacks=[timer], verbose=0)
    results["kcourse"] = n / np.median(timer.times[1:])

    for spe in (1, 10):
        keras.utils.set_random_seed(0)
        model = linear_classifier(lam=lam, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(eta), loss=SoftmaxCrossEntropy(),
                      steps_per_execution=spe)
        timer = EpochTimer()
        model.fit(train, epochs=epochs, callbacks=[timer], verbose=0)
        results[f"model.fit (steps_per_execution={spe})"] = n / np.median(timer.times[1:])

    x, y = splits.numpy("train")
    for dtype, label in ((np.float64, "numpy (float64, as the course solutions)"),
                         (np.float32, "numpy (float32)")):
        rng = np.random.default_rng(0)
        xd, yd = x.astype(dtype), y.astype(dtype)
        W = (rng.normal(size=(3072, 10)) * 0.01).astype(dtype)
        b = np.zeros(10, dtype)
        times = []
        for _ in range(epochs):
            start = time.perf_counter()
            numpy_epoch(W, b, xd, yd, dtype(lam), dtype(eta), batch, rng)
            times.append(time.perf_counter() - start)
        results[label] = n / np.median(times[1:])

    base = results["kcourse"]
    print(f"Linear classifier, one epoch on {n} CIFAR-10 images, batch {batch} "
          f"(median of {args.epochs} epochs after a warm-up)")
    print(f"{'method':42s} {'images/s':>12s} {'kcourse / method':>18s}")
    for name, speed in results.items():
        print(f"{name:42s} {speed:12,.0f} {base / speed:18.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
