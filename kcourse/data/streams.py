"""A text read the course's way: contiguous streams, `seq_length` characters per update.

The text is cut into `batch_size` contiguous streams (the course: one stream, the whole
book). Every update reads the next `seq_length` characters of every stream (X = chars
e..e+T-1, Y = e+1..e+T) and starts from the hidden state the previous chunk ended
with; at the end of the text the position and the state go back to zero: a new epoch.
`TextStreams` is that reading position, the carried states and the course's smoothed
loss `smooth = .999 smooth + .001 loss` (starting at the first loss), as variables
that `kcourse.training.fit` checkpoints with the model.
"""

import numpy as np
import tensorflow as tf


def streams_of(ids, batch_size):
    """The ids as (batch_size, length) contiguous streams (the remainder is dropped)."""
    ids = np.asarray(ids, np.int32)
    length = len(ids) // batch_size
    if length < 2:
        raise ValueError(f"{len(ids)} characters are too few for {batch_size} streams.")
    return ids[: length * batch_size].reshape(batch_size, length)


class TextStreams(tf.Module):
    """Training data of a recurrent model with explicit states, read in order.

    Args:
        ids: int array, the training text encoded.
        seq_length: T, characters per update and stream (course: 25).
        batch_size: parallel contiguous streams (course: 1).
        zero_states: the model's initial states for `batch_size` streams (a list of
            (batch, units) tensors, e.g. `model.zero_states(batch_size)`).
    """

    steps_per_epoch = None  # epochs end where the text does, inside the graph

    def __init__(self, ids, seq_length, batch_size, zero_states):
        super().__init__(name="text_streams")
        self.seq_length, self.batch_size = int(seq_length), int(batch_size)
        if self.seq_length < 1 or self.batch_size < 1:
            raise ValueError("seq_length and batch_size must be at least 1.")
        self.data = tf.constant(streams_of(ids, batch_size))
        if self.data.shape[1] < self.seq_length + 1:
            raise ValueError(f"Each of the {batch_size} streams holds {self.data.shape[1]} "
                             f"characters, fewer than seq_length + 1 = {seq_length + 1}.")
        self.position = tf.Variable(0, dtype=tf.int32, trainable=False)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.smooth = tf.Variable(-1.0, dtype=tf.float32, trainable=False)  # < 0: unset
        self.states = [tf.Variable(s, trainable=False) for s in zero_states]

    def log_fields(self):
        """What a history row records of the reading: epochs completed, smooth loss."""
        return {"epoch": int(self.epoch), "smooth_loss": float(self.smooth)}

    def next_input(self):
        """Each stream's next input character (where sampling during training starts)."""
        return self.data[:, self.position.numpy() % self.data.shape[1]]

    # the trainer's interface (kcourse.training.steps)
    def epoch_data(self, _):
        return None

    def batch(self, _, first, k):
        t, length = self.seq_length, tf.shape(self.data)[1]
        wrap = self.position + t + 1 > length  # end of the text: a new epoch
        pos = tf.where(wrap, 0, self.position)
        states = [tf.where(wrap, tf.zeros_like(s), s) for s in self.states]
        x = tf.slice(self.data, [0, pos], [self.batch_size, t])
        y = tf.slice(self.data, [0, pos + 1], [self.batch_size, t])
        return x, y, states, (pos, wrap)

    def after_update(self, context, loss, states):
        pos, wrap = context
        for var, state in zip(self.states, states):
            var.assign(tf.stop_gradient(state))
        self.position.assign(pos + self.seq_length)
        self.epoch.assign_add(tf.cast(wrap, tf.int64))
        loss = tf.cast(loss, tf.float32)
        self.smooth.assign(tf.where(self.smooth < 0, loss, 0.999 * self.smooth + 0.001 * loss))
