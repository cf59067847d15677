"""THE training loop of every kcourse track: `tf.GradientTape` updates inside
`tf.function`, run a compiled chunk of updates at a time.

`fit` trains any Keras model on any training source (`kcourse.training.steps`): a
batched `tf.data.Dataset`, `kcourse.data.InMemoryBatches` (shuffled epochs gathered in
the graph) or `kcourse.data.TextStreams` (a text read in order, recurrent states
carried). It minimizes the course's cost, the loss + `sum(model.losses)` (the weight
penalties, `lambda * ||W||^2` via Keras regularizers). It records history rows at
log and evaluation points, shows a progress bar, logs to TensorBoard, checkpoints
(model, optimizer, data position, history) and resumes, keeps the best model if
asked, stops on a time limit, and stops with a message when the loss becomes NaN or
infinite.
"""

import math
import numbers
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from kcourse.errors import CheckpointMismatch
from kcourse.training.checkpoints import (Checkpointer, setting_differences,
                                          training_settings)
from kcourse.training.evaluation import make_evaluator
from kcourse.training.history import History
from kcourse.training.steps import as_source, make_chunk


def current_learning_rate(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _length(source, epochs, max_steps):
    """The number of epochs (None for streams) and of updates."""
    spe = source.steps_per_epoch
    if spe is None:
        if max_steps is None or epochs is not None:
            raise ValueError("A stream of text trains for max_steps updates (no epochs).")
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}.")
        return None, int(max_steps)
    if epochs is None and max_steps is None:
        raise ValueError("Give the length of training: epochs or max_steps.")
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}.")
        needed = -(-int(max_steps) // spe)
        epochs = needed if epochs is None else min(epochs, needed)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    total = epochs * spe if max_steps is None else min(int(max_steps), epochs * spe)
    return epochs, total


def _dynamic_display():
    """Whether stdout redraws a line in place: a terminal or a Jupyter kernel. (Keras'
    `Progbar` also takes every POSIX system for one, which fills log files with
    backspaces and colour codes.)"""
    isatty = getattr(sys.stdout, "isatty", None)
    return (bool(isatty and isatty()) or "ipykernel" in sys.modules
            or "PYCHARM_HOSTED" in os.environ)


class _Progbar(keras.utils.Progbar):
    """Keras' progress bar over updates `first`..`target`, its time per update
    measured on this call's updates only (a resumed run starts at `first`)."""

    def __init__(self, target, first, **kwargs):
        super().__init__(target, **kwargs)
        self.first = first

    def _estimate_step_duration(self, current, now):
        return super()._estimate_step_duration(current - self.first, now)


class Progress:
    """The console of `fit`: one Keras progress bar over all the updates of the call.

    Its values: `loss` (and `cost` when the model has weight penalties), the mean over
    the updates since the last evaluation point; `lr`; and, from the last evaluation
    point, the history row's `val_*` values and the source's fields (e.g.
    `smooth_loss`). In a terminal or a notebook (`verbose=1`) the bar is redrawn in
    place; otherwise (a log file, a pipe, or `verbose=2`) a plain line is printed at
    evaluation points, at most about ten per call, and at the end, without control
    characters.

    Args:
        total: the update at which training ends.
        first: the update this call starts at.
        verbose: 0 (silent), 1 (a bar, plain lines when stdout is not a terminal) or 2
            (plain lines).
        show_cost: also show the cost.
    """

    def __init__(self, total, first, verbose, show_cost=False):
        self.dynamic = verbose == 1 and _dynamic_display()
        self.bar = _Progbar(total, first, verbose=1 if self.dynamic else 2,
                            stateless_metrics=[]) if verbose else None
        self.show_cost = show_cost
        self.sums, self.count, self.ended = [0.0, 0.0], 0, None
        # plain lines: at most about ten per call (every evaluation point of a 40-epoch
        # run would be 40 lines per row in a log file)
        self.line_every, self.last_line = max(1, (total - first) // 10), first

    def update(self, step, n, loss, cost, lr, row=None, evaluated=False):
        """After `n` updates to `step` with mean loss and cost; `row`: the history row
        recorded there, if any."""
        if self.bar is None:
            return
        self.sums = [self.sums[0] + n * loss, self.sums[1] + n * cost]
        self.count += n
        values = [("loss", self.sums[0] / self.count)]
        if self.show_cost:
            values.append(("cost", self.sums[1] / self.count))
        values.append(("lr", lr))
        values += [(k, v) for k, v in (row or {}).items()
                   if k not in ("epoch", "step", "learning_rate", "seconds", "loss", "cost",
                                "diverged") and not k.startswith("train_")
                   and (self.show_cost or k != "val_cost")
                   and isinstance(v, numbers.Real)]
        end = step >= self.bar.target or (evaluated and not self.dynamic and
                                          step - self.last_line >= self.line_every)
        self.bar.update(step, values, finalize=end)
        if end:
            self.ended = self.last_line = step
        if evaluated:
            self.sums, self.count = [0.0, 0.0], 0

    def finish(self, step):
        """End the bar at `step` (training stopped early), if its line is not ended."""
        if self.bar is not None and self.ended != step:
            self.bar.update(step, finalize=True)
            self.ended = step


class TensorBoardLogs:
    """History rows as TensorBoard scalars in the layout of `keras.callbacks.TensorBoard`:
    `directory/train/` and `directory/validation/`, with the same tags in both (`epoch_loss`,
    `epoch_accuracy`, ...) so that the two curves share a chart. See `summaries`."""

    def __init__(self, directory):
        self.directory = directory
        self.writers = {}

    def write(self, row):
        for run, scalars in summaries(row).items():
            if not scalars:
                continue
            if run not in self.writers:
                self.writers[run] = tf.summary.create_file_writer(
                    os.path.join(self.directory, run))
            with self.writers[run].as_default(step=row["step"]):
                for tag, value in scalars.items():
                    tf.summary.scalar(tag, value)

    def close(self):
        for writer in self.writers.values():
            writer.close()


def summaries(row):
    """The TensorBoard scalars of a history row: `{"train": {tag: value}, "validation":
    {tag: value}}`, named as Keras names them: `train_X` -> train/`epoch_X`, `val_X` ->
    validation/`epoch_X`, `learning_rate` -> train/`epoch_learning_rate`, the mean
    loss and cost of the last compiled updates -> train/`batch_loss`, `batch_cost`;
    other numbers (e.g. `smooth_loss`) keep their names, in train/. `epoch`, `step`,
    `seconds` and flags are left out."""
    runs = {"train": {}, "validation": {}}
    for key, value in row.items():
        if (key in ("epoch", "step", "seconds") or isinstance(value, bool)
                or not isinstance(value, numbers.Real)):
            continue
        if key.startswith("val_"):
            runs["validation"]["epoch_" + key[len("val_"):]] = float(value)
        elif key.startswith("train_"):
            runs["train"]["epoch_" + key[len("train_"):]] = float(value)
        elif key in ("loss", "cost"):
            runs["train"]["batch_" + key] = float(value)
        elif key == "learning_rate":
            runs["train"]["epoch_learning_rate"] = float(value)
        else:
            runs["train"][key] = float(value)
    return runs


def restore_checkpoint(checkpointer, settings, resume, total, verbose=1):
    """Restore the latest checkpoint in `checkpointer` if `resume` allows it (see `fit`)
    and store `settings` as the run's; a run of `total` updates may continue one of
    fewer (train longer), not one of more.

    Returns:
        The checkpoint's history document (None when none was restored) and the
        settings that differ from the checkpoint's (`"key: old -> new"` lines; only
        with `resume="force"`).

    Raises:
        SettingError: the checkpoints belong to a training with other settings, or
            are past `total`, and `resume` is not "force".
    """
    if resume not in (True, False, "force"):
        raise ValueError(f"resume must be True, False or 'force', got {resume!r}.")
    if not resume:
        if checkpointer.steps() and verbose:
            print(f"Starting again (resume=False): removing the checkpoints in "
                  f"{checkpointer.directory}.")
        checkpointer.clear()
        logs = os.path.join(os.path.dirname(checkpointer.directory), "logs")
        if os.path.isdir(logs):  # the old run's curves would overlap the new ones
            shutil.rmtree(logs)
        checkpointer.write_settings(settings)
        return None, []
    stored, steps = checkpointer.read_settings(), checkpointer.steps()
    changes = setting_differences(stored, settings) if steps and stored else []
    if steps and steps[-1] > total and resume != "force":
        changes.append(f"updates: {steps[-1]} done -> {total}")
    if changes and resume != "force":
        raise CheckpointMismatch(
            f"the checkpoints in {checkpointer.directory} are of a training with other "
            f"settings ({'; '.join(changes)}). To keep them, give another out_dir; to "
            "train from the start, delete that folder or pass resume=False; to "
            "continue from them with the new settings, pass resume='force'.", changes)
    saved = checkpointer.restore()
    if saved is None or stored != settings:
        checkpointer.write_settings(settings)
    return saved, changes if saved is not None else []


def fit(model, loss_fn, train, val=None, *, optimizer, epochs=None, max_steps=None,
        train_eval=None, evaluate=None, metrics=None, eval_every=None, log_every=None,
        evaluate_start=True, steps_per_execution=100, time_limit=None, keep_best=None,
        max_loss=None, jit_compile=False, out_dir=None, resume=True, callbacks=None,
        verbose=1):
    """Train `model` by mini-batch gradient descent on the course's cost.

    Args:
        model: a built Keras model.
        loss_fn: the loss, `loss_fn(y, outputs)`: a `keras.losses.Loss` (e.g.
            `SoftmaxCrossEntropy`, `MulticlassSVM`) or any function of labels and
            outputs (a composite loss, a sequence loss).
        train: the training source: a batched `tf.data.Dataset` of `(x, y)`
            (reshuffled by tf.data on every iteration, see `kcourse.data.batched`),
            an `InMemoryBatches`, or a `TextStreams` (the model is then called as
            `outputs, states = model(x, states)`).
        val: optional batched validation dataset, evaluated at every evaluation point.
        optimizer: any `keras.optimizers.Optimizer`; its learning rate may be a
            `keras.optimizers.schedules.LearningRateSchedule`.
        epochs: number of passes over `train` (not for streams).
        max_steps: alternatively (or in addition), the total number of updates; the
            last epoch is then cut short (e.g. a whole number of learning-rate cycles).
        train_eval: batched dataset on which the training loss/cost/metrics are
            measured (default: `train` if it is a dataset, the batches of an
            `InMemoryBatches` in stored order; `False` to skip them, e.g. when timing).
        evaluate: alternatively, a function of no arguments returning the dict of
            values measured at an evaluation point (e.g. a validation loss per
            character).
        metrics: `keras.metrics` measured on `train_eval` and `val` (default:
            accuracy over one-hot labels).
        eval_every: updates between evaluations (default: once per epoch, at its end;
            for streams, at the end). Epoch ends and the end of training are always
            evaluated.
        log_every: updates between history rows without evaluation (default:
            `eval_every`).
        evaluate_start: evaluate once before the first update.
        steps_per_execution: the most updates per compiled call (the progress bar and
            the NaN check see each call's mean loss).
        time_limit: optional seconds of training (counted across resumes) after which
            training stops at the next log point.
        keep_best: optional `(key, "min" | "max")`: keep the weights of the history row
            with the best `key` (`history.best_weights`, saved with the checkpoints).
        max_loss: training has diverged when a chunk's mean loss is NaN, infinite or,
            if given, above `max_loss`. The model then gets back the last weights that
            were all finite (and the loss below the bound), the last history row says
            `diverged`, and `history.diverged` is True.
        jit_compile: compile the update loop with XLA.
        out_dir: if given, checkpoints go to `out_dir/checkpoints` (every epoch; for
            streams at every evaluation), with `settings.json`, the settings of the
            training (`kcourse.training.checkpoints.training_settings`: the model's
            architecture, the optimizer's config, the loss, the source's sizes, epochs,
            max_steps, eval_every, log_every, evaluate_start, keep_best, max_loss).
            A run may be resumed with more epochs or max_steps (to train longer), not
            with fewer updates than its checkpoint has done.
            TensorBoard logs go to `out_dir/logs/train/` and `out_dir/logs/validation/`
            as `keras.callbacks.TensorBoard` writes them, at every history row, the
            step being the update: `train_X` as train/`epoch_X`, `val_X` as
            validation/`epoch_X` (so both share a chart), the learning rate as
            train/`epoch_learning_rate`, the mean loss and cost of the compiled
            updates that ended there as train/`batch_loss` and `batch_cost`, other
            values under their own names (e.g. train/`smooth_loss`); see `summaries`.
        resume: True: continue from the latest checkpoint in `out_dir` (model,
            optimizer, data position, history) when its settings are those of this
            call (or were not stored, by an older kcourse), else raise a `SettingError`
            that names the settings that differ (old -> new) and what to do. An `InMemoryBatches` or a
            `TextStreams` then continues exactly where it stopped; a tf.data dataset
            restarts its sequence of epoch orders from its seed. "force": continue from
            the checkpoint even if the settings differ (they become the run's). False:
            delete the checkpoints in `out_dir` and train from the start.
        callbacks: Keras callbacks; they get `on_train_begin` (logs: `step`),
            `on_epoch_end(epoch, logs)` with `loss`, `cost`, `accuracy` and the `val_`
            ones (as in `model.fit`), and `on_train_batch_end` after every compiled
            chunk of updates (logs: `loss`, `cost`, `step`; chunks end at every log
            point, so a callback acting every k updates is exact when k is a multiple
            of `log_every`).
        verbose: 1 for one progress bar over all the updates (in a terminal or a
            notebook; elsewhere, e.g. a log file, one plain line per evaluation point),
            2 for the plain lines, 0 for silence (see `Progress`). "Resumed from ...",
            "Time limit ..." and the divergence message are printed too.

    Returns:
        A `History`; `history.stopped` says why training stopped early, if it did.
    """
    limit = math.inf if max_loss is None else float(max_loss)
    source = as_source(train)
    spe = source.steps_per_epoch
    epochs, total = _length(source, epochs, max_steps)
    eval_every = int(eval_every or spe or total)
    log_every = int(log_every or eval_every)
    if eval_every < 1 or log_every < 1:
        raise ValueError(f"eval_every and log_every must be at least 1, got {eval_every} "
                         f"and {log_every}.")
    if evaluate is None:
        if train_eval is None:
            train_eval = train if isinstance(train, tf.data.Dataset) else (
                source.in_order() if hasattr(source, "in_order") else False)
        evaluator = make_evaluator(model, loss_fn, metrics)

        def evaluate():
            row = {}
            for prefix, dataset in (("train_", train_eval), ("val_", val)):
                if dataset is not None and dataset is not False:
                    row.update({prefix + k: v for k, v in evaluator(dataset).items()})
            return row

    optimizer.build(model.trainable_variables)
    chunk = make_chunk(model, loss_fn, optimizer, source, jit_compile)
    history = History()
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    seconds_var = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    checkpointer = tensorboard = None
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        state = {"model": model, "optimizer": optimizer, "step": step_var,
                 "seconds": seconds_var}
        if isinstance(source, tf.Module):
            state["source"] = source
        checkpointer = Checkpointer(os.path.join(out_dir, "checkpoints"), **state)
        settings = training_settings(
            model, loss_fn, optimizer, source,
            length={"epochs": epochs, "max_steps": max_steps, "updates": total},
            eval_every=eval_every, log_every=log_every, evaluate_start=evaluate_start,
            keep_best=keep_best, max_loss=max_loss)
        rate = current_learning_rate(optimizer) if isinstance(
            getattr(optimizer, "_learning_rate", None), keras.Variable) else None  # no schedule
        saved, changes = restore_checkpoint(checkpointer, settings, resume, total, verbose)
        if changes and rate is not None:  # forced: the new rate, not the checkpoint's
            optimizer.learning_rate = rate
        if saved is not None:
            done = int(step_var)
            history.rows = [r for r in saved["rows"] if r["step"] <= done]
            history.best_step = saved.get("best_step", 0)
            history.best_score = saved.get("best_score")
            history.best_weights = saved.get("best_weights")
            if verbose:
                print(f"Resumed from {checkpointer.latest} at update {done}.")
                if changes:
                    print(f"Settings changed (resume='force'): {'; '.join(changes)}.")
        tensorboard = TensorBoardLogs(os.path.join(out_dir, "logs"))

    step = int(step_var)
    start = time.perf_counter() - float(seconds_var)
    sign = {"min": 1, "max": -1}[keep_best[1]] if keep_best else 0

    def record(loss=None, cost=None, evaluated=True):
        epoch = None
        if spe:  # epochs and the fraction of the current one
            full, done = divmod(step, spe)
            epoch = full + done / spe if done or not step else float(full)
        row = {"epoch": epoch, "step": step, "learning_rate": current_learning_rate(optimizer),
               "seconds": float(seconds_var)}
        if loss is not None:
            row.update(loss=loss, cost=cost)
        if hasattr(source, "log_fields"):
            row.update(source.log_fields())
        if evaluated:
            row.update(evaluate())
        score = row.get(keep_best[0]) if keep_best else None
        if score is not None and not math.isnan(score) and (
                history.best_score is None or sign * score < sign * history.best_score):
            history.best_step, history.best_score = step, score
            history.best_weights = [np.array(w) for w in model.get_weights()]
        history.rows.append(row)
        if tensorboard is not None:
            tensorboard.write(row)
        return row

    def save():
        if checkpointer is not None:
            doc = {"rows": history.rows, "best_step": history.best_step,
                   "best_score": history.best_score}
            checkpointer.save(step, doc, history.best_weights)

    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    callback_list.on_train_begin({"step": step})
    if not history.rows and step == 0 and evaluate_start:
        record()  # the starting point, before any update
    orders = source.orders(step // spe) if spe and hasattr(source, "orders") else None
    progress = Progress(total, step, verbose, show_cost=bool(model.losses))
    data = None
    last_finite = [np.array(w) for w in model.get_weights()]
    try:
        while step < total:
            epoch, done = divmod(step, spe) if spe else (None, step)
            if data is None or (spe and done == 0):
                if spe and done == 0:
                    callback_list.on_epoch_begin(epoch)
                epoch_steps = min(spe, total - epoch * spe) if spe else total
                data = source.epoch_data(orders)
            n = min(steps_per_execution, epoch_steps - done, eval_every - step % eval_every,
                    log_every - step % log_every)
            loss, cost = chunk(data, tf.constant(done, tf.int64), tf.constant(n, tf.int64))
            loss, cost = float(loss), float(cost)
            step, done = step + n, done + n
            step_var.assign(step)
            seconds_var.assign(time.perf_counter() - start)
            weights = model.get_weights()
            if not (math.isfinite(loss) and math.isfinite(cost) and loss <= limit
                    and all(np.isfinite(w).all() for w in weights)):
                history.diverged = True
                grew = f", above the bound {limit:g}" if math.isfinite(loss) else ""
                history.stopped = (f"Training diverged at update {step}: the loss became "
                                   f"{loss}{grew}. The model keeps its last finite weights. "
                                   "The learning rate is probably too large for this model; "
                                   "lower it.")
                model.set_weights(last_finite)
                row = record(loss, cost)
                row["diverged"] = True
                progress.update(step, n, loss, cost, row["learning_rate"], row, True)
                progress.finish(step)
                print(history.stopped)
                break
            last_finite = weights
            epoch_end = spe is not None and done == epoch_steps
            out_of_time = time_limit is not None and float(seconds_var) >= time_limit
            last = step >= total or out_of_time
            evaluated = step % eval_every == 0 or epoch_end or last
            row = record(loss, cost, evaluated) if evaluated or step % log_every == 0 else None
            progress.update(step, n, loss, cost, current_learning_rate(optimizer), row,
                            evaluated)
            callback_list.on_train_batch_end(done - 1, {"loss": loss, "cost": cost,
                                                        "step": step})
            if epoch_end or (spe is None and step % eval_every == 0) or last:
                save()
            if epoch_end:
                logs = {k.replace("train_", ""): v for k, v in row.items()
                        if k.startswith(("train_", "val_"))}
                callback_list.on_epoch_end(epoch, logs)
                if getattr(model, "stop_training", False):
                    progress.finish(step)
                    break
            if out_of_time:
                history.stopped = (f"Time limit of {time_limit:g} s reached after {step} "
                                   "updates.")
                progress.finish(step)
                if verbose:
                    print(history.stopped)
                break
    finally:
        if tensorboard is not None:
            tensorboard.close()
    history.seconds = float(seconds_var)
    callback_list.on_train_end()
    return history
