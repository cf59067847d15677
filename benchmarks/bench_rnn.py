"""Char-RNN update throughput: the kcourse trainer vs model.fit vs NumPy, on tiny_shakespeare.

One process runs the course's vanilla RNN update (m=100, seq_length 25, batch of one
sequence, AdaGrad eta .1, clip 5, the text walked in order with the hidden state
carried) for a fixed number of updates three ways and reports updates/second in steady
state (a warm-up of 200 updates, which includes tracing, is not timed):

  kcourse    the compiled update loop of kcourse.training.fit (make_chunk) on a
             kcourse.data.TextStreams with the course's loss, as
             kcourse.tracks.char_rnn.train.fit_chars trains, called for 100 updates at
             a time as fit_chars does, no XLA; with --xla also jit_compile=True
  model.fit  Keras: one-hot inputs -> SimpleRNN(100, stateful=True) -> Dense, Keras'
             Adagrad (accumulator 0, clipvalue 5), sum-reduced cross-entropy, the same
             chunks in order; steps_per_execution 1 (default) and 100
  numpy      the forward/backward pass and AdaGrad in NumPy float64, as the course
             solutions write it (one-hot matrices, a loop over the 25 steps)

The NumPy twin starts from kcourse's initial weights; the benchmark prints how far its
weights are from those of kcourse's trainer in float64 after 5 updates (an
equivalence check).
TensorFlow runs on one thread by default here, as `kcourse run a4` does (--threads; the
setting is process-wide, so it applies to model.fit too; NumPy is not affected).
With --lstm N it instead times N updates of the `char-lstm` experiment's model (with
that experiment's threads setting) and reports characters/second.

Usage: python benchmarks/bench_rnn.py [--data-dir PATH] [--updates N] [--threads N]
                                      [--lstm N] [--xla]
"""

import argparse
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from kcourse import experiments
from kcourse.data import TextStreams
from kcourse.data.text import load_text
from kcourse.optimizers import AdaGrad
from kcourse.tracks.char_rnn.model import CharModel
from kcourse.tracks.char_rnn.track import build_char_model, build_optimizer
from kcourse.tracks.char_rnn.train import course_loss
from kcourse.training import make_chunk, set_threads

M, T, ETA, CLIP, EPS = 100, 25, 0.1, 5.0, 1e-8
WARMUP = 200
CHECK_UPDATES = 5


def numpy_updates(ids, params, n, e=0, hprev=None, eta=ETA):
    """`n` course updates in NumPy float64; returns the losses, `e` and `hprev`.

    params: dict of U (m, K), W (m, m), b (m, 1), V (K, m), c (K, 1) and their AdaGrad
    sums "m_U", ... (course layout: column vectors).
    """
    U, W, b, V, c = (params[k] for k in "UWbVc")
    K = V.shape[0]
    eye = np.eye(K)
    hprev = np.zeros((M, 1)) if hprev is None else hprev
    losses = []
    for _ in range(n):
        if e + T + 1 > len(ids):
            e, hprev = 0, np.zeros((M, 1))
        X, Y = eye[:, ids[e:e + T]], eye[:, ids[e + 1:e + T + 1]]
        H = np.zeros((M, T + 1))
        H[:, :1] = hprev
        P = np.zeros((K, T))
        for t in range(T):
            H[:, t + 1:t + 2] = np.tanh(W @ H[:, t:t + 1] + U @ X[:, t:t + 1] + b)
            o = V @ H[:, t + 1:t + 2] + c
            p = np.exp(o - o.max())
            P[:, t:t + 1] = p / p.sum()
        losses.append(-np.log((P * Y).sum(0)).sum())
        G = P - Y
        grads = {"V": G @ H[:, 1:].T, "c": G.sum(1, keepdims=True)}
        dA = np.zeros((M, T))
        da_next = np.zeros((M, 1))
        for t in reversed(range(T)):
            dh = V.T @ G[:, t:t + 1] + W.T @ da_next
            da_next = dh * (1 - H[:, t + 1:t + 2] ** 2)
            dA[:, t:t + 1] = da_next
        grads.update(W=dA @ H[:, :-1].T, U=dA @ X.T, b=dA.sum(1, keepdims=True))
        for k, g in grads.items():
            g = np.clip(g, -CLIP, CLIP)
            params["m_" + k] += g * g
            params[k] -= eta * g / np.sqrt(params["m_" + k] + EPS)
        hprev = H[:, -1:]
        e += T
    return losses, e, hprev


def numpy_params_from(model):
    rnn = model.rnn
    params = {"U": np.asarray(rnn.U, np.float64).T, "W": np.asarray(rnn.W, np.float64).T,
              "b": np.asarray(rnn.b, np.float64)[:, None],
              "V": np.asarray(rnn.V, np.float64).T, "c": np.asarray(rnn.c, np.float64)[:, None]}
    params.update({"m_" + k: np.zeros_like(v) for k, v in list(params.items())})
    return params


def compiled_updates(model, optimizer, ids, seq_length, batch_size, jit_compile=False):
    """`run(n)`: `n` updates of the compiled loop of `kcourse.training.fit` through the
    text in order (a `TextStreams`, hidden states carried), as `fit_chars` runs it;
    returns their mean loss."""
    streams = TextStreams(ids, seq_length, batch_size, model.zero_states(batch_size))
    optimizer.build(model.trainable_variables)
    chunk = make_chunk(model, course_loss, optimizer, streams, jit_compile=jit_compile)
    first = tf.constant(0, tf.int64)  # unused by TextStreams: the position is a variable

    def run(n):
        loss, _ = chunk(None, first, tf.constant(n, tf.int64))
        return loss

    return run


