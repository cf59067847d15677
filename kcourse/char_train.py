"""Training character models the course's way: truncated BPTT through the text in order.

The text is cut into `batch_size` contiguous streams (the course: one stream, the whole
book). Every update reads the next `seq_length` characters of every stream (X = chars
e..e+T-1, Y = e+1..e+T), starts from the hidden state the previous chunk ended with,
back-propagates through those T steps on a `tf.GradientTape`, and applies the
optimizer (clipping is the optimizer's `clipvalue` / `global_clipnorm`). At the end of
the text the position and the state go back to zero: a new epoch. A whole run of
`log_every` updates is one compiled call (`tf.function`; XLA with `jit_compile=True`).

The reported loss is the course's: the sum over the T characters of -log p, per
sequence (averaged over the streams), and its smoothed value
`smooth = .999 smooth + .001 loss`, starting at the first loss.
"""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from kcourse.sampling import compiled, compiled_sampler


def set_threads(threads):
    """Run TensorFlow ops on `threads` threads (intra- and inter-op; 0 keeps the
    default). The course's update (batch of one, m=100) is a long chain of tiny ops,
    faster on one thread than spread over several. Process-wide, and only possible
    before TensorFlow runs its first op: returns False (and changes nothing) after."""
    if not threads:
        return True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow is already initialised
        return tf.config.threading.get_intra_op_parallelism_threads() == threads
    return True


def streams_of(ids, batch_size):
    """The ids as (batch_size, length) contiguous streams (the remainder is dropped)."""
    ids = np.asarray(ids, np.int32)
    length = len(ids) // batch_size
    if length < 2:
        raise ValueError(f"{len(ids)} characters are too few for {batch_size} streams.")
    return ids[: length * batch_size].reshape(batch_size, length)


