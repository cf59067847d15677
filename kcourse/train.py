"""Mini-batch training with `tf.GradientTape` inside `tf.function`.

`fit` trains any Keras model with any loss and any `keras.optimizers` optimizer (its
learning rate may be a schedule), minimizing the course's cost

    J = mean loss + sum(model.losses)

where `model.losses` holds the weight penalties (`lambda * ||W||^2` via Keras
regularizers). It evaluates loss, cost and accuracy on the training and validation
sets at chosen points, shows a progress bar, logs to TensorBoard, checkpoints every
epoch, resumes from the latest checkpoint, and stops early when the loss becomes NaN
or infinite.
"""

import json
import math
import os

import keras
import numpy as np
import tensorflow as tf

from kcourse.data.pipeline import in_memory_batches


def regularization(model, dtype=tf.float32):
    """The sum of the model's weight penalties (0 when it has none), as `dtype`."""
    losses = [tf.cast(loss, dtype) for loss in model.losses]
    return tf.add_n(losses) if losses else tf.constant(0.0, dtype)


def make_evaluator(model, loss_fn):
    """A compiled function mapping a batched dataset to {loss, cost, accuracy}."""

    @tf.function(reduce_retracing=True)
    def batch_sums(x, y):
        scores = model(x, training=False)
        n = tf.cast(tf.shape(x)[0], tf.float64)
        loss = tf.cast(loss_fn(y, scores), tf.float64) * n
        hits = tf.reduce_sum(tf.cast(tf.argmax(scores, -1) == tf.argmax(y, -1), tf.float64))
        return loss, hits, n

    def evaluate_dataset(dataset):
        loss = hits = n = 0.0
        for x, y in dataset:
            batch_loss, batch_hits, batch_n = batch_sums(x, y)
            loss, hits, n = loss + float(batch_loss), hits + float(batch_hits), n + float(batch_n)
        if n == 0:
            raise ValueError("Cannot evaluate on an empty dataset.")
        mean_loss = loss / n
        return {"loss": mean_loss, "cost": mean_loss + float(regularization(model)),
                "accuracy": hits / n}

    return evaluate_dataset


def evaluate(model, loss_fn, dataset):
    """Mean loss, cost (loss + weight penalties) and accuracy of `model` on `dataset`.

    Args:
        model: a Keras model returning class scores.
        loss_fn: a `keras.losses.Loss` taking one-hot labels and scores.
        dataset: a batched dataset of `(x, y_one_hot)`.
    """
    return make_evaluator(model, loss_fn)(dataset)


