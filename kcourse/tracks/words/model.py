"""The CBoW network of INF265 project 3, as a plain builder.

The course's `CBoW` (`code_solutions/cbow.py`): `nn.Embedding(V, d)` of the 4 context
ids, the 4 vectors flattened side by side (4d numbers), a ReLU, `nn.Linear(4d, V)`. Its
word vectors are the embedding's rows (the similarities use them as they are, before
the ReLU). kcourse's `combine="concat"` is that network; `"mean"` and `"sum"` are the
CBoW of word2vec (the context vectors averaged or summed, then the dense layer).
"""

import keras

COMBINES = ("concat", "mean", "sum")


def cbow_net(vocab_size, embedding_dim=12, context=4, combine="concat", seed=None,
             name="cbow"):
    """The scores (logits) of every vocabulary word, from the ids of its context.

    Args:
        vocab_size: V, the number of word ids (`<unk>` included).
        embedding_dim: d, numbers per word vector.
        context: the number of context words (4: 2 before, 2 after).
        combine: `"concat"`: the course's, the `context` vectors side by side `(context
            * d)`, then a ReLU; `"mean"`: their average `(d)`; `"sum"`: their sum `(d)`.
        seed: seed of the initialisations: the embedding N(0, 1) as PyTorch's
            `nn.Embedding` (the course's), the dense layer Glorot-uniform, bias 0.
        name: the model's name.

    Input: int32 ids `(batch, context)`; output: float32 scores `(batch, V)`. The layer
    `"embedding"` holds the word vectors `(V, d)`.
    """
    if combine not in COMBINES:
        raise ValueError(f"combine must be one of {', '.join(COMBINES)}, got {combine!r}.")
    if vocab_size < 1 or embedding_dim < 1 or context < 1:
        raise ValueError(f"vocab_size, embedding_dim and context must be positive, got "
                         f"{vocab_size}, {embedding_dim}, {context}.")
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
    scores = keras.layers.Dense(
        vocab_size, name="scores",
        kernel_initializer=keras.initializers.GlorotUniform(
            None if seed is None else seed + 1))(h)
    return keras.Model(inputs, scores, name=name)


def word_vectors(model):
    """The word vectors of a CBoW network, a NumPy array `(V, d)` (row = word id)."""
    return keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)