def sequence_loss(logits, targets):
    """Sum over time of the cross-entropy, averaged over the batch (the course's loss
    of a sequence), in the dtype of `logits`."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
    return tf.reduce_mean(tf.reduce_sum(ce, axis=1))


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


class CharTrainer(tf.Module):
    """The state of a course-style run (position in the text, carried hidden states,
    smooth loss, update and epoch counters) and its compiled update loop.

    Use `fit_chars`; this class is what it checkpoints.
    """

    def __init__(self, model, optimizer, train_ids, seq_length, batch_size, jit_compile):
        super().__init__()
        self.model, self.optimizer = model, optimizer
        self.seq_length, self.batch_size = int(seq_length), int(batch_size)
        self.data = tf.constant(streams_of(train_ids, batch_size))
        if self.data.shape[1] < self.seq_length + 1:
            raise ValueError(f"Each of the {batch_size} streams holds {self.data.shape[1]} "
                             f"characters, fewer than seq_length + 1 = {seq_length + 1}.")
        self.position = tf.Variable(0, dtype=tf.int32, trainable=False)
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.smooth = tf.Variable(-1.0, dtype=tf.float32, trainable=False)  # < 0: unset
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.states = [tf.Variable(s, trainable=False) for s in model.zero_states(batch_size)]
        optimizer.build(model.trainable_variables)
        self.run = tf.function(self._run, jit_compile=jit_compile)

    def _update(self):
        t, length = self.seq_length, tf.shape(self.data)[1]
        wrap = self.position + t + 1 > length  # end of the text: a new epoch
        pos = tf.where(wrap, 0, self.position)
        states = [tf.where(wrap, tf.zeros_like(s), s) for s in self.states]
        x = tf.slice(self.data, [0, pos], [self.batch_size, t])
        y = tf.slice(self.data, [0, pos + 1], [self.batch_size, t])
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits, new_states = self.model(x, states, training=True)
            loss = tf.cast(sequence_loss(logits, y), tf.float32)
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
        self.optimizer.apply(grads, variables)
        for var, state in zip(self.states, new_states):
            var.assign(tf.stop_gradient(state))
        self.position.assign(pos + t)
        self.epoch.assign_add(tf.cast(wrap, tf.int64))
        self.updates.assign_add(1)
        self.smooth.assign(tf.where(self.smooth < 0, loss, 0.999 * self.smooth + 0.001 * loss))
        return loss

    def _run(self, n):
        """`n` updates; returns their mean loss."""
        total = tf.constant(0.0)
        for _ in tf.range(n):
            total += self._update()
        return total / tf.cast(n, tf.float32)

    def sample(self, length, temperature=1.0, top_p=1.0, seed=0):
        """Ids sampled from the state of stream 0, starting with its next input
        character (the course's synthesis during training)."""
        first = self.data[:1, self.position.numpy() % self.data.shape[1]]
        return compiled_sampler(self.model)(first, [s[:1] for s in self.states], length,
                                            temperature, top_p, seed).numpy()[0]


def fit_chars(model, optimizer, train_ids, *, updates, seq_length=25, batch_size=1,
              val_ids=None, vocab=None, log_every=100, eval_every=10000, sample_every=10000,
              sample_length=200, time_limit=None, select="smooth_loss", jit_compile=False,
              out_dir=None, resume=True, seed=0, verbose=1):
    """Train a character model (`kcourse.CharModel`) through the text in order.

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
            updates (`sample_length` characters).
        log_every: updates per compiled call, and per history row (smooth loss).
        time_limit: optional seconds of training after which to stop (counted across
            resumes).
        select: which model `best_weights` keeps: the lowest `"smooth_loss"` at a log
            point (the course), or the lowest `"val_loss"` at an evaluation.
        jit_compile: compile the update loop with XLA (slower for the course's small
            vanilla RNN on CPU: measured 20x, see benchmarks/bench_rnn.py).
        out_dir: checkpoints (at every evaluation and at the end), history and samples
            go to `out_dir/checkpoints`; an interrupted run resumes from the latest.
        seed: seed of the samples.
        verbose: 1 for a progress bar and the samples, 0 for silence.

    Returns:
        A dict: `rows` (history), `samples` [(updates, text)], `best_weights`,
        `best_score` and `best_updates` (the model chosen by `select`),
        `stopped` (why training stopped early, or None), `diverged` (whether the
        loss became NaN or infinite) and `seconds`.
    """
    for name, value in (("updates", updates), ("seq_length", seq_length),
                        ("batch_size", batch_size), ("log_every", log_every),
                        ("eval_every", eval_every), ("sample_every", sample_every)):
        if int(value) < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    trainer = CharTrainer(model, optimizer, train_ids, seq_length, batch_size, jit_compile)
    if select not in ("smooth_loss", "val_loss"):
        raise ValueError(f"select must be 'smooth_loss' or 'val_loss', got {select!r}.")
    if select == "val_loss" and val_ids is None:
        raise ValueError("select='val_loss' needs val_ids.")
    result = {"rows": [], "samples": [], "best_weights": None, "best_score": math.inf,
              "best_updates": 0, "stopped": None, "diverged": False}
    manager = None
    if out_dir is not None:
        ckpt_dir = os.path.join(out_dir, "checkpoints")
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(trainer=trainer), ckpt_dir,
                                             max_to_keep=2)
        state_path = os.path.join(ckpt_dir, "history.json")
        best_path = os.path.join(ckpt_dir, "best.weights.npz")
        if resume and manager.latest_checkpoint:
            manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            with open(state_path) as f:
                saved = json.load(f)
            done = int(trainer.updates)
            result["rows"] = [r for r in saved["rows"] if r["updates"] <= done]
            result["samples"] = [tuple(s) for s in saved["samples"] if s[0] <= done]
            best = np.load(best_path)
            result["best_weights"] = [best[f"w{i}"] for i in range(len(best.files) - 2)]
            result["best_score"] = float(best["score"])
            result["best_updates"] = int(best["updates"])
            if verbose:
                print(f"Resumed from {manager.latest_checkpoint} at update {done}.")

    def save():
        if manager is None:
            return
        manager.save(checkpoint_number=int(trainer.updates))
        with open(state_path + ".tmp", "w") as f:
            json.dump({"rows": result["rows"], "samples": result["samples"]}, f)
        os.replace(state_path + ".tmp", state_path)
        if result["best_weights"] is not None:
            np.savez(best_path, score=result["best_score"], updates=result["best_updates"],
                     **{f"w{i}": w for i, w in enumerate(result["best_weights"])})

    def show_sample(done):
        text = trainer.sample(sample_length, seed=seed + done)
        text = vocab.decode(text) if vocab is not None else text.tolist()
        result["samples"].append((done, text))
        if verbose:
            print(f"\n--- sample after {done} updates ---\n{text}\n")

    bar = keras.utils.Progbar(updates, verbose=verbose,
                              stateful_metrics=["smooth_loss", "val_loss_per_char"])
    done = int(trainer.updates)
    start = time.perf_counter() - float(trainer.seconds)
    if done == 0 and vocab is not None:
        show_sample(0)
    while done < updates:
        n = min(log_every - done % log_every, updates - done)
        loss = float(trainer.run(tf.constant(n)))
        done = int(trainer.updates)
        smooth = float(trainer.smooth)
        trainer.seconds.assign(time.perf_counter() - start)
        row = {"updates": done, "epoch": int(trainer.epoch), "loss": loss,
               "smooth_loss": smooth, "seconds": float(trainer.seconds)}
        if not (math.isfinite(loss) and math.isfinite(smooth)):
            result["diverged"] = True
            result["stopped"] = (f"Training stopped at update {done}: the loss became "
                                 f"{loss}. Lower the learning rate or clip the gradients.")
            print(result["stopped"])
            result["rows"].append(row)
            break
        out_of_time = time_limit is not None and float(trainer.seconds) >= time_limit
        last = done >= updates or out_of_time
        if val_ids is not None and (done % eval_every == 0 or last):
            row["val_loss_per_char"] = loss_per_char(model, val_ids)
        score = row.get("val_loss_per_char" if select == "val_loss" else "smooth_loss")
        if score is not None and score < result["best_score"]:
            result["best_score"], result["best_updates"] = score, done
            result["best_weights"] = [np.array(w) for w in model.get_weights()]
        result["rows"].append(row)
        if vocab is not None and done % sample_every == 0:
            show_sample(done)
        bar.update(done, [(k, row[k]) for k in ("smooth_loss", "val_loss_per_char")
                          if k in row])
        if done % eval_every == 0 or last:
            save()
        if out_of_time:
            result["stopped"] = (f"Time limit of {time_limit:g} s reached after {done} "
                                 "updates.")
            if verbose:
                print(f"\n{result['stopped']}")
            break
    result["seconds"] = float(trainer.seconds)
    result["trainer"] = trainer
    return result
