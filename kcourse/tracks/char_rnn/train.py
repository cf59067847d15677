"""Training character models the course's way, through `kcourse.training.fit`.

The text is read as `kcourse.data.TextStreams` (contiguous streams, `seq_length`
characters per update, the hidden state carried from one chunk to the next); the loss
is the course's: the sum over the T characters of -log p, per sequence (averaged over
the streams), and its smoothed value `.999 smooth + .001 loss`. Samples are printed
every `sample_every` updates by the `TextSamples` callback.
"""

import os

import keras
import tensorflow as tf

from kcourse.data.streams import TextStreams, streams_of
from kcourse.runs.layout import read_json, write_json
from kcourse.tracks.char_rnn.generation import compiled, compiled_sampler
from kcourse.training.fit import fit
from kcourse.training.threads import set_threads  # noqa: F401  (its old home)


def sequence_loss(logits, targets):
    """Sum over time of the cross-entropy, averaged over the batch (the course's loss
    of a sequence), in the dtype of `logits`."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
    return tf.reduce_mean(tf.reduce_sum(ce, axis=1))


def course_loss(targets, logits):
    """`sequence_loss` as a loss of (labels, outputs), in float32 (what `fit` takes)."""
    return tf.cast(sequence_loss(logits, targets), tf.float32)


def loss_per_char(model, ids, streams=16, window=100):
    """Mean negative log-likelihood in nats per character of the text `ids`.

    The text is read as `streams` contiguous streams, `window` characters at a time,
    carrying the recurrent state across windows (so every character after the first
    of a stream is predicted with all the context before it).
    """
    data = streams_of(ids, streams)

    def window_loss(x, y, states):
        logits, states = model(x, states, training=False)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, tf.cast(logits, tf.float32))
        return tf.reduce_sum(tf.cast(ce, tf.float64)), states

    window_loss = compiled(model, "window_loss", window_loss)

    total, count = 0.0, 0
    states = model.zero_states(streams)
    for start in range(0, data.shape[1] - 1, window):
        end = min(start + window, data.shape[1] - 1)
        loss, states = window_loss(data[:, start:end], data[:, start + 1:end + 1], states)
        total, count = total + float(loss), count + data.shape[0] * (end - start)
    return total / count


class TextSamples(keras.callbacks.Callback):
    """Sample text every `every` updates from the state of stream 0, starting with its
    next input character (the course's synthesis during training), and before the
    first update.

    Args:
        streams: the `TextStreams` being trained on.
        every: updates between samples.
        length: characters per sample.
        vocab: the `Vocabulary` that decodes the ids (None: keep the ids).
        seed: sample `k` is drawn with seed `seed + k`.
        path: optional JSON file keeping the samples across resumes.
        verbose: print each sample.

    Attributes:
        samples: `[(update, text)]`.
    """

    def __init__(self, streams, every, length, vocab=None, seed=0, path=None, verbose=1):
        super().__init__()
        self.streams, self.every, self.length = streams, int(every), int(length)
        self.vocab, self.seed, self.path, self.verbose = vocab, seed, path, verbose
        self.samples = []

    def on_train_begin(self, logs=None):
        step = int((logs or {}).get("step", 0))
        if self.path and os.path.exists(self.path):
            self.samples = [tuple(s) for s in read_json(self.path) if s[0] <= step]
        if step == 0:
            self._sample(0)

    def on_train_batch_end(self, batch, logs=None):
        step = int((logs or {}).get("step", 0))
        if step % self.every == 0:
            self._sample(step)

    def _sample(self, step):
        first = self.streams.next_input()[:1]
        ids = compiled_sampler(self.model)(first, [s[:1] for s in self.streams.states],
                                           self.length, seed=self.seed + step).numpy()[0]
        text = self.vocab.decode(ids) if self.vocab is not None else ids.tolist()
        self.samples.append((step, text))
        if self.path:
            write_json(self.path, self.samples)
        if self.verbose:
            print(f"\n--- sample after {step} updates ---\n{text}\n")


def fit_chars(model, optimizer, train_ids, *, updates, seq_length=25, batch_size=1,
              val_ids=None, vocab=None, log_every=100, eval_every=10000, sample_every=10000,
              sample_length=200, time_limit=None, select="smooth_loss", max_loss=None,
              jit_compile=False, out_dir=None, resume=True, seed=0, verbose=1):
    """Train a character model (`CharModel`) through the text in order with
    `kcourse.training.fit`.

    Args:
        model: a built `CharModel` (anything with `model(ids, states)` and
            `zero_states(batch)`).
        optimizer: a Keras optimizer (course: `kcourse.optimizers.AdaGrad(0.1,
            clipvalue=5.0)`).
        train_ids: int array, the training text encoded.
        updates: number of updates to reach (counting resumed ones).
        seq_length: T, characters per update and stream (course: 25).
        batch_size: parallel contiguous streams (course: 1).
        val_ids: optional validation text, evaluated (nats per character) every
            `eval_every` updates and at the end.
        vocab: the `Vocabulary`, to decode the samples printed every `sample_every`
            updates (`sample_length` characters); None: no samples.
        log_every: updates per compiled call, and per history row (smooth loss).
        time_limit: optional seconds of training after which to stop (counted across
            resumes).
        select: which model `history.best_weights` keeps: the lowest `"smooth_loss"`
            at a log point (the course), or the lowest `"val_loss"` at an evaluation.
        max_loss: the loss of a sequence above which training has diverged (as a NaN
            loss does; see `kcourse.training.fit`).
        jit_compile: compile the update loop with XLA (slower for the course's small
            vanilla RNN on CPU: measured 20x, see benchmarks/bench_rnn.py).
        out_dir: checkpoints (at every evaluation and at the end), history and samples
            go to `out_dir/checkpoints`; an interrupted run resumes from the latest.
            TensorBoard logs go to `out_dir/logs`, as `keras.callbacks.TensorBoard`
            writes them (see `kcourse.training.fit`): train/`smooth_loss`,
            train/`batch_loss` (the mean loss of the last `log_every` updates),
            train/`epoch_learning_rate` and validation/`epoch_loss_per_char`, at every
            `log_every` (validation: `eval_every`) updates.
        resume: see `kcourse.training.fit`: True resumes from checkpoints of the same
            settings, "force" from any, False starts again.
        seed: seed of the samples.
        verbose: 1 for a progress bar and the samples, 0 for silence.

    Returns:
        The `History` (rows, `best_weights` / `best_score` / `best_step`, `stopped`,
        `diverged`, `seconds`), with `samples` [(update, text)] and `streams`.
    """
    for name, value in (("updates", updates), ("seq_length", seq_length),
                        ("batch_size", batch_size), ("log_every", log_every),
                        ("eval_every", eval_every), ("sample_every", sample_every)):
        if int(value) < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    if select not in ("smooth_loss", "val_loss"):
        raise ValueError(f"select must be 'smooth_loss' or 'val_loss', got {select!r}.")
    if select == "val_loss" and val_ids is None:
        raise ValueError("select='val_loss' needs val_ids.")
    streams = TextStreams(train_ids, seq_length, batch_size, model.zero_states(batch_size))
    callbacks = []
    if vocab is not None:
        path = os.path.join(out_dir, "checkpoints", "samples.json") if out_dir else None
        callbacks.append(TextSamples(streams, sample_every, sample_length, vocab, seed,
                                     path, verbose))
    evaluate = (lambda: {"val_loss_per_char": loss_per_char(model, val_ids)}) \
        if val_ids is not None else (lambda: {})
    history = fit(model, course_loss, streams, optimizer=optimizer, max_steps=updates,
                  evaluate=evaluate, eval_every=eval_every, log_every=log_every,
                  evaluate_start=False, steps_per_execution=log_every,
                  time_limit=time_limit, max_loss=max_loss, jit_compile=jit_compile,
                  keep_best=("val_loss_per_char" if select == "val_loss" else
                             "smooth_loss", "min"),
                  out_dir=out_dir, resume=resume, callbacks=callbacks, verbose=verbose)
    history.samples = callbacks[0].samples if callbacks else []
    history.streams = streams
    return history
