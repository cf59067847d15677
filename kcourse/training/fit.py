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
import os
import time

import keras
import numpy as np
import tensorflow as tf

from kcourse.training.checkpoints import Checkpointer
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
        out_dir: if given, TensorBoard logs go to `out_dir/logs` and checkpoints to
            `out_dir/checkpoints` (every epoch; for streams at every evaluation).
        resume: continue from the latest checkpoint in `out_dir` (model, optimizer,
            data position, history). An `InMemoryBatches` or a `TextStreams` then
            continues exactly where it stopped; a tf.data dataset restarts its
            sequence of epoch orders from its seed.
        callbacks: Keras callbacks; they get `on_train_begin` (logs: `step`),
            `on_epoch_end(epoch, logs)` with `loss`, `cost`, `accuracy` and the `val_`
            ones (as in `model.fit`), and `on_train_batch_end` after every compiled
            chunk of updates (logs: `loss`, `cost`, `step`; chunks end at every log
            point, so a callback acting every k updates is exact when k is a multiple
            of `log_every`).
        verbose: 1 for a progress bar, 0 for silence.

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
    checkpointer = writer = None
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        state = {"model": model, "optimizer": optimizer, "step": step_var,
                 "seconds": seconds_var}
        if isinstance(source, tf.Module):
            state["source"] = source
        checkpointer = Checkpointer(os.path.join(out_dir, "checkpoints"), **state)
        saved = checkpointer.restore() if resume else None
        if saved is not None:
            done = int(step_var)
            history.rows = [r for r in saved["rows"] if r["step"] <= done]
            history.best_step = saved.get("best_step", 0)
            history.best_score = saved.get("best_score")
            history.best_weights = saved.get("best_weights")
            if verbose:
                print(f"Resumed from {checkpointer.latest} at update {done}.")
        writer = tf.summary.create_file_writer(os.path.join(out_dir, "logs"))

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
        if writer is not None:
            with writer.as_default(step=step):
                for key, value in row.items():
                    if key not in ("epoch", "step") and isinstance(value, (int, float)):
                        tf.summary.scalar(key, value)
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
    bar = None
    last_finite = [np.array(w) for w in model.get_weights()]
    while step < total:
        epoch, done = divmod(step, spe) if spe else (None, step)
        if spe and done == 0:
            callback_list.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            epoch_steps = min(spe, total - epoch * spe)
            bar = keras.utils.Progbar(epoch_steps, verbose=verbose, stateful_metrics=["lr"])
            data = source.epoch_data(orders)
        elif bar is None:
            epoch_steps = spe or total
            bar = keras.utils.Progbar(epoch_steps, verbose=verbose, stateful_metrics=[
                "lr", "smooth_loss", "val_loss_per_char"])
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
            history.stopped = (f"Training diverged at update {step}: the loss became {loss}"
                               f"{grew}. The model keeps its last finite weights. The "
                               "learning rate is probably too large for this model; lower "
                               "it.")
            print(history.stopped)
            model.set_weights(last_finite)
            record(loss, cost)["diverged"] = True
            break
        last_finite = weights
        epoch_end = spe is not None and done == epoch_steps
        out_of_time = time_limit is not None and float(seconds_var) >= time_limit
        last = step >= total or out_of_time
        row = None
        if step % log_every == 0 or step % eval_every == 0 or epoch_end or last:
            row = record(loss, cost, evaluated=step % eval_every == 0 or epoch_end or last)
        bar.update(done, [("loss", loss), ("cost", cost),
                          ("lr", current_learning_rate(optimizer))] +
                   [(k, v) for k, v in (row or {}).items()
                    if k in ("smooth_loss", "val_loss_per_char")])
        callback_list.on_train_batch_end(done - 1, {"loss": loss, "cost": cost, "step": step})
        if (epoch_end or (spe is None and step % eval_every == 0) or last):
            save()
        if epoch_end:
            logs = {k.replace("train_", ""): v for k, v in row.items()
                    if k.startswith(("train_", "val_"))}
            callback_list.on_epoch_end(epoch, logs)
            if getattr(model, "stop_training", False):
                break
        if out_of_time:
            history.stopped = f"Time limit of {time_limit:g} s reached after {step} updates."
            if verbose:
                print(f"\n{history.stopped}")
            break
    history.seconds = float(seconds_var)
    callback_list.on_train_end()
    return history
