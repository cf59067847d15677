"""Beam search and greedy decoding over next-token models: against exhaustive search
over hand-made Markov tables, and against the log-probabilities recomputed by
teacher-forcing the returned sequences through a random-weight LSTM."""

import itertools

import numpy as np
import pytest
import keras
import tensorflow as tf

from kcourse.samplers import beam_search, greedy_ids
from kcourse.tracks.char_rnn.model import CharModel


class TableModel:
    """A first-order Markov model: the logits of the next token are `log(table[prev])`.
    Its state is a step counter (unused by the logits, carried and reordered)."""

    def __init__(self, table):
        self.table = np.asarray(table, np.float64)
        assert np.allclose(self.table.sum(1), 1) and (self.table > 0).all()
        self.logits = tf.constant(np.log(self.table), tf.float32)

    def __call__(self, ids, states, training=False):
        return tf.gather(self.logits, ids), [s + 1 for s in states]

    def zero_states(self, batch):
        return [tf.zeros((batch, 1))]


def log_softmax(x):
    x = np.asarray(x, np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def enumerate_sequences(table, first, length, stop_ids=(), banned=()):
    """Every sequence of `length` tokens after `first` (a stop token followed only by
    itself), with its float64 log-probability under `table` and its length."""
    logp = np.log(np.asarray(table, np.float64))
    allowed = [v for v in range(len(table)) if v not in banned]
    out = []
    for seq in itertools.product(allowed, repeat=length):
        stop = next((t for t, v in enumerate(seq) if v in stop_ids), length - 1)
        if any(v != seq[stop] for v in seq[stop + 1:]):
            continue
        prev, score = first, 0.0
        for v in seq[:stop + 1]:
            score, prev = score + logp[prev, v], v
        out.append((seq, score, stop + 1))
    return out


def brute_force_top(table, first, length, k, alpha=0.0, stop_ids=(), banned=()):
    """The k best sequences by score / length**alpha, by exhaustive enumeration; and
    asserts that the table makes beam search of width k exact (the prefixes of the k
    best at every length are among the k best one token shorter), with no ties."""
    best = [((), 0.0, 0)]
    for t in range(1, length + 1):
        ranked = sorted(enumerate_sequences(table, first, t, stop_ids, banned),
                        key=lambda s: -s[1] / s[2] ** alpha)
        keys = [s[1] / s[2] ** alpha for s in ranked]
        assert len(ranked) > k and keys[k - 1] - keys[k] > 1e-4, "a tie at the cut"
        shorter = {s[0] for s in best}
        assert all(s[0][:-1] in shorter for s in ranked[:k]), "beam search is not exact here"
        best = ranked[:k]
    return best


def lstm(vocab=5, units=8):
    keras.utils.set_random_seed(0)  # CharModel's seed covers only the vanilla RNN's init
    model = CharModel(vocab_size=vocab, cell="lstm", units=units, seed=0)
    model.build()
    head = model.head.kernel
    head.assign(head * 4.0)  # sharper distributions than at initialisation
    return model


def random_states(model, batch, seed):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.normal(size=s.shape), tf.float32)
            for s in model.zero_states(batch)]


def teacher_forced_logp(model, first_ids, states, ids, lengths):
    """The float64 sum of the model's log-probabilities of ids (batch, width, length)
    up to `lengths`, feeding the tokens one at a time in Python."""
    batch, width, length = ids.shape
    rows = ids.reshape(batch * width, length)
    states = [tf.repeat(s, width, axis=0) for s in states]
    prev = np.repeat(np.asarray(first_ids), width)
    total = np.zeros(batch * width)
    for t in range(length):
        logits, states = model(tf.constant(prev[:, None], tf.int32), states, training=False)
        logp = log_softmax(np.asarray(logits)[:, -1])
        total += np.where(t < lengths.reshape(-1), logp[np.arange(len(prev)), rows[:, t]], 0)
        prev = rows[:, t]
    return total.reshape(batch, width)


def numpy_of(result):
    return [np.asarray(r) for r in result]


