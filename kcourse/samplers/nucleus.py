"""Temperature and nucleus (top-p) sampling of the next token."""

import tensorflow as tf


def sample_next(logits, temperature=1.0, top_p=1.0, seed=(0, 0), banned=None):
    """Draw one id per row of `logits` (batch, vocab).

    Args:
        logits: unnormalised log-probabilities.
        temperature: divides the logits; <= 0 means greedy (argmax), the limit of
            temperature -> 0.
        top_p: nucleus sampling: keep the smallest set of most likely ids whose
            probability mass reaches `top_p` (1.0 keeps all), renormalised.
        seed: shape-[2] integer seed of the stateless draw.
        banned: optional list of ids never drawn (e.g. the out-of-vocabulary id).

    Returns:
        int32 ids (batch,).

    Reference:
        A. Holtzman et al., "The Curious Case of Neural Text Degeneration", ICLR 2020.
    """
    logits = tf.cast(logits, tf.float32)
    if banned:
        allowed = tf.reduce_all(tf.range(tf.shape(logits)[-1])[:, None] != list(banned), -1)
        logits = tf.where(allowed, logits, tf.constant(-float("inf")))
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
