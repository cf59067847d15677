"""One update, and a compiled chunk of updates over any training source.

An update is the course's: forward pass on a `tf.GradientTape`, the loss, the cost
(loss + the model's weight penalties `model.losses`), gradients, one optimizer step.
A *source* says where each update's batch comes from; `make_chunk` runs `steps`
updates in one `tf.function` call (Keras' `steps_per_execution`), traced once.

A source has `steps_per_epoch` (None when its epochs end inside the graph),
`epoch_data(iterator)` (what one epoch's calls receive: an order, an iterator or
None) and, inside the graph, `batch(data, first, k) -> (x, y, states, context)` for
update `first + k` of the epoch and `after_update(context, loss, new_states)`.
`states` is None for models called as `model(x)`, else the recurrent states of a
model called as `outputs, states = model(x, states)`.
"""

import tensorflow as tf


def regularization(model, dtype=tf.float32):
    """The sum of the model's weight penalties (0 when it has none), as `dtype`."""
    losses = [tf.cast(loss, dtype) for loss in model.losses]
    return tf.add_n(losses) if losses else tf.constant(0.0, dtype)


def make_update(model, loss_fn, optimizer):
    """One update; `loss_fn(y, outputs)` is any loss (a `keras.losses.Loss`, a
    composite loss over a dict of outputs, a sequence loss)."""

    def update(x, y, states=None):
        with tf.GradientTape() as tape:
            if states is None:
                outputs, new_states = model(x, training=True), None
            else:
                outputs, new_states = model(x, states, training=True)
            loss = loss_fn(y, outputs)
            cost = loss + regularization(model, loss.dtype)
        variables = model.trainable_variables
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(cost, variables)]
        optimizer.apply(grads, variables)
        return loss, cost, new_states

    return update


class DatasetBatches:
    """A batched `tf.data.Dataset` of `(x, y)` as a training source (one iterator per
    epoch; its batches are read inside the compiled chunk)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.steps_per_epoch = int(dataset.cardinality())
        if self.steps_per_epoch < 1:
            raise ValueError("The training dataset must have a known, non-zero number of "
                             "batches (batch a finite dataset, e.g. with kcourse.data.batched).")

    def orders(self, start_epoch=0):
        return None

    def epoch_data(self, _):
        return iter(self.dataset)

    def batch(self, iterator, first, k):
        x, y = next(iterator)
        return x, y, None, None

    def after_update(self, context, loss, states):
        pass


def as_source(train):
    """A training source: an `InMemoryBatches`, a `TextStreams`, or a batched
    `tf.data.Dataset` (wrapped in `DatasetBatches`)."""
    if isinstance(train, tf.data.Dataset):
        return DatasetBatches(train)
    if not all(hasattr(train, name) for name in ("steps_per_epoch", "batch", "after_update")):
        raise TypeError(f"Cannot train on {type(train).__name__}: give a batched "
                        "tf.data.Dataset, a kcourse.data.InMemoryBatches or a "
                        "kcourse.data.TextStreams.")
    return train


def make_chunk(model, loss_fn, optimizer, source, jit_compile=False):
    """A compiled function `chunk(data, first, steps) -> (mean loss, mean cost)` running
    updates `first, ..., first + steps - 1` of an epoch whose `data` is
    `source.epoch_data(...)`. Traced once: positions and counts are tensors."""
    update = make_update(model, loss_fn, optimizer)

    def chunk(data, first, steps):
        loss_sum = tf.constant(0.0, tf.float32)
        cost_sum = tf.constant(0.0, tf.float32)
        for k in tf.range(steps):
            x, y, states, context = source.batch(data, first, k)
            loss, cost, new_states = update(x, y, states)
            source.after_update(context, loss, new_states)
            loss_sum += tf.cast(loss, tf.float32)
            cost_sum += tf.cast(cost, tf.float32)
        n = tf.cast(steps, tf.float32)
        return loss_sum / n, cost_sum / n

    return tf.function(chunk, jit_compile=jit_compile)