def test_width_one_is_greedy_on_an_lstm():
    model = lstm()
    states = random_states(model, 3, seed=1)
    first = tf.constant([1, 2, 4])
    ids, scores, lengths = numpy_of(beam_search(model, first, states, 8, 1, banned=[0]))
    greedy = np.asarray(greedy_ids(model, first, states, 8, banned=[0]))
    assert ids.shape == (3, 1, 8) and scores.shape == (3, 1) and greedy.shape == (3, 8)
    assert greedy.dtype == np.int32 and ids.dtype == np.int32
    np.testing.assert_array_equal(ids[:, 0], greedy)
    assert (lengths == 8).all() and not (greedy == 0).any()


# first step: 1 (p .55) beats 2 (p .35); after 1 the next token is near uniform, after
# 2 the token 2 has p .9: greedy takes 1, the best sequence starts with 2
GREEDY_TRAP = [[0.04, 0.55, 0.35, 0.06],
               [0.18, 0.25, 0.29, 0.28],
               [0.02, 0.05, 0.90, 0.03],
               [0.10, 0.20, 0.30, 0.40]]


@pytest.mark.parametrize("width", [2, 3])
def test_beam_finds_the_best_sequence_that_greedy_misses(width):
    model = TableModel(GREEDY_TRAP)
    top = brute_force_top(GREEDY_TRAP, 0, 3, width)
    ids, scores, lengths = numpy_of(beam_search(model, [0], model.zero_states(1), 3, width))
    greedy = np.asarray(greedy_ids(model, [0], model.zero_states(1), 3))[0]
    assert tuple(greedy) != top[0][0]  # the trap works: greedy misses the best
    assert tuple(ids[0, 0]) == top[0][0]
    assert [tuple(s) for s in ids[0]] == [s[0] for s in top]
    np.testing.assert_allclose(scores[0], [s[1] for s in top], atol=1e-5)
    np.testing.assert_array_equal(lengths[0], [3] * width)
    # and the greedy path's probability is lower than the best one's
    logp, prev = 0.0, 0
    for v in greedy:
        logp, prev = logp + np.log(GREEDY_TRAP[prev][v]), v
    assert logp < scores[0, 0] - 0.1


def test_scores_are_the_model_log_probabilities_of_the_sequences():
    model = lstm()
    states = random_states(model, 3, seed=2)
    first = np.array([0, 3, 1], np.int32)
    ids, scores, lengths = numpy_of(beam_search(model, first, states, 6, 4))
    assert ids.shape == (3, 4, 6) and scores.dtype == np.float32 and lengths.dtype == np.int32
    np.testing.assert_allclose(scores, teacher_forced_logp(model, first, states, ids, lengths),
                               atol=1e-4)
    assert (np.diff(scores, axis=1) <= 0).all()  # best first
    for b in range(3):  # the beams of a prompt are distinct
        assert len({tuple(s) for s in ids[b]}) == 4


def test_a_batch_of_prompts_equals_one_prompt_at_a_time():
    model = lstm()
    rng = np.random.default_rng(3)
    prompts = [rng.integers(1, 5, n).astype(np.int32) for n in (1, 3, 5)]
    firsts, states = [], []
    for prompt in prompts:
        state = model.zero_states(1)
        if len(prompt) > 1:
            _, state = model(tf.constant(prompt[None, :-1]), state, training=False)
        firsts.append(prompt[-1])
        states.append(state)
    batched = [tf.concat(s, axis=0) for s in zip(*states)]
    settings = dict(length=5, width=3, alpha=0.5, stop_ids=[2], banned=[0])
    ids, scores, lengths = numpy_of(beam_search(model, np.array(firsts), batched, **settings))
    for b, (first, state) in enumerate(zip(firsts, states)):
        one = numpy_of(beam_search(model, [first], state, **settings))
        np.testing.assert_array_equal(ids[b], one[0][0])
        np.testing.assert_allclose(scores[b], one[1][0], atol=1e-5)
        np.testing.assert_array_equal(lengths[b], one[2][0])