def make_train_step(model, loss_fn, optimizer):
    """One update: forward, cost, gradients on the tape, optimizer step."""

    def step(x, y):
        with tf.GradientTape() as tape:
            scores = model(x, training=True)
            loss = loss_fn(y, scores)
            cost = loss + regularization(model, loss.dtype)
        grads = tape.gradient(cost, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss, cost

    return step


def make_train_chunk(model, loss_fn, optimizer, source=None):
    """A compiled function running `steps` updates in one call.

    Running several updates per call (Keras' `steps_per_execution`) removes the Python
    overhead between small steps. It returns the mean loss and cost of the chunk. The
    function is traced once: the data position and the step count are arguments.
    Batches come from a dataset iterator, `train_chunk(iterator, steps)`, or, with
    `source` (an `InMemoryBatches`), are gathered in the graph from the epoch's order:
    `train_chunk(order, first_batch, steps)`.
    """
    step = make_train_step(model, loss_fn, optimizer)

    def run(next_batch, steps):
        loss_sum = tf.constant(0.0, tf.float32)
        cost_sum = tf.constant(0.0, tf.float32)
        for k in tf.range(steps):
            loss, cost = step(*next_batch(k))
            loss_sum += tf.cast(loss, tf.float32)
            cost_sum += tf.cast(cost, tf.float32)
        n = tf.cast(steps, tf.float32)
        return loss_sum / n, cost_sum / n

    if source is None:
        return tf.function(lambda iterator, steps: run(lambda k: next(iterator), steps))

    def from_order(order, first, steps):
        def batch(k):
            start = (first + k) * source.batch_size
            i = order[start:start + source.batch_size]
            return tf.gather(source.x, i), tf.gather(source.y, i)
        return run(batch, steps)

    return tf.function(from_order)


class History:
    """Evaluation records of a training run: a list of dicts, one per eval point."""

    def __init__(self, rows=None):
        self.rows = list(rows or [])
        self.stopped = None  # why training stopped early, if it did

    def column(self, key):
        return [row.get(key) for row in self.rows]

    @property
    def last(self):
        return self.rows[-1] if self.rows else {}

    def __len__(self):
        return len(self.rows)


def current_learning_rate(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def fit(model, loss_fn, train, val=None, *, optimizer, epochs=None, max_steps=None,
        train_eval=None, eval_every=None, steps_per_execution=100, out_dir=None, resume=True,
        callbacks=None, verbose=1):
    """Train `model` by mini-batch gradient descent on the course's cost.

    Args:
        model: a built Keras model returning class scores.
        loss_fn: a `keras.losses.Loss` (e.g. `SoftmaxCrossEntropy`, `MulticlassSVM`).
        train: batched `tf.data.Dataset` of `(x, y_one_hot)`, reshuffled on every
            iteration (see `kcourse.data.batched`).
        val: optional batched validation dataset, evaluated at every eval point.
        optimizer: any `keras.optimizers.Optimizer`; its learning rate may be a
            `keras.optimizers.schedules.LearningRateSchedule`.
        epochs: number of passes over `train`.
        max_steps: alternatively (or in addition), the total number of updates; the
            last epoch is then cut short (e.g. a whole number of learning-rate cycles).
        train_eval: batched dataset on which the training loss/cost/accuracy are
            measured (default: `train`; `False` to skip them, e.g. when timing).
        eval_every: updates between evaluations (default: once per epoch, at its end).
            The end of training is always evaluated.
        steps_per_execution: updates run per compiled call (the progress bar and the
            NaN check see the chunk's mean loss).
        out_dir: if given, TensorBoard logs go to `out_dir/logs` and a checkpoint
            (model, optimizer, epoch, history) to `out_dir/checkpoints` every epoch.
        resume: restore the latest checkpoint in `out_dir` (model, optimizer state,
            epoch, history) and continue from it. A dataset reshuffled by tf.data starts
            its sequence of epoch orders again from its seed after a restart, so a resumed
            run sees other (equally random) epoch orders than an uninterrupted one; with
            a fixed order the resumed run ends with the same weights.
        callbacks: Keras callbacks; they get `on_epoch_end(epoch, logs)` with `loss`,
            `cost`, `accuracy` and the `val_` ones (as in `model.fit`), and
            `on_train_batch_end` after every compiled chunk of updates (chunks end at
            every evaluation point, so a callback acting every k updates is exact when
            k is a multiple of `eval_every`).
        verbose: 1 for a progress bar per epoch, 0 for silence.

    Returns:
        A `History`; `history.stopped` says why training stopped early, if it did.
    """
    steps_per_epoch = int(train.cardinality())
    if steps_per_epoch < 1:
        raise ValueError("The training dataset must have a known, non-zero number of "
                         "batches (batch a finite dataset, e.g. with kcourse.data.batched).")
    if epochs is None and max_steps is None:
        raise ValueError("Give the length of training: epochs or max_steps.")
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}.")
        needed = -(-int(max_steps) // steps_per_epoch)
        epochs = needed if epochs is None else min(epochs, needed)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    total_steps = epochs * steps_per_epoch if max_steps is None else min(
        int(max_steps), epochs * steps_per_epoch)
    eval_every = int(eval_every or steps_per_epoch)
    if eval_every < 1:
        raise ValueError(f"eval_every must be at least 1, got {eval_every}.")
    train_eval = train if train_eval is None else train_eval
    optimizer.build(model.trainable_variables)
    source = in_memory_batches(train)
    train_chunk = make_train_chunk(model, loss_fn, optimizer, source)
    orders = None if source is None else iter(source.orders)
    evaluate_dataset = make_evaluator(model, loss_fn)
    history = History()

    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    manager = writer = None
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
        manager = tf.train.CheckpointManager(ckpt, os.path.join(out_dir, "checkpoints"),
                                             max_to_keep=2)
        history_path = os.path.join(out_dir, "checkpoints", "history.json")
        if resume and manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            with open(history_path) as f:
                history.rows = [r for r in json.load(f) if r["epoch"] <= int(epoch_var)]
            if verbose:
                print(f"Resumed from {manager.latest_checkpoint} after epoch {int(epoch_var)}.")
        writer = tf.summary.create_file_writer(os.path.join(out_dir, "logs"))

    def record(epoch, step):
        row = {"epoch": epoch, "step": step,
               "learning_rate": current_learning_rate(optimizer)}
        for prefix, dataset in (("train_", train_eval), ("val_", val)):
            if dataset is not None and dataset is not False:
                row.update({prefix + k: v for k, v in evaluate_dataset(dataset).items()})
        history.rows.append(row)
        if writer is not None:
            with writer.as_default(step=step):
                for key, value in row.items():
                    if key not in ("epoch", "step"):
                        tf.summary.scalar(key, value)
        return row

    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    callback_list.on_train_begin()
    start_epoch = int(epoch_var)
    step = start_epoch * steps_per_epoch
    if not history.rows and step == 0:
        record(0, 0)  # the starting point, before any update
    for epoch in range(start_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}")
        epoch_steps = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
        bar = keras.utils.Progbar(epoch_steps, verbose=verbose, stateful_metrics=["lr"])
        data = iter(train) if source is None else next(orders)  # iterator or epoch order
        done = 0
        while done < epoch_steps:
            to_eval = eval_every - step % eval_every
            n = min(steps_per_execution, epoch_steps - done, to_eval)
            position = () if source is None else (tf.constant(done, tf.int64),)
            loss, cost = train_chunk(data, *position, tf.constant(n, tf.int64))
            loss, cost = float(loss), float(cost)
            done, step = done + n, step + n
            bar.update(done, [("loss", loss), ("cost", cost),
                              ("lr", current_learning_rate(optimizer))])
            if not (math.isfinite(loss) and math.isfinite(cost)):
                history.stopped = (f"Training stopped at epoch {epoch + 1}, update {step}: "
                                   f"the loss became {loss} (cost {cost}). The learning "
                                   "rate is probably too large for this model; lower it.")
                print(history.stopped)
                record(epoch + 1, step)
                callback_list.on_train_end()
                return history
            callback_list.on_train_batch_end(done - 1, {"loss": loss, "cost": cost})
            if step % eval_every == 0 and done < epoch_steps:
                record(epoch + done / steps_per_epoch, step)
        row = record(epoch + epoch_steps / steps_per_epoch, step)
        epoch_var.assign(epoch + 1)
        if manager is not None:
            manager.save(checkpoint_number=epoch + 1)
            with open(history_path, "w") as f:
                json.dump(history.rows, f)
        logs = {k.replace("train_", ""): v for k, v in row.items()
                if k.startswith(("train_", "val_"))}
        callback_list.on_epoch_end(epoch, logs)
        if getattr(model, "stop_training", False):
            break
    callback_list.on_train_end()
    return history


def predict_scores(model, dataset):
    """Concatenated scores and one-hot labels of a batched `(x, y)` dataset."""
    scores, labels = [], []
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    for x, y in dataset:
        scores.append(predict(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(scores), np.concatenate(labels)
