"""The CBoW network of INF265 project 3, as a plain builder.

The course's `CBoW` (`code_solutions/cbow.py`): `nn.Embedding(V, d)` of the 4 context
ids, the 4 vectors flattened side by side (4d numbers), a ReLU, `nn.Linear(4d, V)`. Its
word vectors are the embedding's rows (the similarities use them as they are, before
the ReLU). kcourse's `combine="concat"` is that network; `"mean"` and `"sum"` are the
CBoW of word2vec (the context vectors averaged or summed, then the dense layer).
"""

import keras
import numpy as np

from kcourse.layers import MultiHeadSelfAttention, PositionalEncoding

COMBINES = ("concat", "mean", "sum")


def cbow_net(vocab_size, embedding_dim=12, context=4, combine="concat", seed=None,
             name="cbow", hidden=0):
    """The scores (logits) of every vocabulary word, from the ids of its context.

    Args:
        vocab_size: V, the number of word ids (`<unk>` included).
        embedding_dim: d, numbers per word vector.
        context: the number of context words (4: 2 before, 2 after).
        combine: `"concat"`: the course's, the `context` vectors side by side `(context
            * d)`, then a ReLU; `"mean"`: their average `(d)`; `"sum"`: their sum `(d)`.
        seed: seed of the initialisations: the embedding N(0, 1) as PyTorch's
            `nn.Embedding` (the course's), the dense layers Glorot-uniform, bias 0.
        name: the model's name.
        hidden: 0 (the course's): the scores straight from the combined vectors; > 0:
            a ReLU layer of `hidden` units between them (`"hidden"`), which lets the
            context words' vectors act together, not only side by side.

    Input: int32 ids `(batch, context)`; output: float32 scores `(batch, V)`. The layer
    `"embedding"` holds the word vectors `(V, d)`.
    """
    if combine not in COMBINES:
        raise ValueError(f"combine must be one of {', '.join(COMBINES)}, got {combine!r}.")
    if vocab_size < 1 or embedding_dim < 1 or context < 1:
        raise ValueError(f"vocab_size, embedding_dim and context must be positive, got "
                         f"{vocab_size}, {embedding_dim}, {context}.")
    if hidden < 0:
        raise ValueError(f"hidden must be >= 0 (0: no hidden layer), got {hidden}.")
    inputs = keras.Input((context,), dtype="int32", name="contexts")
    vectors = keras.layers.Embedding(
        vocab_size, embedding_dim, name="embedding",
        embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=seed))(inputs)
    if combine == "concat":
        h = keras.layers.Flatten(name="concat")(vectors)
        h = keras.layers.ReLU(name="relu")(h)
    else:
        h = keras.layers.GlobalAveragePooling1D(name="mean")(vectors)
        if combine == "sum":  # context x the mean: built-in layers only (safe loading)
            h = keras.layers.Rescaling(float(context), name="sum")(h)
    if hidden:
        h = keras.layers.Dense(hidden, activation="relu", name="hidden",
                               kernel_initializer=keras.initializers.GlorotUniform(
                                   None if seed is None else seed + 2))(h)
    scores = keras.layers.Dense(
        vocab_size, name="scores",
        kernel_initializer=keras.initializers.GlorotUniform(
            None if seed is None else seed + 1))(h)
    return keras.Model(inputs, scores, name=name)


def word_vectors(model):
    """The word vectors of a CBoW network, a NumPy array `(V, d)` (row = word id)."""
    return keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)


# ----------------------------------------------------------------- conjugation, generator

CONJUGATION_MODELS = ("mlp", "rnn", "attention")


def frozen_embedding(inputs, vectors, name="embedding"):
    """`inputs` (int ids) through a `keras.layers.Embedding` holding `vectors` `(V, d)`,
    not trained. (The vectors are assigned, not given as a `Constant` initializer, so
    that the saved model's configuration does not carry them.)"""
    vectors = np.asarray(vectors, np.float32)
    layer = keras.layers.Embedding(vectors.shape[0], vectors.shape[1], name=name,
                                   trainable=False, embeddings_initializer="zeros")
    outputs = layer(inputs)
    layer.embeddings.assign(vectors)
    return outputs