def time_kcourse(ids, K, updates, jit_compile=False):
    """Updates/s of the trainer's compiled loop (float32), and the largest difference
    between the weights of a float64 kcourse model and of the NumPy twin after
    `CHECK_UPDATES` updates from the same weights. (The two stay equal to round-off
    only for a few updates: AdaGrad's first steps are large and the trajectory is
    chaotic, differences grow about tenfold per update, in float64 too.)"""
    def trainer_of(dtype):
        keras.utils.set_random_seed(0)
        model = CharModel(K, "vanilla", M, seed=0, dtype=dtype)
        model.build()
        run = compiled_updates(model, AdaGrad(ETA, epsilon=EPS, clipvalue=CLIP), ids, T, 1,
                               jit_compile)
        return model, run, numpy_params_from(model)

    model, run, twin = trainer_of("float64")
    run(CHECK_UPDATES)
    # Keras keeps the learning rate in float32: the twin uses the same number
    numpy_updates(ids, twin, CHECK_UPDATES, eta=float(np.float32(ETA)))
    ours = numpy_params_from(model)
    gap = max(float(np.abs(ours[k] - twin[k]).max()) for k in "UWbVc")
    _, run, _ = trainer_of(None)
    run(100)  # traces
    run(100)
    calls = max(1, updates // 100)
    start = time.perf_counter()
    for _ in range(calls):
        float(run(100))  # as fit_chars: one call per 100 updates
    return calls * 100 / (time.perf_counter() - start), gap


def time_model_fit(ids, K, updates, steps_per_execution):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(batch_shape=(1, T, K), name="one_hot")
    hidden = keras.layers.SimpleRNN(M, stateful=True, return_sequences=True)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(K)(hidden))
    model.compile(keras.optimizers.Adagrad(ETA, initial_accumulator_value=0.0, epsilon=EPS,
                                           clipvalue=CLIP),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                             reduction="sum"),
                  steps_per_execution=steps_per_execution)
    n = WARMUP + updates
    starts = np.arange(n) * T % (len(ids) - T - 1)
    x = tf.one_hot(np.stack([ids[s:s + T] for s in starts])[:, None], K)[:, 0]
    y = np.stack([ids[s + 1:s + T + 1] for s in starts])
    model.fit(x[:WARMUP], y[:WARMUP], batch_size=1, shuffle=False, verbose=0)
    start = time.perf_counter()
    model.fit(x[WARMUP:], y[WARMUP:], batch_size=1, shuffle=False, verbose=0)
    return updates / (time.perf_counter() - start)


def time_numpy(ids, K, updates):
    model = CharModel(K, "vanilla", M, seed=0)
    model.build()
    params = numpy_params_from(model)
    _, e, h = numpy_updates(ids, params, WARMUP)
    start = time.perf_counter()
    numpy_updates(ids, params, updates, e, h)
    return updates / (time.perf_counter() - start)


def time_lstm(ids, K, updates):
    config = experiments.get("char-lstm")["defaults"]
    keras.utils.set_random_seed(0)
    model = build_char_model(config, K, 0)
    run = compiled_updates(model, build_optimizer(config), ids, config["seq_length"],
                           config["batch_size"])
    run(5)  # traces
    start = time.perf_counter()
    float(run(updates))
    seconds = time.perf_counter() - start
    return updates * config["seq_length"] * config["batch_size"] / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("KCOURSE_DATA_DIR"))
    parser.add_argument("--updates", type=int, default=5000, help="timed updates per way")
    parser.add_argument("--threads", type=int, default=1,
                        help="TensorFlow threads, as `kcourse run a4` sets them (default 1; "
                             "0: TensorFlow's default)")
    parser.add_argument("--lstm", type=int, default=0,
                        help="instead: time N updates of the char-lstm model (characters/s)")
    parser.add_argument("--xla", action="store_true", help="also time kcourse with XLA")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.lstm:
        args.threads = experiments.get("char-lstm")["defaults"]["threads"]
    set_threads(args.threads)
    texts = load_text(data_dir=args.data_dir)
    ids = texts.vocab.encode(texts.train)
    K = len(texts.vocab)
    results = {"updates": args.updates, "threads": args.threads, "cpu_count": os.cpu_count()}
    if args.lstm:
        results["char_lstm_chars_per_second"] = time_lstm(ids, K, args.lstm)
        print(f"char-lstm training: {results['char_lstm_chars_per_second']:.0f} characters/s "
              f"(TensorFlow threads: {args.threads or 'default'})")
    else:
        results["kcourse"], gap = time_kcourse(ids, K, args.updates)
        print(f"TensorFlow threads: {args.threads or 'default'}")
        print(f"kcourse trainer:        {results['kcourse']:9.0f} updates/s (float64 weights "
              f"vs the NumPy twin's after {CHECK_UPDATES} updates: max difference {gap:.1e})")
        results["numpy_twin_weight_gap"] = gap
        if args.xla:
            results["kcourse_xla"], _ = time_kcourse(ids, K, args.updates, jit_compile=True)
            print(f"kcourse trainer, XLA:   {results['kcourse_xla']:9.0f} updates/s")
        for spe in (1, 100):
            results[f"model_fit_spe{spe}"] = time_model_fit(ids, K, args.updates, spe)
            print(f"model.fit (spe={spe:3d}):   {results[f'model_fit_spe{spe}']:9.0f} updates/s")
        results["numpy"] = time_numpy(ids, K, args.updates)
        print(f"numpy float64:          {results['numpy']:9.0f} updates/s")
        print(f"kcourse / model.fit(spe=1): {results['kcourse'] / results['model_fit_spe1']:.2f}x;"
              f" / model.fit(spe=100): {results['kcourse'] / results['model_fit_spe100']:.2f}x;"
              f" / numpy: {results['kcourse'] / results['numpy']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
