"""Generation from a recurrent model with explicit states, inside the graph."""

import tensorflow as tf

from kcourse.samplers.nucleus import sample_next


def sample_ids(model, first_ids, states, length, temperature=1.0, top_p=1.0, seed=0,
               banned=None):
    """Feed `first_ids` (batch,) with `states`, then draw `length` ids, each fed back.

    Runs as a `tf.while_loop` carrying the model's recurrent states (usable inside a
    `tf.function` or an exported graph); draw `i` is seeded by `(seed, i)`. `banned`
    ids are never drawn. Returns int32 ids (batch, length).
    """
    length = tf.convert_to_tensor(length, tf.int32)
    seed = tf.cast(seed, tf.int64)
    ids = tf.convert_to_tensor(first_ids, tf.int32)
    out = tf.TensorArray(tf.int32, size=length)

    def body(i, ids, states, out):
        logits, states = model(ids[:, None], states, training=False)
        ids = sample_next(logits[:, -1], temperature, top_p,
                          tf.stack([seed, tf.cast(i, tf.int64)]), banned)
        return i + 1, ids, states, out.write(i, ids)

    _, _, _, out = tf.while_loop(lambda i, *_: i < length, body,
                                 (tf.constant(0), ids, list(states), out))
    return tf.transpose(out.stack())
