"""Beam search over a recurrent next-token model with explicit states, inside the graph.

The `width` best partial sequences of every prompt are kept; each step feeds their
last tokens through the model as one batch of `batch * width` rows, finds the best
`width` of all `width * vocab` one-token extensions (exactly `tf.math.top_k`'s choice,
without forming them: `_extend` reads the log-probabilities once, in blocks, and ranks
the few blocks that can hold the best), and keeps them, reordering the recurrent states
to follow their beams (`tf.gather`).
All of it is one `tf.while_loop`, so it runs in a `tf.function` or an exported graph
(called eagerly, TensorFlow runs that loop one step at a time in Python: wrap the call
in a `tf.function` for speed).
"""

import operator

import numpy as np
import tensorflow as tf

NEG_INF = -float("inf")
BLOCK = 128  # log-probabilities per block of `_extend`


def beam_search(model, first_ids, states, length, width, alpha=0.0, stop_ids=None,
                banned=None):
    """The `width` most likely continuations of every prompt, `length` tokens each.

    The model is called as in `sample_ids`: `logits, states = model(ids[:, None],
    states, training=False)`. `first_ids` (batch,) are the last tokens of the prompts,
    which `states` (a list of (batch, ...) tensors) have not seen yet: the states hold
    the prompts before them. The states are repeated to (batch * width, ...) rows
    (`tf.repeat`, the beams of a prompt side by side) and gathered after every step so
    that each row follows its beam. At the first step only beam 0 of a prompt is live
    (the others start at a score of -inf), so the `width` beams are distinct.

    A beam's score is the sum of the log-probabilities of its tokens:
    `tf.nn.log_softmax` of the logits, in float32 whatever the model's dtype.

    Stop tokens: a beam whose last token is in `stop_ids` is finished. It is then
    extended only by its stop token again (the padding: every position after a stop
    token repeats it) with log-probability 0, so its score and length no longer
    change, and exactly one copy of it stays a candidate (its other extensions get
    -inf).

    Ranking: candidates are ranked by the length-normalised score
    `score / length ** alpha` (the simple form of GNMT's length penalty; alpha=0 ranks
    by the plain sum). Unfinished candidates of one step all have the same length, so
    alpha only matters when finished beams compete with unfinished ones; the last
    step's ranking is the returned order. The returned scores are the raw sums.

    Args:
        model: a callable `logits, states = model(ids, states, training=False)` with
            ids (rows, time) int32 and logits (rows, time, vocab), e.g. a `CharModel`.
        first_ids: int (batch,): the last token of every prompt.
        states: list of (batch, ...) tensors: the model's states after the prompts
            but their last tokens.
        length: the number of tokens generated per beam, >= 1 (a Python int or an
            int32 scalar tensor, e.g. a `tf.function` argument).
        width: the number of beams per prompt, a Python int in
            [1, vocabulary size - number of banned ids].
        alpha: length-normalisation exponent, >= 0.
        stop_ids: optional list of ids that end a sequence (e.g. an end-of-sentence id).
        banned: optional list of ids never emitted (e.g. the out-of-vocabulary id 0):
            their log-probability is set to -inf before the top-k.

    Returns:
        `(ids, scores, lengths)`: ids int32 (batch, width, length); scores float32
        (batch, width), the summed log-probabilities of the tokens up to and including
        the stop token, best first by `score / length ** alpha`; lengths int32
        (batch, width), the number of tokens up to and including the first stop token,
        or `length` for a beam that never stopped.

    Reference:
        A. Graves, "Sequence Transduction with Recurrent Neural Networks", ICML
        Representation Learning Workshop 2012; I. Sutskever, O. Vinyals and Q. V. Le,
        "Sequence to Sequence Learning with Neural Networks", NeurIPS 2014 (beam
        search); Y. Wu et al., "Google's Neural Machine Translation System: Bridging
        the Gap between Human and Machine Translation", arXiv:1609.08144, 2016 (length
        normalisation).
    """
    width = _check_width(width)
    length = _checked_length(length)
    if isinstance(alpha, (int, float, np.number)) and not alpha >= 0:
        raise ValueError(f"alpha must be a number >= 0, got {alpha}.")
    banned = sorted({int(i) for i in banned}) if banned else []
    stop_ids = sorted({int(i) for i in stop_ids}) if stop_ids else []
    normalise = not (isinstance(alpha, (int, float, np.number)) and alpha == 0)
    alpha = tf.cast(alpha, tf.float32)

    first_ids = tf.convert_to_tensor(first_ids, tf.int32)
    ids = tf.repeat(first_ids, width)  # (batch * width,): the beams of a prompt in a row
    states = tf.nest.map_structure(lambda s: tf.repeat(s, width, axis=0), list(states))
    zeros = tf.zeros_like(first_ids[:, None], tf.float32) + tf.zeros([width])
    scores = zeros + tf.where(tf.range(width) == 0, 0.0, NEG_INF)  # (batch, width)
    lengths = tf.cast(zeros, tf.int32)
    finished = tf.zeros_like(scores, tf.bool)
    tokens = tf.TensorArray(tf.int32, size=length)
    parents = tf.TensorArray(tf.int32, size=length)

    def body(i, ids, states, scores, lengths, finished, tokens, parents):
        logits, states = model(ids[:, None], states, training=False)
        logp = tf.nn.log_softmax(tf.cast(logits[:, -1], tf.float32))  # (batch*width, V)
        checks = _check_vocab(logp.shape[-1], tf.shape(logp)[-1], width, banned)
        with tf.control_dependencies(checks):
            logp = tf.identity(logp)
        grown = lengths + tf.cast(tf.logical_not(finished), tf.int32)  # (batch, width)
        divisor = tf.cast(grown, tf.float32) ** alpha if normalise else None
        parent, token, scores = _extend(logp, ids, scores, finished, divisor, width,
                                        banned, bool(stop_ids))
        batch = _dims(scores)[0]
        lengths = tf.gather(grown, parent, batch_dims=1)
        finished_now = tf.gather(finished, parent, batch_dims=1)
        if stop_ids:
            finished_now = finished_now | tf.reduce_any(token[:, :, None] == stop_ids, -1)
        rows = tf.reshape(parent + tf.range(batch)[:, None] * width, [-1])
        new_states = tf.nest.map_structure(lambda s: tf.gather(s, rows), states)
        # the loop's tensors keep the static shapes they entered with (a batch known
        # when traced stays known: tf.while_loop refuses a shape that changes)
        new_states = tf.nest.map_structure(lambda new, old: tf.ensure_shape(new, old.shape),
                                           new_states, states)
        shape = finished.shape
        return (i + 1, tf.ensure_shape(tf.reshape(token, [-1]), ids.shape), new_states,
                tf.ensure_shape(scores, shape), tf.ensure_shape(lengths, shape),
                tf.ensure_shape(finished_now, shape), tokens.write(i, token),
                parents.write(i, parent))

    loop = tf.while_loop(lambda i, *_: i < length, body,
                         (tf.constant(0), ids, states, scores, lengths, finished, tokens,
                          parents))
    _, _, _, scores, lengths, _, tokens, parents = loop

    def back(carry, step):  # from the last step to the first: follow the parents
        token, parent = step
        beam = carry[1]
        return tf.gather(token, beam, batch_dims=1), tf.gather(parent, beam, batch_dims=1)

    last = tf.zeros_like(lengths) + tf.range(width)  # top_k's order is the final ranking
    ids, _ = tf.scan(back, (tokens.stack(), parents.stack()), initializer=(last, last),
                     reverse=True)
    return tf.transpose(ids, [1, 2, 0]), scores, lengths


