"""Character-level language models: the course's vanilla RNN, and LSTM / GRU stacks."""

import keras
from keras import ops

from kcourse.layers import VanillaRNN

CELLS = ("vanilla", "lstm", "gru")


@keras.saving.register_keras_serializable(package="kcourse")
class CharModel(keras.Model):
    """Next-character model over ids: embedding (or one-hot), recurrent layers, logits.

    `cell="vanilla"` is the course's RNN (`kcourse.layers.VanillaRNN`, one layer,
    one-hot inputs unless `embedding_dim` > 0). `"lstm"` and `"gru"` stack `layers`
    of Keras' own LSTM / GRU over a learnt embedding, with dropout between layers.

    The recurrent state is explicit, so that it can be carried from one chunk of
    text to the next (training as the course does, evaluation, sampling):
    `logits, states = model(ids, states)` with `states` a list of (batch, units)
    tensors (`zero_states(batch)` to start; None means zeros).

    Args:
        vocab_size: number of character ids (with the out-of-vocabulary id 0).
        cell: `"vanilla"`, `"lstm"` or `"gru"`.
        units: size of every hidden state.
        layers: number of recurrent layers (1 for `"vanilla"`).
        embedding_dim: input embedding size; 0 = one-hot for `"vanilla"`, and
            `units` for LSTM/GRU.
        dropout: dropout rate on the inputs and outputs of every recurrent layer
            (LSTM/GRU).
        sigma: Gaussian init std of the vanilla RNN (course: 0.01).
        seed: optional seed of the vanilla RNN's initialisation and of the dropout
            masks; the LSTM/GRU, embedding and head weights are drawn from Keras' global
            generator (`keras.utils.set_random_seed`, which the training commands call).
        **kwargs: base `keras.Model` arguments (`name`, `dtype`).

    Reference:
        DD2424 Assignment 4; A. Karpathy, "The Unreasonable Effectiveness of
        Recurrent Neural Networks" (2015).
    """

    def __init__(self, vocab_size, cell="vanilla", units=100, layers=1, embedding_dim=0,
                 dropout=0.0, sigma=0.01, seed=None, **kwargs):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"Unknown cell {cell!r}: use one of {', '.join(CELLS)}.")
        if int(layers) < 1 or (cell == "vanilla" and int(layers) != 1):
            raise ValueError(f"layers must be >= 1 (exactly 1 for the vanilla RNN), got {layers}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.vocab_size, self.cell, self.units = int(vocab_size), cell, int(units)
        self.num_layers, self.embedding_dim = int(layers), int(embedding_dim)
        self.dropout, self.sigma, self.seed = float(dropout), float(sigma), seed
        dtype = self.dtype_policy
        if cell == "vanilla":
            self.rnn = VanillaRNN(vocab_size, units, embedding_dim, sigma, seed=seed,
                                  dtype=dtype, name="rnn")
            return
        layer = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
        self.embed = keras.layers.Embedding(vocab_size, embedding_dim or units, dtype=dtype,
                                            name="embedding")
        self.recurrent = [layer(units, return_sequences=True, return_state=True,
                                seed=seed, dtype=dtype, name=f"{cell}_{i}")
                          for i in range(self.num_layers)]
        self.drop = keras.layers.Dropout(dropout, seed=seed, dtype=dtype, name="dropout")
        self.head = keras.layers.Dense(vocab_size, dtype=dtype, name="logits")

    @property
    def states_per_layer(self):
        return 2 if self.cell == "lstm" else 1

    def zero_states(self, batch_size):
        """The initial states of a batch: a list of (batch, units) zeros."""
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
                for _ in range(self.num_layers * self.states_per_layer)]

    def build(self, input_shape=None):
        if self.cell == "vanilla":
            self.rnn.build()
        else:
            self.embed.build((None, None))
            width = self.embed.output_dim
            for layer in self.recurrent:
                layer.build((None, None, width))
                width = self.units
            self.head.build((None, None, self.units))
        self.built = True

    def call(self, ids, states=None, training=False):
        if self.cell == "vanilla":
            logits, h = self.rnn(ids, initial_state=states[0] if states else None)
            return logits, [h]
        x = self.drop(self.embed(ids), training=training)
        k = self.states_per_layer
        new_states = []
        for i, layer in enumerate(self.recurrent):
            initial = states[i * k:(i + 1) * k] if states else None
            x, *layer_states = layer(x, initial_state=initial, training=training)
            x = self.drop(x, training=training)
            new_states += layer_states
        return self.head(x), new_states

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, cell=self.cell, units=self.units,
                      layers=self.num_layers, embedding_dim=self.embedding_dim,
                      dropout=self.dropout, sigma=self.sigma, seed=self.seed)
        return config
