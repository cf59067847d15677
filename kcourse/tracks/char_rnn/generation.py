"""Text synthesis from a character model, all in the graph: temperature and nucleus
(top-p) sampling (`kcourse.samplers`), never the out-of-vocabulary id.

Every draw is a stateless random op seeded by `(seed, position)`, so the same seed
gives the same text, in Python and in an exported graph alike.
"""

import tensorflow as tf

from kcourse.data.text import OOV
from kcourse.samplers import sample_ids, sample_next  # noqa: F401  (sample_next: old home)

OOV_ID = 0  # never sampled


MAX_LENGTH = 10000  # the most characters one call generates (served graphs too)


class TextGenerator(tf.Module):
    """Text in, text out, all in TensorFlow: the vocabulary lookup, the prompt run
    through the model, the sampling loop and the decoding are graph ops, so the
    same function serves from an exported SavedModel (`kcourse.export`) and gives
    the same text there for the same seed.

    A character outside the vocabulary (or a byte that is not UTF-8) maps to the
    out-of-vocabulary id 0; an empty prompt starts from "\\n". `length` must be in
    [1, `max_length`], `temperature` a finite number >= 0 and `top_p` in (0, 1], else
    `tf.errors.InvalidArgumentError` says which. One prompt per call (a scalar string).

    Args:
        model: a `CharModel` (or any model with `zero_states` and
            `logits, states = model(ids, states)`).
        chars: the vocabulary's characters (ids 1, 2, ...; id 0 is out of vocabulary).
        max_length: the longest text one call may ask for.
    """

    def __init__(self, model, chars, max_length=MAX_LENGTH):
        super().__init__(name="text_generator")
        self.model = model
        self.max_length = int(max_length)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(chars)), tf.range(1, len(chars) + 1, dtype=tf.int64)),
            default_value=0)
        self.chars = tf.constant([OOV] + list(chars))

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="prompt"),
                                  tf.TensorSpec([], tf.int32, name="length"),
                                  tf.TensorSpec([], tf.float32, name="temperature"),
                                  tf.TensorSpec([], tf.int64, name="seed"),
                                  tf.TensorSpec([], tf.float32, name="top_p")])
    def __call__(self, prompt, length, temperature, seed, top_p):
        valid = tf.logical_and(length >= 1, length <= self.max_length)
        message = f"length must be between 1 and {self.max_length}, got"
        checks = [tf.debugging.Assert(valid, [message, length]),
                  tf.debugging.Assert(tf.logical_and(temperature >= 0, temperature < 1e30),
                                      ["temperature must be a number >= 0 (0: greedy), got",
                                       temperature]),
                  tf.debugging.Assert(tf.logical_and(top_p > 0, top_p <= 1),
                                      ["top_p must be in (0, 1], got", top_p])]
        with tf.control_dependencies(checks):
            length = tf.identity(length)  # checked before anything uses it
        prompt = tf.where(tf.strings.length(prompt) > 0, prompt, "\n")
        pieces = tf.strings.unicode_split(prompt, "UTF-8", errors="replace")
        ids = tf.cast(self.table.lookup(pieces), tf.int32)
        model = self.model

        def feed(i, states):  # the prompt but its last character, one at a time
            _, states = model(ids[i][None, None], states, training=False)
            return i + 1, states

        _, states = tf.while_loop(lambda i, _: i < tf.size(ids) - 1, feed,
                                  (tf.constant(0), model.zero_states(1)))
        out = sample_ids(model, ids[-1][None], states, length, temperature, top_p, seed,
                         banned=[OOV_ID])
        return tf.strings.reduce_join(tf.gather(self.chars, out[0]))


def generate(model, vocab, prompt="\n", length=200, temperature=1.0, top_p=1.0, seed=0):
    """Continue `prompt` by `length` sampled characters (returned without the prompt).

    Runs a `TextGenerator` kept on the model (one trace per model): an exported
    model's `generate` signature gives the same text for the same arguments.
    """
    if not 1 <= length <= MAX_LENGTH:
        raise ValueError(f"length must be between 1 and {MAX_LENGTH}, got {length}.")
    generator = kept(model, ("text", tuple(vocab.chars)),
                     lambda: TextGenerator(model, vocab.chars))
    text = generator(tf.constant(prompt), tf.constant(length, tf.int32),
                     tf.constant(temperature, tf.float32), tf.constant(seed, tf.int64),
                     tf.constant(top_p, tf.float32))
    return text.numpy().decode("utf-8")


def kept(model, key, make):
    """`make()`, made once per model and key and kept on the model (so that repeated
    calls, e.g. an evaluation every 10,000 updates, reuse one trace)."""
    cache = model.__dict__.setdefault("_kcourse_functions", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def compiled(model, name, fn):
    """`tf.function(fn)`, made once per model and kept on it."""
    return kept(model, name, lambda: tf.function(fn, reduce_retracing=True))


def compiled_sampler(model):
    """`sample_ids` for `model`, compiled; length, temperature, top_p and seed are passed
    as tensors, so a new value does not trace again."""
    run = compiled(model, "sample", lambda first, states, length, temperature, top_p, seed:
                   sample_ids(model, first, states, length, temperature, top_p, seed,
                              banned=[OOV_ID]))

    def sampler(first, states, length, temperature=1.0, top_p=1.0, seed=0):
        return run(first, states, tf.constant(length, tf.int32),
                   tf.constant(temperature, tf.float32), tf.constant(top_p, tf.float32),
                   tf.constant(seed, tf.int64))

    return sampler
