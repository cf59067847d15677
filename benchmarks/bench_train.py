"""Training throughput: the kcourse trainer vs model.fit vs NumPy, on real CIFAR-10.

One process trains the same network three ways and reports images/second of one
epoch in steady state (the median over the timed epochs; the first epoch, which
includes tracing, is not timed):

  kcourse    kcourse.training.fit (GradientTape inside tf.function, 100 updates per call,
             on a kcourse.data.InMemoryBatches: batches gathered in the graph from one
             permutation per epoch)
  model.fit  Keras' model.fit with the same model, loss and optimizer
             (default steps_per_execution=1, and =10), on the same batches through
             tf.data (kcourse.data.batched)
  numpy      the forward/backward pass written in NumPy, as the course solutions do:
             in float64 (NumPy's and Matlab's default, what the course code runs in) and
             in float32 (a stronger baseline than the course's)

Models (--model):
  linear   A1: 3072 -> 10, cross-entropy, lambda .1, SGD eta .001, batch 100, on the
           10,000 images of data_batch_1
  mlp-bn   A3: 3072 -> 50 -> 50 -> 10 with batch normalization before each ReLU, He init,
           lambda .005, cyclical rate 1e-5..1e-1 (n_s 2250), batch 100, on the 45,000
           images of the search split. Also reports the peak resident memory of the
           process at the end of the kcourse run (data, TensorFlow and training).

TensorFlow runs on one thread unless --threads says otherwise (process-wide: kcourse and
model.fit alike; NumPy's BLAS is not affected).

Usage: python benchmarks/bench_train.py [--model linear|mlp-bn] [--data-dir PATH] [--epochs N]
                                        [--threads N] [--steps-per-execution N]
"""

import argparse
import json
import os
import resource
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


def softmax_gradient(s, y):
    """d(mean cross-entropy)/d(scores) for scores `s` and one-hot labels `y`."""
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    return (p - y) / len(s)


def numpy_linear_epoch(params, x, y, lam, eta, batch_size, rng, step):
    """One epoch of mini-batch GD for softmax + cross-entropy + lambda ||W||^2.

    `eta(step)` is the learning rate of update `step`; returns the next step."""
    W, b = params
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        xb = x[idx]
        g = softmax_gradient(xb @ W + b, y[idx])
        rate = eta(step)
        W -= rate * (xb.T @ g + 2 * lam * W)
        b -= rate * g.sum(axis=0)
        step += 1
    return step


def numpy_bn_epoch(params, x, y, lam, eta, batch_size, rng, step, eps=1e-3, alpha=0.9):
    """One epoch of the k-layer net with batch norm (course A3), forward and backward.

    `params` is `[(W, gamma, beta, mu_av, v_av) per hidden layer..., (W, b)]`; the
    linear layers before BN have no bias (as in `kcourse.tracks.cifar_mlp.models.mlp`).
    Returns the next step.
    """
    order = rng.permutation(len(x))
    *hidden, (W_out, b_out) = params
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        h, cache = x[idx], []
        for W, gamma, beta, mu_av, v_av in hidden:
            s = h @ W
            mu, v = s.mean(axis=0), s.var(axis=0)
            mu_av *= alpha
            mu_av += (1 - alpha) * mu
            v_av *= alpha
            v_av += (1 - alpha) * v
            inv_std = 1.0 / np.sqrt(v + eps)
            s_hat = (s - mu) * inv_std
            cache.append((h, s_hat, inv_std))
            h = np.maximum(0.0, gamma * s_hat + beta)
        g = softmax_gradient(h @ W_out + b_out, y[idx])
        rate = eta(step)
        grad_h = g @ W_out.T
        W_out -= rate * (h.T @ g + 2 * lam * W_out)
        b_out -= rate * g.sum(axis=0)
        for (W, gamma, beta, _, _), (h_in, s_hat, inv_std) in zip(hidden[::-1], cache[::-1]):
            g = grad_h * (h > 0)
            d_gamma, d_beta = (g * s_hat).sum(axis=0), g.sum(axis=0)
            g = g * gamma
            g = (g - g.mean(axis=0) - s_hat * (g * s_hat).mean(axis=0)) * inv_std
            grad_h = g @ W.T
            W -= rate * (h_in.T @ g + 2 * lam * W)
            gamma -= rate * d_gamma
            beta -= rate * d_beta
            h = h_in
        step += 1
    return step


