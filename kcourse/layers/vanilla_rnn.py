"""The course's vanilla recurrent network over character ids."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kcourse")
class VanillaRNN(keras.layers.Layer):
    """A vanilla RNN with its output layer, written out as the course does:

        a_t = W h_{t-1} + U x_t + b,   h_t = tanh(a_t),   o_t = V h_t + c

    where x_t is the one-hot vector of the t-th input id (or its embedding) and o_t
    are the logits of the next character. Weights are stored in Keras' row layout
    (inputs times weights), i.e. the transposes of the course's matrices: `U` is
    (inputs, units), `W` (units, units), `V` (units, vocab_size). One-hot inputs are
    not materialised: `U x_t` is row `x_t` of `U`, the same numbers at a fraction of
    the cost.

    Args:
        vocab_size: K, the number of character ids (inputs and outputs).
        units: m, the size of the hidden state (course: 100).
        embedding_dim: 0 for one-hot inputs (course), else the size of a learnt
            embedding looked up before `U`.
        sigma: standard deviation of the Gaussian initialisation of the weights
            (course: 0.01); biases start at 0.
        seed: optional seed of the initialisation.
        **kwargs: base `Layer` arguments.

    Call arguments:
        ids: int tensor (batch, time) of character ids. A known `time` is unrolled
            (fastest for short chunks); an unknown one runs as a loop.
        initial_state: optional (batch, units) hidden state h_0 (default zeros).

    Returns:
        `(logits, h_last)`: logits (batch, time, vocab_size) for every step and the
        last hidden state (batch, units), to carry into the next chunk.

    Reference:
        DD2424 Assignment 4; A. Karpathy, min-char-rnn.py (2015).
    """

    def __init__(self, vocab_size, units=100, embedding_dim=0, sigma=0.01, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if int(vocab_size) < 2 or int(units) < 1 or int(embedding_dim) < 0:
            raise ValueError(f"Need vocab_size >= 2, units >= 1 and embedding_dim >= 0, "
                             f"got {vocab_size}, {units}, {embedding_dim}.")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}.")
        self.vocab_size = int(vocab_size)
        self.units = int(units)
        self.embedding_dim = int(embedding_dim)
        self.sigma = float(sigma)
        self.seed = seed

    def build(self, input_shape=None):
        def normal(offset):
            seed = None if self.seed is None else self.seed + offset
            return keras.initializers.RandomNormal(stddev=self.sigma, seed=seed)

        inputs = self.vocab_size
        if self.embedding_dim:
            self.embedding = self.add_weight(name="embedding", initializer=normal(5),
                                             shape=(self.vocab_size, self.embedding_dim))
            inputs = self.embedding_dim
        self.U = self.add_weight(name="U", shape=(inputs, self.units), initializer=normal(0))
        self.W = self.add_weight(name="W", shape=(self.units, self.units),
                                 initializer=normal(1))
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
        self.V = self.add_weight(name="V", shape=(self.units, self.vocab_size),
                                 initializer=normal(2))
        self.c = self.add_weight(name="c", shape=(self.vocab_size,), initializer="zeros")

    def call(self, ids, initial_state=None):
        if self.embedding_dim:
            inputs = ops.matmul(ops.take(self.embedding, ids, axis=0), self.U)
        else:
            inputs = ops.take(self.U, ids, axis=0)  # U x_t for one-hot x_t
        inputs = inputs + self.b
        h = initial_state
        if h is None:
            h = ops.zeros((ops.shape(ids)[0], self.units), dtype=self.compute_dtype)
        if ids.shape[1] is not None:  # unrolled: the course's sequences are short (25)
            hidden = []
            for x_t in ops.unstack(inputs, axis=1):  # one op (and one in the backward)
                h = ops.tanh(x_t + ops.matmul(h, self.W))
                hidden.append(h)
            hidden = ops.stack(hidden, axis=1)
        else:  # a loop over an unknown number of steps (e.g. a prompt in a served graph)
            def step(h, x_t):
                h = ops.tanh(x_t + ops.matmul(h, self.W))
                return h, h

            h, hidden = ops.scan(step, h, ops.transpose(inputs, (1, 0, 2)))
            hidden = ops.transpose(hidden, (1, 0, 2))
        logits = ops.matmul(hidden, self.V) + self.c
        return logits, h

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, units=self.units,
                      embedding_dim=self.embedding_dim, sigma=self.sigma, seed=self.seed)
        return config
