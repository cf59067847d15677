"""Beam search: kcourse's in-graph `beam_search` vs a Python loop over eager model calls.

A batch of prompts (random ids, 10 each) is run through an LSTM `CharModel` with random
weights (seed 0; vocabulary 1,900 ids as the word-level models have, 128 units, id 0
banned), then both implementations search `--width` beams of `--length` tokens:

  kcourse   `kcourse.samplers.beam_search` in a `tf.function` (one `tf.while_loop`,
            batched `tf.math.top_k`, states reordered with `tf.gather`); the first call
            (tracing) is not timed
  python    a Python loop of eager model calls, one per step, with the bookkeeping
            (scores, top-k, parents, state reordering) in NumPy, as one would write it
            without the graph; the same rules (banned ids, stop ids, length
            normalisation). Its log-probabilities are `tf.nn.log_softmax` of the eager
            logits, so that both add the same float32 numbers.

It checks that both return the same sequences (and scores to 1e-4), then prints the
median time of `--repeats` calls of each, and their ratio; and the time
of the model's own `--length` steps on the `batch * width` rows in a `tf.function`,
which no search can go below.

Usage: python benchmarks/bench_beam.py [--batch N] [--width N] [--length N]
                                       [--repeats N] [--vocab N] [--threads N]
"""

import argparse
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from kcourse.samplers import beam_search
from kcourse.tracks.char_rnn.model import CharModel
from kcourse.training import set_threads

PROMPT = 10
BANNED = (0,)


def python_beam_search(model, first_ids, states, length, width, alpha=0.0, stop_ids=(),
                       banned=()):
    """The same search as `beam_search`, one eager model call per step and NumPy
    bookkeeping; returns NumPy (ids, scores, lengths)."""
    batch = len(first_ids)
    ids = np.repeat(np.asarray(first_ids, np.int32), width)
    states = [tf.repeat(s, width, axis=0) for s in states]
    scores = np.full((batch, width), -np.inf, np.float32)
    scores[:, 0] = 0
    lengths = np.zeros((batch, width), np.int32)
    finished = np.zeros((batch, width), bool)
    seqs = np.zeros((batch, width, 0), np.int32)
    for _ in range(length):
        logits, states = model(tf.constant(ids[:, None]), states, training=False)
        logp = tf.nn.log_softmax(tf.cast(logits[:, -1], tf.float32)).numpy()
        vocab = logp.shape[-1]
        logp[:, list(banned)] = -np.inf
        done = finished.reshape(-1)
        logp[done] = -np.inf
        logp[done, ids[done]] = 0.0
        raw = scores[:, :, None] + logp.reshape(batch, width, vocab)
        grown = lengths + ~finished
        ranked = raw / (grown.astype(np.float32) ** np.float32(alpha))[:, :, None] \
            if alpha else raw
        best = top_k(ranked.reshape(batch, -1), width)
        parent, token = best // vocab, (best % vocab).astype(np.int32)
        scores = np.take_along_axis(raw.reshape(batch, -1), best, 1)
        lengths = np.take_along_axis(grown, parent, 1)
        finished = np.take_along_axis(finished, parent, 1) | np.isin(token, stop_ids)
        seqs = np.concatenate([np.take_along_axis(seqs, parent[:, :, None], 1),
                               token[:, :, None]], axis=2)
        rows = (parent + np.arange(batch)[:, None] * width).reshape(-1)
        states = [tf.gather(s, rows) for s in states]
        ids = token.reshape(-1)
    return seqs, scores, lengths


def top_k(values, k):
    """The indices of the k largest values of every row, largest first, the lower index
    first among equal values (as `tf.math.top_k`; exact float32 ties do occur with the
    near-uniform predictions of random weights): `argpartition` finds the k-th value,
    then the values above it and the first of those equal to it are sorted."""
    kth = np.take_along_axis(values, np.argpartition(-values, k - 1, axis=1)[:, k - 1:k], 1)
    above, equal = values > kth, values == kth
    wanted = k - above.sum(1, keepdims=True)
    rows, cols = np.nonzero(above | (equal & (np.cumsum(equal, 1) <= wanted)))
    chosen = cols.reshape(len(values), k)
    order = np.lexsort((chosen, -np.take_along_axis(values, chosen, 1)), axis=1)
    return np.take_along_axis(chosen, order, 1)