def test_banned_and_stop_ids_on_an_lstm():
    model = lstm()
    states = random_states(model, 3, seed=4)
    first = np.array([1, 2, 3], np.int32)
    stop, length = 2, 7
    bias = model.head.bias
    bias.assign(bias + np.eye(5, dtype=np.float32)[stop] * 2.0)  # some beams stop early
    for alpha in (0.0, 0.7):
        ids, scores, lengths = numpy_of(beam_search(model, first, states, length, 3,
                                                    alpha=alpha, stop_ids=[stop],
                                                    banned=[0, 4]))
        assert not np.isin(ids, [0, 4]).any()
        assert (lengths < length).any() and (lengths >= 1).all()  # some beams stopped
        for seq, n in zip(ids.reshape(-1, length), lengths.reshape(-1)):
            assert stop not in seq[:n - 1]  # the first stop token ends the sequence
            assert n == length or seq[n - 1] == stop
            assert (seq[n:] == stop).all()  # then the stop token, as padding
        # the score stopped changing at the stop token
        np.testing.assert_allclose(
            scores, teacher_forced_logp(model, first, states, ids, lengths), atol=1e-4)
        normalised = scores / lengths ** alpha
        assert (np.diff(normalised, axis=1) <= 1e-6).all()


# token 3 stops; from the start it has p .5 (a one-token sequence), token 1 has p .45
# and then repeats itself with p .96: the short sequence has the larger sum of
# log-probabilities, the long one the larger mean
SHORT_OR_LONG = [[0.02, 0.45, 0.03, 0.50],
                 [0.01, 0.96, 0.02, 0.01],
                 [0.10, 0.20, 0.30, 0.40],
                 [0.25, 0.25, 0.25, 0.25]]


def test_length_normalisation_against_brute_force():
    model = TableModel(SHORT_OR_LONG)
    settings = dict(stop_ids=[3], banned=[0])
    best = {}
    for alpha in (0.0, 1.0):
        top = brute_force_top(SHORT_OR_LONG, 0, 3, 2, alpha, (3,), (0,))
        ids, scores, lengths = numpy_of(beam_search(model, [0], model.zero_states(1), 3, 2,
                                                    alpha=alpha, **settings))
        assert [tuple(s) for s in ids[0]] == [s[0] for s in top]
        np.testing.assert_allclose(scores[0], [s[1] for s in top], atol=1e-5)
        np.testing.assert_array_equal(lengths[0], [s[2] for s in top])
        best[alpha] = top[0]
    assert best[0.0][2] < best[1.0][2]  # the case works: alpha=1 prefers the longer one


def test_inside_a_tf_function_with_a_symbolic_length():
    model = lstm()
    states = random_states(model, 3, seed=5)
    first = tf.constant([4, 1, 3])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32),
                                  [tf.TensorSpec([None, 8], tf.float32)] * 2,
                                  tf.TensorSpec([], tf.int32)])
    def search(first, states, length):
        return beam_search(model, first, states, length, 3, alpha=0.5, stop_ids=[2],
                           banned=[0])

    for length in (4, 6):
        graph = numpy_of(search(first, states, tf.constant(length)))
        eager = numpy_of(beam_search(model, first, states, length, 3, alpha=0.5,
                                     stop_ids=[2], banned=[0]))
        assert graph[0].shape == (3, 3, length)
        np.testing.assert_array_equal(graph[0], eager[0])
        np.testing.assert_allclose(graph[1], eager[1], atol=1e-5)
        np.testing.assert_array_equal(graph[2], eager[2])
    assert search.experimental_get_tracing_count() == 1