def numpy_params(model_name, dtype, rng):
    if model_name == "linear":
        return [(rng.normal(size=(3072, 10)) * 0.01).astype(dtype), np.zeros(10, dtype)]
    sizes = [3072, 50, 50]
    params = [((rng.normal(size=(a, b)) * np.sqrt(2 / a)).astype(dtype), np.ones(b, dtype),
               np.zeros(b, dtype), np.zeros(b, dtype), np.ones(b, dtype))
              for a, b in zip(sizes[:-1], sizes[1:])]
    return params + [((rng.normal(size=(50, 10)) * np.sqrt(2 / 50)).astype(dtype),
                      np.zeros(10, dtype))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("linear", "mlp-bn"), default="linear")
    parser.add_argument("--data-dir", default=os.environ.get("KCOURSE_DATA_DIR"))
    parser.add_argument("--epochs", type=int, help="epochs timed after one warm-up "
                                                   "(default 5 for linear, 2 for mlp-bn)")
    parser.add_argument("--threads", type=int, default=1,
                        help="TensorFlow threads, process-wide: kcourse and model.fit "
                             "(0: TensorFlow's default; NumPy is not affected)")
    parser.add_argument("--steps-per-execution", type=int, default=100,
                        help="updates per compiled call of the kcourse trainer (default 100, as fit)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    from kcourse.training import set_threads

    set_threads(args.threads)  # before TensorFlow's first op

    from kcourse.data import DataNotFoundError, InMemoryBatches, batched, load_cifar10
    from kcourse.losses import SoftmaxCrossEntropy
    from kcourse.schedules import CyclicLearningRate
    from kcourse.tracks.cifar_mlp.models import linear_classifier, mlp
    from kcourse.training import fit

    linear = args.model == "linear"
    timed = args.epochs or (5 if linear else 2)
    try:
        splits = load_cifar10("a1" if linear else "search", data_dir=args.data_dir)
    except DataNotFoundError as error:
        sys.exit(f"benchmark needs the real CIFAR-10: {error}")
    batch, epochs = 100, timed + 1
    if linear:
        lam, eta = 0.1, (lambda step: 0.001)

        def build():
            return linear_classifier(lam=lam, seed=0)
    else:
        lam, eta = 0.005, CyclicLearningRate(1e-5, 1e-1, 2250)

        def build():
            return mlp([50, 50], batch_norm=True, init="he", lam=lam, seed=0)
    # the same shuffled batches two ways: gathered inside kcourse's compiled step from one
    # permutation per epoch, and through tf.data's iterator for model.fit
    train_in_memory = InMemoryBatches(splits.train, batch, seed=0)
    train = batched(splits.train, batch, shuffle_seed=0)
    n = splits.sizes()["train"]
    results = {}

    keras.utils.set_random_seed(0)
    timer = EpochTimer()
    fit(build(), SoftmaxCrossEntropy(), train_in_memory, train_eval=False,
        optimizer=keras.optimizers.SGD(eta(0) if linear else eta), epochs=epochs,
        steps_per_execution=args.steps_per_execution, callbacks=[timer], verbose=0)
    results["kcourse"] = n / np.median(timer.times[1:])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux

    for spe in (1, 10):
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=keras.optimizers.SGD(eta(0) if linear else eta),
                      loss=SoftmaxCrossEntropy(), steps_per_execution=spe)
        timer = EpochTimer()
        model.fit(train, epochs=epochs, callbacks=[timer], verbose=0)
        results[f"model.fit (steps_per_execution={spe})"] = n / np.median(timer.times[1:])

    x, y = splits.numpy("train")
    numpy_epoch = numpy_linear_epoch if linear else numpy_bn_epoch
    rate = eta if linear else (lambda step: float(eta(step)))
    for dtype, label in ((np.float64, "numpy (float64, as the course solutions)"),
                         (np.float32, "numpy (float32)")):
        rng = np.random.default_rng(0)
        xd, yd = x.astype(dtype), y.astype(dtype)
        params = numpy_params(args.model, dtype, rng)
        times, step = [], 0
        for _ in range(epochs):
            start = time.perf_counter()
            step = numpy_epoch(params, xd, yd, dtype(lam), rate, batch, rng, step)
            times.append(time.perf_counter() - start)
        results[label] = n / np.median(times[1:])

    base = results["kcourse"]
    title = "Linear classifier" if linear else "3-layer net [50, 50] with batch norm"
    print(f"{title}, one epoch on {n} CIFAR-10 images, batch {batch} "
          f"(median of {timed} epochs after a warm-up), TensorFlow threads: "
          f"{args.threads or 'default'}, kcourse steps per call: {args.steps_per_execution}")
    print(f"{'method':42s} {'images/s':>12s} {'kcourse / method':>18s}")
    for name, speed in results.items():
        print(f"{name:42s} {speed:12,.0f} {base / speed:18.2f}")
    print(f"peak resident memory at the end of the kcourse run: {peak_mb:,.0f} MB")
    results["kcourse_peak_rss_mb"] = peak_mb
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
