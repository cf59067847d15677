"""Text synthesis from a character model: temperature and nucleus (top-p) sampling.

Every draw is a stateless random op seeded by `(seed, position)`, so the same seed
gives the same text, in Python and in an exported graph alike.
"""

import tensorflow as tf


def sample_next(logits, temperature=1.0, top_p=1.0, seed=(0, 0)):
    """Draw one id per row of `logits` (batch, vocab).

    Args:
        logits: unnormalised log-probabilities.
        temperature: divides the logits; <= 0 means greedy (argmax), the limit of
            temperature -> 0.
        top_p: nucleus sampling: keep the smallest set of most likely ids whose
            probability mass reaches `top_p` (1.0 keeps all), renormalised.
        seed: shape-[2] integer seed of the stateless draw.

    Returns:
        int32 ids (batch,).
    """
    logits = tf.cast(logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    scaled = logits / tf.maximum(temperature, 1e-6)
    ordered = tf.sort(scaled, axis=-1, direction="DESCENDING")
    mass_before = tf.cumsum(tf.nn.softmax(ordered), axis=-1, exclusive=True)
    kept = mass_before < tf.cast(top_p, tf.float32)  # the first id is always kept
    cutoff = tf.reduce_min(tf.where(kept, ordered, ordered[:, :1]), axis=-1, keepdims=True)
    scaled = tf.where(scaled < cutoff, tf.constant(-float("inf")), scaled)
    seed = tf.cast(seed, tf.int64)
    drawn = tf.random.stateless_categorical(scaled, 1, seed, dtype=tf.int32)[:, 0]
    return tf.where(temperature > 0, drawn, greedy)


def sample_ids(model, first_ids, states, length, temperature=1.0, top_p=1.0, seed=0):
    """Feed `first_ids` (batch,) with `states`, then draw `length` ids, each fed back.

    Runs as a `tf.while_loop` carrying the model's recurrent states (usable inside a
    `tf.function` or an exported graph). Returns int32 ids (batch, length).
    """
    length = tf.convert_to_tensor(length, tf.int32)
    seed = tf.cast(seed, tf.int64)
    ids = tf.convert_to_tensor(first_ids, tf.int32)
    out = tf.TensorArray(tf.int32, size=length)

    def body(i, ids, states, out):
        logits, states = model(ids[:, None], states, training=False)
        ids = sample_next(logits[:, -1], temperature, top_p,
                          tf.stack([seed, tf.cast(i, tf.int64)]))
        return i + 1, ids, states, out.write(i, ids)

    _, _, _, out = tf.while_loop(lambda i, *_: i < length, body,
                                 (tf.constant(0), ids, list(states), out))
    return tf.transpose(out.stack())


def generate(model, vocab, prompt="\n", length=200, temperature=1.0, top_p=1.0, seed=0):
    """Continue `prompt` by `length` sampled characters (returned without the prompt).

    The prompt is run through the model from a zero state; characters outside the
    vocabulary map to its out-of-vocabulary id. An empty prompt starts from "\\n".
    """
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}.")
    ids = vocab.encode(prompt or "\n")[None]
    states = model.zero_states(1)
    if ids.shape[1] > 1:
        _, states = model(ids[:, :-1], states, training=False)
    out = compiled_sampler(model)(ids[:, -1], states, length, temperature, top_p, seed)
    return vocab.decode(out.numpy()[0])


def compiled(model, name, fn):
    """`tf.function(fn)`, made once per model and kept on it (so that repeated calls,
    e.g. an evaluation every 10,000 updates, reuse one trace)."""
    cache = model.__dict__.setdefault("_kcourse_functions", {})
    if name not in cache:
        cache[name] = tf.function(fn, reduce_retracing=True)
    return cache[name]


def compiled_sampler(model):
    """`sample_ids` for `model`, compiled; length, temperature, top_p and seed are passed
    as tensors, so a new value does not trace again."""
    run = compiled(model, "sample", lambda first, states, length, temperature, top_p, seed:
                   sample_ids(model, first, states, length, temperature, top_p, seed))

    def sampler(first, states, length, temperature=1.0, top_p=1.0, seed=0):
        return run(first, states, tf.constant(length, tf.int32),
                   tf.constant(temperature, tf.float32), tf.constant(top_p, tf.float32),
                   tf.constant(seed, tf.int64))

    return sampler