def test_bad_arguments_are_clear():
    model = TableModel(GREEDY_TRAP)
    states = model.zero_states(1)
    with pytest.raises(ValueError, match="width must be >= 1"):
        beam_search(model, [0], states, 3, 0)
    with pytest.raises(ValueError, match="width must be a Python int"):
        beam_search(model, [0], states, 3, 2.5)
    with pytest.raises(ValueError, match="length must be an integer >= 1"):
        beam_search(model, [0], states, 0, 2)
    with pytest.raises(ValueError, match="length must be an integer >= 1"):
        greedy_ids(model, [0], states, 0)
    with pytest.raises(ValueError, match=r"width must be at most .*\(4 - 1 = 3\), got 4"):
        beam_search(model, [0], states, 3, 4, banned=[0])
    beam_search(model, [0], states, 3, 3, banned=[0, 7])  # an id outside does not count
    with pytest.raises(ValueError, match="alpha"):
        beam_search(model, [0], states, 3, 2, alpha=-1.0)

    # a length only known when the graph runs, and a vocabulary of unknown size
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32),
                                  tf.TensorSpec([], tf.int32)])
    def search(logits, length):
        def table_model(ids, states, training=False):
            return tf.gather(logits, ids), states
        return beam_search(table_model, [0], [tf.zeros((1, 1))], length, 3, banned=[0])[0]

    table = tf.math.log(tf.constant(GREEDY_TRAP))
    assert search(table, tf.constant(2)).shape == (1, 3, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="length must be >= 1"):
        search(table, tf.constant(0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="width must be at most"):
        search(table[:3, :3], tf.constant(2))


def reference_extend(logp, last_ids, scores, finished, divisor, width, banned):
    """The step `_extend` shortcuts, written out: every extension's score, one top-k."""
    batch, vocab = len(scores), logp.shape[1]
    logp = logp.copy()
    logp[:, [b for b in banned if 0 <= b < vocab]] = -np.inf
    own = np.where(np.arange(vocab) == last_ids[:, None], 0.0, -np.inf).astype(np.float32)
    logp = np.where(finished.reshape(-1, 1), own, logp)
    raw = scores[:, :, None] + logp.reshape(batch, width, vocab)
    ranked = raw if divisor is None else raw / divisor[:, :, None]
    best = tf.math.top_k(ranked.reshape(batch, -1), width).indices.numpy()
    return best // vocab, best % vocab, np.take_along_axis(raw.reshape(batch, -1), best, 1)


def test_extend_is_exactly_the_top_k_of_all_extensions():
    """Blocks of any size (several per beam, or one longer than the vocabulary), ties
    (rounded log-probabilities, equal maxima in several blocks, dead beams at -inf),
    banned ids in several blocks, finished beams and length normalisation: the same
    parents, tokens and scores as one `tf.math.top_k` over every extension, eagerly and
    traced with unknown shapes."""
    from kcourse.samplers.beam import _extend

    rng = np.random.default_rng(0)
    traced = {}
    checked = 0
    while checked < 120:
        batch, width = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        vocab, block = int(rng.integers(width + 3, 700)), int(rng.integers(1, 300))
        logp = np.round(rng.normal(size=(batch * width, vocab)) - 3, int(rng.integers(0, 3)))
        logp[rng.random(logp.shape) < 0.2] = -np.inf
        logp = logp.astype(np.float32)
        scores = np.round(rng.normal(size=(batch, width)) * 2, 1).astype(np.float32)
        scores[:, 1:][rng.random((batch, width - 1)) < 0.3] = -np.inf
        finished = rng.random((batch, width)) < 0.3
        finished[:, 0] = False
        last_ids = rng.integers(0, vocab, batch * width).astype(np.int32)
        banned = sorted(set(rng.integers(-2, vocab + 3, int(rng.integers(0, 4))).tolist()))
        inside = [b for b in banned if 0 <= b < vocab]
        logp[:, inside] = 1.0  # the most likely: their blocks must not crowd out others
        divisor = None if rng.random() < 0.5 else \
            rng.integers(1, 5, (batch, width)).astype(np.float32) ** np.float32(0.7)
        expected = reference_extend(logp, last_ids, scores, finished, divisor, width, banned)
        if not np.isfinite(expected[2]).all():
            continue  # fewer than `width` possible extensions: which -inf one is arbitrary
        args = [tf.constant(a) for a in (logp, last_ids, scores, finished)]
        div = None if divisor is None else tf.constant(divisor)
        got = _extend(*args, div, width, banned, True, block)
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g.numpy(), e)
        if checked % 10 == 0:  # traced, the vocabulary and batch unknown
            key = (width, tuple(banned), divisor is None, block)
            if key not in traced:
                spec = [tf.TensorSpec([None, None]), tf.TensorSpec([None], tf.int32),
                        tf.TensorSpec([None, width]), tf.TensorSpec([None, width], tf.bool)]
                if divisor is not None:
                    spec.append(tf.TensorSpec([None, width]))
                traced[key] = tf.function(
                    lambda *a, w=width, b=banned, n=block: _extend(
                        *a[:4], a[4] if len(a) > 4 else None, w, b, True, n),
                    input_signature=spec)
            got = traced[key](*args, *([] if div is None else [div]))
            for g, e in zip(got, expected):
                np.testing.assert_array_equal(g.numpy(), e)
        checked += 1
