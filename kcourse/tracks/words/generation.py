"""Text from the next-word model: prompts tokenized in the graph, the model stepped over
a sliding window of its last `context` words, decoded by beam search (`kcourse.samplers`)
inside one `tf.function`, exported as the SavedModel signature `generate_beam`.

The generator predicts a word from the 6 words before it, so its "state" is those 6
words: `WindowStep` keeps them as the one state tensor that `beam_search` carries and
reorders per beam, and every step appends the new word and drops the oldest. This is
exactly the network's training input (no recurrent state carried past 6 words), and the
prompt is never overwritten: the course's solution replaced the prompt by its first
prediction, so its samples loop ("in his head in his head"); here the text is the
prompt's words followed by the generated ones.
"""

import numpy as np
import tensorflow as tf

from kcourse.data.books import UNK_ID, tokenize
from kcourse.errors import SettingError
from kcourse.samplers import beam_search

MAX_WIDTH = 10     # the most beams `generate_beam` keeps
MAX_LENGTH = 200   # the most words one call generates

# kcourse.data.books' tokenizer as graph ops: the same literal replacements, in order
_GRAPH_REPLACEMENTS = (("'", " '  "), ('"', ""), (r"\.", " . "), ("<br />", " "),
                       (",", " , "), (r"\(", " ( "), (r"\)", " ) "), ("!", " ! "),
                       (r"\?", " ? "), (";", " "), (":", " "))


def tokenize_graph(text):
    """`kcourse.data.books.tokenize` of a scalar string, as graph ops: a 1-D string
    tensor of tokens. Lower-casing is `tf.strings.lower(encoding="utf-8")` (Python's
    `str.lower` on ASCII; a few non-ASCII letters may differ)."""
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    text = tf.strings.lower(text, encoding="utf-8")
    for pattern, replacement in _GRAPH_REPLACEMENTS:
        text = tf.strings.regex_replace(text, pattern, replacement)
    return tf.strings.split(tf.strings.strip(text))


class WindowStep:
    """A window model `net(contexts (rows, context)) -> logits (rows, V)` in the
    interface of `kcourse.samplers`: `logits, states = step(ids, states)` with `states =
    [window (rows, context)]`, the last `context` words; `ids (rows, t)` are appended to
    the window and the logits are those of the word after them, `(rows, 1, V)`."""

    def __init__(self, net, context):
        self.net = net
        self.context = int(context)

    def __call__(self, ids, states, training=False):
        window = tf.concat([states[0], tf.cast(ids, tf.int32)], axis=1)[:, -self.context:]
        logits = self.net(window, training=training)
        return logits[:, None, :], [window]


def prompt_window(ids, context):
    """`(first_id, window)` of a prompt's ids (int32 1-D tensor, at least one): the last
    id, and the `context` ids before it, `<unk>` (0) filling the left of a short
    prompt."""
    before = ids[:-1][-context:]
    pad = tf.fill([context - tf.shape(before)[0]], tf.constant(UNK_ID, tf.int32))
    return ids[-1:], tf.reshape(tf.concat([pad, before], 0), [1, context])


class BeamGenerator(tf.Module):
    """Beam search over a next-word window model, one graph for kcourse and servers.

    `generate_beam(prompt, width, length)`: the prompt (a scalar string) tokenized as
    the course's text, its words looked up (unknown words: `<unk>`); the `width` best
    continuations of `length` words (beam search, `<unk>` never emitted, scores the
    summed log-probabilities, best first). Returns `texts` string `(width,)`: the
    prompt's tokens then the continuation, space-separated; `continuations` string
    `(width,)`; `scores` float32 `(width,)`; `ids` int32 `(width, length)`.
    """

    def __init__(self, net, words, context, lookup, name="beam_generator"):
        super().__init__(name=name)
        self.net = net
        self.lookup = lookup
        self.words = tf.constant(list(words))
        self.context = int(context)
        self.step = WindowStep(net, context)

    def _beams(self, width, first, window, length):
        ids, scores, _ = beam_search(self.step, first, [window], length, width,
                                     banned=[UNK_ID])
        pad = MAX_WIDTH - width
        return (tf.pad(ids[0], [[0, pad], [0, 0]]),
                tf.pad(scores[0], [[0, pad]], constant_values=-np.inf))

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="prompt"),
                                  tf.TensorSpec([], tf.int32, name="width"),
                                  tf.TensorSpec([], tf.int32, name="length")])
    def generate_beam(self, prompt, width, length):
        tokens = tokenize_graph(prompt)
        checks = [
            tf.debugging.assert_positive(tf.size(tokens), message="the prompt has no words"),
            tf.debugging.assert_greater_equal(width, 1, message="width must be >= 1"),
            tf.debugging.assert_less_equal(width, MAX_WIDTH,
                                           message=f"width must be <= {MAX_WIDTH}"),
            tf.debugging.assert_greater_equal(length, 1, message="length must be >= 1"),
            tf.debugging.assert_less_equal(length, MAX_LENGTH,
                                           message=f"length must be <= {MAX_LENGTH}")]
        with tf.control_dependencies(checks):
            ids = self.lookup(tokens)
        first, window = prompt_window(ids, self.context)
        branches = [lambda w=w: self._beams(w, first, window, length)
                    for w in range(1, MAX_WIDTH + 1)]
        padded_ids, padded_scores = tf.switch_case(width - 1, branches)
        ids, scores = padded_ids[:width], padded_scores[:width]
        continuations = tf.strings.reduce_join(tf.gather(self.words, ids), axis=1,
                                               separator=" ")
        texts = tf.strings.reduce_join(tokens, separator=" ") + " " + continuations
        return {"texts": texts, "continuations": continuations, "scores": scores,
                "ids": ids}


def check_request(prompt, width, length):
    """One clear error for a bad request (before TensorFlow sees it)."""
    if not tokenize(str(prompt)):
        raise SettingError("the prompt has no words: give a few words to continue, e.g. "
                           "--prompt \"i am a\"")
    if not 1 <= int(width) <= MAX_WIDTH:
        raise SettingError(f"the beam width must be in 1..{MAX_WIDTH}, got {width}")
    if not 1 <= int(length) <= MAX_LENGTH:
        raise SettingError(f"the length must be in 1..{MAX_LENGTH} words, got {length}")


def generate_beam(generator, prompt, width=5, length=20):
    """`generator.generate_beam` of one prompt, as Python: a list of `(text, score)`,
    best first."""
    check_request(prompt, width, length)
    out = generator.generate_beam(tf.constant(str(prompt)), tf.constant(int(width)),
                                  tf.constant(int(length)))
    return [(t.decode("utf-8"), float(s)) for t, s in
            zip(out["texts"].numpy(), out["scores"].numpy())]