def median_seconds(runs, repeats):
    """The median time of `repeats` calls of every function of `runs`, one function's
    calls after the other (calls taken in turn slow the graph down: the Python loop
    between two of them leaves the caches cold)."""
    medians = []
    for run in runs:
        spent = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
        medians.append(float(np.median(spent)))
    return medians


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="prompts")
    parser.add_argument("--width", type=int, default=5, help="beams per prompt")
    parser.add_argument("--length", type=int, default=20, help="tokens per beam")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls of each")
    parser.add_argument("--vocab", type=int, default=1900, help="vocabulary size")
    parser.add_argument("--units", type=int, default=128, help="LSTM units")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow threads (default 0: TensorFlow's default, every "
                             "core; 1: one)")
    parser.add_argument("--seed", type=int, default=0, help="of the weights and prompts")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    set_threads(args.threads)

    keras.utils.set_random_seed(args.seed)  # the weights: CharModel's seed is its dropout's
    model = CharModel(args.vocab, "lstm", args.units, seed=0)
    model.build()
    prompts = np.random.default_rng(args.seed).integers(1, args.vocab, (args.batch, PROMPT))
    _, states = model(tf.constant(prompts[:, :-1], tf.int32), model.zero_states(args.batch),
                      training=False)
    first = tf.constant(prompts[:, -1], tf.int32)

    search = tf.function(lambda first, states: beam_search(
        model, first, states, args.length, args.width, banned=BANNED))
    ours = [np.asarray(r) for r in search(first, states)]  # traces: not timed
    theirs = python_beam_search(model, first.numpy(), states, args.length, args.width,
                                banned=BANNED)
    same = int(sum((ours[0][b] == theirs[0][b]).all() for b in range(args.batch)))
    gap = float(np.abs(ours[1] - theirs[1]).max())

    @tf.function
    def model_steps(first, states):  # the model's own share: its steps, no search
        ids = tf.repeat(first, args.width)
        states = [tf.repeat(s, args.width, axis=0) for s in states]
        total = tf.zeros([])
        for _ in tf.range(args.length):
            logits, states = model(ids[:, None], states, training=False)
            total += logits[0, -1, 0]
        return total

    model_steps(first, states)
    seconds, python_seconds, model_seconds = median_seconds(
        [lambda: [r.numpy() for r in search(first, states)],
         lambda: python_beam_search(model, first.numpy(), states, args.length, args.width,
                                    banned=BANNED),
         lambda: model_steps(first, states).numpy()], args.repeats)
    results = {"batch": args.batch, "width": args.width, "length": args.length,
               "vocab": args.vocab, "units": args.units, "threads": args.threads,
               "cpu_count": os.cpu_count(), "same_sequences": same,
               "max_score_difference": gap, "kcourse_seconds": seconds,
               "python_seconds": python_seconds, "model_steps_seconds": model_seconds}
    print(f"beam search, width {args.width}, {args.length} tokens, {args.batch} prompts, "
          f"LSTM {args.units} units, vocabulary {args.vocab}, TensorFlow threads: "
          f"{args.threads or 'default'}")
    if same != args.batch:
        for b in range(args.batch):
            if not (ours[0][b] == theirs[0][b]).all():
                print(f"prompt {b}: kcourse {ours[1][b]} {ours[0][b].tolist()}\n"
                      f"  python  {theirs[1][b]} {theirs[0][b].tolist()}")
                break
    print(f"same sequences: {same}/{args.batch} prompts (all beams); largest score "
          f"difference {gap:.1e}")
    print(f"kcourse in-graph (tf.function): {seconds * 1000:8.1f} ms per call "
          f"(median of {args.repeats})")
    print(f"python loop (eager + NumPy):    {python_seconds * 1000:8.1f} ms per call")
    print(f"(the model's {args.length} steps alone, in a tf.function: "
          f"{model_seconds * 1000:.1f} ms)")
    print(f"python / kcourse: {python_seconds / seconds:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if same != args.batch or gap > 1e-4:
        raise SystemExit("the two implementations disagree")


if __name__ == "__main__":
    main()
