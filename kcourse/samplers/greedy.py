"""Greedy decoding of a recurrent model with explicit states: the most likely token at
every step, inside the graph."""

import numpy as np
import tensorflow as tf

from kcourse.samplers.recurrent import sample_ids


def greedy_ids(model, first_ids, states, length, banned=None):
    """Feed `first_ids` (batch,) with `states`, then emit the argmax of the logits
    `length` times, each fed back (the same interface as `sample_ids`).

    `sample_ids` at temperature 0: `sample_next` then returns the argmax of the logits
    with the `banned` ids set to -inf (ties go to the lower id, as `tf.math.top_k`'s
    do, so a beam search of width 1 gives the same ids). Runs as a `tf.while_loop`.

    Args:
        model: a callable `logits, states = model(ids, states, training=False)`, e.g.
            a `CharModel`.
        first_ids: int (batch,): the last token of every prompt.
        states: list of (batch, ...) tensors: the model's states after the prompts
            but their last tokens.
        length: the number of tokens to emit, >= 1 (a Python int or an int32 scalar).
        banned: optional list of ids never emitted (e.g. the out-of-vocabulary id 0).

    Returns:
        int32 ids (batch, length).

    Reference:
        D. Jurafsky and J. H. Martin, "Speech and Language Processing" (3rd ed.
        draft), the decoding of machine translation: greedy decoding, beam search.
    """
    known = tf.get_static_value(length)
    if known is not None and (np.ndim(known) != 0 or int(known) != known or known < 1):
        raise ValueError(f"length must be an integer >= 1, got {known}.")
    return sample_ids(model, first_ids, states, length, temperature=0.0, banned=banned)