def conjugation_net(kind, vectors, classes=12, before=4, after=4, units=128, heads=4,
                    key_dim=16, dropout=0.0, seed=None, name=None, layers=1):
    """The scores of the `classes` be / have forms from the words around the gap.

    The context ids `(batch, before + after)` (the `before` words left of the gap, then
    the `after` words right of it) go through the frozen word vectors `vectors`, then:

    - `"mlp"`: the vectors side by side, a ReLU layer of `units`, the scores (the
      course's MLP);
    - `"rnn"`: one LSTM of `units` reads the left words towards the gap, another the
      right words backwards towards the gap; their last states side by side, the
      scores (the course's RNN reads both sides); with `layers` > 1, `layers - 1`
      bidirectional LSTMs of `units` a direction run first over all the words (left,
      then right: the gap is always between them), and the two LSTMs read their
      outputs, so that each side is read in the light of the other (with one layer the
      sides meet only in the scores layer);
    - `"attention"`: the vectors plus their positions (`PositionalEncoding`), a
      `MultiHeadSelfAttention` of `heads` heads (`key_dim` each) added back to them and
      layer-normalised, side by side, a ReLU layer of `units`, the scores (the course's
      attention model, with a residual connection).

    `dropout` (Keras' `Dropout`) is applied before the scores layer when > 0; `layers`
    is used by `"rnn"` only.
    """
    if kind not in CONJUGATION_MODELS:
        raise ValueError(f"kind must be one of {', '.join(CONJUGATION_MODELS)}, got {kind!r}.")
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}.")
    context = before + after
    inputs = keras.Input((context,), dtype="int32", name="contexts")
    x = frozen_embedding(inputs, vectors)
    init = keras.initializers.GlorotUniform
    seeds = iter(range(10**6) if seed is None else range(seed, seed + 100))
    pick = (lambda: None) if seed is None else (lambda: next(seeds))
    if kind == "mlp":
        h = keras.layers.Flatten(name="concat")(x)
        h = keras.layers.Dense(units, "relu", name="hidden",
                               kernel_initializer=init(pick()))(h)
    elif kind == "rnn":
        for i in range(layers - 1):  # both directions over all the words, every position
            x = keras.layers.Bidirectional(
                keras.layers.LSTM(units, return_sequences=True,
                                  kernel_initializer=init(pick())),
                backward_layer=keras.layers.LSTM(units, return_sequences=True,
                                                 go_backwards=True,
                                                 kernel_initializer=init(pick())),
                name=f"bilstm_{i}")(x)
        left = keras.layers.Cropping1D((0, after), name="left")(x)
        right = keras.layers.Cropping1D((before, 0), name="right")(x)
        h_left = keras.layers.LSTM(units, name="lstm_left",
                                   kernel_initializer=init(pick()))(left)
        h_right = keras.layers.LSTM(units, go_backwards=True, name="lstm_right",
                                    kernel_initializer=init(pick()))(right)
        h = keras.layers.Concatenate(name="both_sides")([h_left, h_right])
    else:
        x = PositionalEncoding(max_length=context, name="positions")(x)
        a = MultiHeadSelfAttention(heads, key_dim, seed=pick(), name="attention")(x)
        h = keras.layers.LayerNormalization(name="norm")(keras.layers.Add(name="residual")(
            [x, a]))
        h = keras.layers.Flatten(name="concat")(h)
        h = keras.layers.Dense(units, "relu", name="hidden",
                               kernel_initializer=init(pick()))(h)
    if dropout:
        h = keras.layers.Dropout(dropout, seed=pick(), name="dropout")(h)
    scores = keras.layers.Dense(classes, name="scores", kernel_initializer=init(pick()))(h)
    return keras.Model(inputs, scores, name=name or f"conjugation_{kind}")


def generator_net(vectors, context=6, units=256, layers=1, dropout=0.0, seed=None,
                  name="generator"):
    """The scores of the next word from the `context` words before it: the frozen word
    vectors `vectors` `(V, d)`, `layers` LSTMs of `units` (the last one's last state),
    optional dropout, a dense layer to the `V` words."""
    inputs = keras.Input((context,), dtype="int32", name="contexts")
    h = frozen_embedding(inputs, vectors)
    init = keras.initializers.GlorotUniform
    for i in range(layers):
        h = keras.layers.LSTM(units, return_sequences=i < layers - 1, name=f"lstm_{i}",
                              kernel_initializer=init(None if seed is None else seed + i))(h)
    if dropout:
        h = keras.layers.Dropout(dropout, seed=seed, name="dropout")(h)
    scores = keras.layers.Dense(
        len(vectors), name="scores",
        kernel_initializer=init(None if seed is None else seed + layers))(h)
    return keras.Model(inputs, scores, name=name)