def _extend(logp, last_ids, scores, finished, divisor, width, banned, stops,
            block=BLOCK):
    """The `width` best one-token extensions of every prompt's beams, without forming all
    `width * vocab` of their scores: exactly the choice of `tf.math.top_k` over the
    (batch, width * vocab) rows of `score + logp` (divided by `divisor`, the beam's length
    to the power alpha; banned ids at -inf; a finished beam only extended by its last
    token, at log-probability 0), ties to the lower index.

    Every beam's row of log-probabilities is cut into blocks of `block` (a Python int;
    the last block padded with -inf); the `width` blocks whose best extension ranks
    highest are kept (that best is `(score + block maximum) / divisor`: adding a number
    and dividing by a positive one keep the order of floats, ties included), and the
    top-k runs over their values only. Exact: an extension among the `width` best lies
    in a kept block, since otherwise the best of each of the `width` kept blocks, each
    ranked before its block (larger, or equal and in a lower block, so at a lower
    index), would be `width` extensions ranked before it. So a step reads the
    log-probabilities once (for the block maxima); banned ids and finished beams touch
    only the blocks they fall in.

    Returns `(parent, token, score)`, int32, int32, float32, each (batch, width), best
    first: the beam extended, the token added, the new summed log-probability."""
    rows, vocab = _dims(logp)  # Python ints where known: fewer ops in the loop
    batch = rows // width
    blocks = (vocab + block - 1) // block
    padded = logp
    if not isinstance(vocab, int) or blocks * block > vocab:
        padded = tf.pad(logp, [[0, 0], [0, blocks * block - vocab]], constant_values=NEG_INF)
    padded = tf.reshape(padded, [rows, blocks, block])
    maxima = tf.reduce_max(padded, -1)  # (rows, blocks)
    block_ids = tf.range(blocks)
    for j in sorted({b // block for b in banned if b >= 0}):  # their blocks' maxima again
        allowed = tf.reduce_all((j * block + tf.range(block))[:, None] != banned, -1)
        last = min(j, blocks - 1) if isinstance(blocks, int) else tf.minimum(j, blocks - 1)
        values = tf.where(allowed, padded[:, last], NEG_INF)
        maxima = tf.where(block_ids == j, tf.reduce_max(values, -1)[:, None], maxima)
    flat_finished = tf.reshape(finished, [-1])
    if stops:  # a finished beam: 0 in its last token's block, -inf elsewhere
        own = tf.where(block_ids == (last_ids // block)[:, None], 0.0, NEG_INF)
        maxima = tf.where(flat_finished[:, None], own, maxima)
    ranked = tf.reshape(scores, [-1, 1]) + maxima
    if divisor is not None:
        ranked = ranked / tf.reshape(divisor, [-1, 1])

    _, chosen = tf.math.top_k(tf.reshape(ranked, [batch, width * blocks]), width)
    chosen = tf.sort(chosen, -1)  # in index order, so that top_k's ties stay exact
    beam, part = chosen // blocks, chosen % blocks  # (batch, width) each
    row = beam + tf.range(batch)[:, None] * width
    values = tf.gather(tf.reshape(padded, [rows * blocks, block]), row * blocks + part)
    cols = part[:, :, None] * block + tf.range(block)  # (batch, width, block) token ids
    if banned:
        values = tf.where(tf.reduce_all(cols[..., None] != banned, -1), values, NEG_INF)
    if stops:
        own = tf.where(cols == tf.gather(last_ids, row)[:, :, None], 0.0, NEG_INF)
        values = tf.where(tf.gather(flat_finished, row)[:, :, None], own, values)
    raw = tf.gather(scores, beam, batch_dims=1)[:, :, None] + values
    ranked = raw
    if divisor is not None:
        ranked = raw / tf.gather(divisor, beam, batch_dims=1)[:, :, None]
    _, best = tf.math.top_k(tf.reshape(ranked, [batch, width * block]), width)

    def pick(t):
        return tf.gather(tf.reshape(t, [batch, width * block]), best, batch_dims=1)

    return tf.gather(beam, best // block, batch_dims=1), pick(cols), pick(raw)


def _check_width(width):
    try:
        if isinstance(width, bool):
            raise TypeError
        width = operator.index(width)
    except TypeError:
        raise ValueError(f"width must be a Python int >= 1, got {width!r}.") from None
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}.")
    return width


def _checked_length(length):
    """`length` as an int32 tensor, >= 1: a ValueError when known now, else an assert."""
    known = tf.get_static_value(length)
    if known is not None:
        if np.ndim(known) != 0 or int(known) != known or known < 1:
            raise ValueError(f"length must be an integer >= 1, got {known}.")
        return tf.constant(int(known), tf.int32)
    length = tf.convert_to_tensor(length, tf.int32)
    check = tf.debugging.assert_greater_equal(length, 1, message="length must be >= 1")
    with tf.control_dependencies([check]):
        return tf.identity(length)


def _dims(tensor):
    """The sizes of a tensor's dimensions: Python ints where known when traced, else
    scalar tensors."""
    dynamic = tf.shape(tensor)
    return [size if size is not None else dynamic[i]
            for i, size in enumerate(tensor.shape.as_list())]


def _check_vocab(static_vocab, vocab, width, banned):
    """width <= the number of ids that may be emitted: a ValueError when the vocabulary
    size is static (traced), else an assert op."""
    if static_vocab is not None:
        allowed = static_vocab - len([i for i in banned if 0 <= i < static_vocab])
        if width > allowed:
            raise ValueError(f"width must be at most the vocabulary size minus the banned "
                             f"ids ({static_vocab} - {static_vocab - allowed} = {allowed}), "
                             f"got {width}.")
        return []
    outside = tf.reduce_sum(tf.cast(tf.logical_or(tf.constant(banned, tf.int32) < 0,
                                                  tf.constant(banned, tf.int32) >= vocab),
                                    tf.int32)) if banned else 0
    allowed = vocab - len(banned) + outside
    return [tf.debugging.assert_less_equal(
        width, allowed, message="width must be at most the vocabulary size minus the "
                                "banned ids")]
