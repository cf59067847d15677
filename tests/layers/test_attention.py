"""The hand-written self-attention and positional encoding: against Keras' own
MultiHeadAttention where the definitions agree, against a NumPy formula, gradients
against finite differences, masks, serialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.layers import MultiHeadSelfAttention, PositionalEncoding, sinusoidal_table
from kcourse.training.gradcheck import check_gradients


def _inputs(batch=3, time=5, dim=6, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, dim)).astype("float32")


@pytest.mark.parametrize("use_bias", [False, True])
def test_matches_keras_multi_head_attention(use_bias):
    x = _inputs()
    ours = MultiHeadSelfAttention(num_heads=2, key_dim=4, value_dim=3, use_bias=use_bias,
                                  seed=1)
    out, scores = ours(x, return_attention_scores=True)
    theirs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3,
                                             use_bias=use_bias)
    theirs(x, x)
    assert [w.shape for w in theirs.get_weights()] == [w.shape for w in ours.get_weights()]
    theirs.set_weights(ours.get_weights())
    expected, expected_scores = theirs(x, x, return_attention_scores=True)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)


def test_matches_numpy_formula_per_head():
    x = _inputs(batch=2, time=4, dim=5, seed=1).astype("float64")
    layer = MultiHeadSelfAttention(num_heads=3, key_dim=2, output_dim=7, seed=3,
                                   dtype="float64")
    out = keras.ops.convert_to_numpy(layer(x))
    wq, wk, wv, wo = layer.get_weights()
    heads = []
    for h in range(3):
        q, k, v = x @ wq[:, h], x @ wk[:, h], x @ wv[:, h]
        s = q @ k.transpose(0, 2, 1) / np.sqrt(2)
        a = np.exp(s - s.max(-1, keepdims=True))
        heads.append((a / a.sum(-1, keepdims=True)) @ v)
    expected = np.concatenate(heads, -1) @ wo.reshape(3 * 2, 7)
    assert out.shape == (2, 4, 7)
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_gradients_match_finite_differences():
    x = _inputs(batch=2, time=3, dim=4, seed=2).astype("float64")
    layer = MultiHeadSelfAttention(num_heads=2, key_dim=3, use_bias=True, seed=0,
                                   dtype="float64")
    layer(x)
    target = np.random.default_rng(5).normal(size=(2, 3, 4))

    def cost():
        return tf.reduce_sum((layer(tf.constant(x)) - target) ** 2)

    errors = check_gradients(cost, layer.trainable_variables)
    assert len(errors) == 8
    # the keys' bias has no effect (it adds the same q.b_k to every score of a row,
    # which the softmax cancels): its gradient is 0 up to rounding
    key_bias = [p for p in errors if p.endswith("key_bias")]
    assert max(v for p, v in errors.items() if p not in key_bias) < 1e-6, errors
    with tf.GradientTape() as tape:
        value = cost()
    grad = tape.gradient(value, layer.biases["key"])
    assert np.abs(grad.numpy()).max() < 1e-10


def test_mask_ignores_masked_positions():
    x = _inputs(batch=1, time=4, dim=6, seed=3)
    layer = MultiHeadSelfAttention(num_heads=2, key_dim=3, seed=0)
    mask = np.array([[True, True, False, False]])
    out, scores = layer(x, mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(scores.numpy()[..., 2:], 0.0, atol=1e-7)
    changed = x.copy()
    changed[:, 2:] += 10.0
    np.testing.assert_allclose(layer(changed, mask=mask).numpy()[:, :2], out.numpy()[:, :2],
                               atol=1e-5)


def test_attention_serializes_and_rejects_bad_settings(tmp_path):
    layer = MultiHeadSelfAttention(num_heads=2, key_dim=4, seed=7)
    inputs = keras.Input((5, 6))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = _inputs(batch=2, time=5, dim=6)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="num_heads must be >= 1"):
        MultiHeadSelfAttention(num_heads=0, key_dim=2)
    with pytest.raises(ValueError, match=r"\(batch, time, dim\)"):
        MultiHeadSelfAttention(num_heads=1, key_dim=2)(np.zeros((2, 3), "float32"))


def test_positional_encoding_table_and_layer(tmp_path):
    table = sinusoidal_table(6, 5)
    i, j = 4, 1  # pair j: columns 2 and 3
    assert table[i, 2] == pytest.approx(np.sin(i / 10000 ** (2 * j / 5)))
    assert table[i, 3] == pytest.approx(np.cos(i / 10000 ** (2 * j / 5)))
    np.testing.assert_allclose(table[0], [0, 1, 0, 1, 0])
    layer = PositionalEncoding(max_length=10)
    x = _inputs(batch=2, time=6, dim=5)
    np.testing.assert_allclose(layer(x), x + table[None].astype("float32"), atol=1e-6)
    restored = PositionalEncoding.from_config(layer.get_config())
    assert restored.max_length == 10
    with pytest.raises(ValueError, match="longer than max_length=10"):
        PositionalEncoding(max_length=10)(np.zeros((1, 11, 4), "float32"))
