"""Character-level models: vanilla RNN, AdaGrad, clipping, vocabulary, sampling, trainer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.data.text import OOV, Vocabulary, load_text
from kcourse.errors import DataNotFoundError
from kcourse.layers import VanillaRNN
from kcourse.optimizers import AdaGrad
from kcourse.samplers import sample_next
from kcourse.tracks.char_rnn.generation import generate
from kcourse.tracks.char_rnn.model import CharModel
from kcourse.tracks.char_rnn.train import fit_chars, loss_per_char, sequence_loss
from kcourse.training import check_gradients

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, "
        "speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n") * 20


def numpy_rnn(layer, ids, h):
    """The course's forward pass, a loop over time with one-hot vectors."""
    U, W, b, V, c = (np.asarray(v, np.float64) for v in
                     (layer.U, layer.W, layer.b, layer.V, layer.c))
    logits = np.zeros(ids.shape + (V.shape[1],))
    for t in range(ids.shape[1]):
        x = np.eye(U.shape[0])[ids[:, t]]
        h = np.tanh(h @ W + x @ U + b)
        logits[:, t] = h @ V + c
    return logits, h


@pytest.mark.parametrize("static", [True, False])
def test_vanilla_rnn_forward_matches_numpy_loop(static):
    layer = VanillaRNN(11, units=7, sigma=0.3, seed=1)
    layer.build()
    layer.b.assign(np.random.default_rng(0).normal(size=7))
    ids = np.random.default_rng(1).integers(0, 11, (3, 9)).astype(np.int32)
    h0 = np.random.default_rng(2).normal(size=(3, 7)).astype(np.float32)
    call = layer if static else tf.function(
        layer, input_signature=[tf.TensorSpec([None, None], tf.int32),
                                tf.TensorSpec([None, 7], tf.float32)])
    logits, h = call(ids, h0)
    want_logits, want_h = numpy_rnn(layer, ids, h0.astype(np.float64))
    np.testing.assert_allclose(logits, want_logits, atol=1e-5)
    np.testing.assert_allclose(h, want_h, atol=1e-5)


def test_vanilla_rnn_gradients_pass_the_float64_check():
    model = CharModel(9, "vanilla", units=5, sigma=0.3, seed=0, dtype="float64",
                      embedding_dim=0)
    model.build()
    ids = np.random.default_rng(0).integers(0, 9, (2, 8)).astype(np.int32)
    h0 = tf.constant(np.random.default_rng(1).normal(0, 0.5, (2, 5)))
    errors = check_gradients(lambda: sequence_loss(model(ids[:, :-1], [h0])[0], ids[:, 1:]),
                             model.trainable_variables, h=1e-5)
    assert [p.split("/")[-1] for p in errors] == ["U", "W", "b", "V", "c"]
    assert max(errors.values()) < 1e-7, errors


def test_gradient_check_catches_a_wrong_gradient():
    layer = VanillaRNN(9, units=5, sigma=0.3, seed=0, dtype="float64")
    layer.build()
    ids = np.random.default_rng(0).integers(0, 9, (1, 6)).astype(np.int32)

    @tf.custom_gradient
    def scale(x):  # the identity with a backward pass that is 1% off
        return x, lambda g: 1.01 * g

    errors = check_gradients(lambda: sequence_loss(scale(layer(ids[:, :-1])[0]), ids[:, 1:]),
                             layer.trainable_variables, h=1e-5)
    assert max(errors.values()) > 1e-3


@pytest.mark.parametrize("rho", [None, 0.9])
def test_adagrad_matches_keras_over_100_steps(rho):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype(np.float32)
    grads = rng.normal(size=(100, 4, 3)).astype(np.float32)
    ours, theirs = keras.Variable(start), keras.Variable(start)
    if rho is None:
        opt = AdaGrad(0.1, epsilon=1e-8)
        ref = keras.optimizers.Adagrad(0.1, initial_accumulator_value=0.0, epsilon=1e-8)
    else:
        opt = AdaGrad(0.01, epsilon=1e-8, rho=rho)
        ref = keras.optimizers.RMSprop(0.01, rho=rho, epsilon=1e-8)
    opt.build([ours])
    ref.build([theirs])
    for g in grads:
        opt.apply([tf.constant(g)], [ours])
        ref.apply([tf.constant(g)], [theirs])
    assert np.abs(np.asarray(ours) - start).max() > 0.1  # it moved
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_adagrad_follows_the_course_formula():
    var = keras.Variable(np.zeros(3, np.float32))
    opt = AdaGrad(0.1, epsilon=1e-8)
    opt.build([var])
    g1, g2 = np.array([1.0, -2.0, 0.5]), np.array([3.0, 1.0, -1.0])
    opt.apply([tf.constant(g1, tf.float32)], [var])
    opt.apply([tf.constant(g2, tf.float32)], [var])
    m1, m2 = g1 ** 2, g1 ** 2 + g2 ** 2
    want = -0.1 * g1 / np.sqrt(m1 + 1e-8) - 0.1 * g2 / np.sqrt(m2 + 1e-8)
    np.testing.assert_allclose(var, want, rtol=1e-5)
    clone = AdaGrad.from_config(opt.get_config())
    assert clone.rho is None and clone.epsilon == 1e-8


def test_clipping_element_wise_and_by_global_norm():
    def step(opt, g):
        var = keras.Variable(np.zeros(3, np.float32))
        opt.build([var])
        opt.apply([tf.constant(g, tf.float32)], [var])
        return np.asarray(opt._accumulators[0])  # m = g_clipped^2 after one step

    g = np.array([10.0, -7.0, 1.0])
    np.testing.assert_allclose(step(AdaGrad(0.1, clipvalue=5.0), g), [25.0, 25.0, 1.0])
    clipped = g * 5.0 / np.linalg.norm(g)
    np.testing.assert_allclose(step(AdaGrad(0.1, global_clipnorm=5.0), g), clipped ** 2,
                               rtol=1e-5)


def test_vocabulary_oov_and_round_trip(tmp_path):
    vocab = Vocabulary.from_text("hello world")
    assert len(vocab) == len(set("hello world")) + 1
    ids = vocab.encode("hello, world!")
    assert ids[5] == 0 and ids[-1] == 0 and ids.min() == 0  # "," and "!" are unknown
    assert vocab.decode(ids) == f"hello{OOV} world{OOV}"
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json").encode("hello").tolist() == \
        vocab.encode("hello").tolist()


def test_text_file_splits_and_errors(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(TEXT, encoding="utf-8")
    texts = load_text(str(path))
    assert texts.train + texts.validation + texts.test == TEXT
    assert len(texts.train) == int(len(TEXT) * 0.9)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataNotFoundError, match="at least 1,000"):
        load_text(str(tmp_path / "empty.txt"))
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9 " * 500)
    with pytest.raises(DataNotFoundError, match="UTF-8"):
        load_text(str(tmp_path / "latin1.txt"))
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_text(str(tmp_path / "missing.txt"))


def test_tiny_shakespeare_offline_without_data_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("KCOURSE_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="input.txt.*--data-dir"):
        load_text("tiny_shakespeare", data_dir=str(tmp_path / "empty"),
                  tfds_dir=str(tmp_path / "tfds"))


def test_sampling_is_seeded_greedy_at_temperature_zero():
    vocab = Vocabulary.from_text(TEXT)
    model = CharModel(len(vocab), "vanilla", 16, sigma=0.5, seed=0)
    model.build()
    a = generate(model, vocab, "First", 60, seed=3)
    assert a == generate(model, vocab, "First", 60, seed=3)
    assert a != generate(model, vocab, "First", 60, seed=4)
    generate(model, vocab, "First", 25, temperature=0.5, top_p=0.9, seed=5)
    (generator,) = [f for k, f in model.__dict__["_kcourse_functions"].items() if k[0] == "text"]
    assert generator.__call__.experimental_get_tracing_count() == 1
    greedy = generate(model, vocab, "First", 20, temperature=0.0)
    # greedy by hand: feed the argmax back
    ids = vocab.encode("First")[None]
    logits, states = model(ids)
    want = []
    for _ in range(20):
        nxt = int(np.argmax(logits[0, -1]))
        want.append(nxt)
        logits, states = model(np.array([[nxt]], np.int32), states)
    assert greedy == vocab.decode(want)
    cold = [sample_next(np.array([[1.0, 3.0, 2.0]]), 1e-3, 1.0, [0, i]).numpy()[0]
            for i in range(20)]
    assert set(cold) == {1}  # temperature -> 0 approaches argmax


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = np.log(probs)[None]
    draws = lambda p: {int(sample_next(logits, 1.0, p, [7, i]).numpy()[0])  # noqa: E731
                       for i in range(300)}
    assert draws(0.5) == {0}
    assert draws(0.6) == {0, 1}
    assert draws(0.8) == {0, 1}
    assert draws(0.81) == {0, 1, 2}
    assert draws(1.0) == {0, 1, 2, 3}
    counts = np.bincount([int(sample_next(logits, 1.0, 0.8, [1, i]).numpy()[0])
                          for i in range(2000)], minlength=4)
    np.testing.assert_allclose(counts[:2] / 2000, [0.625, 0.375], atol=0.04)  # renormalised


def _course_run(tmp_path, updates, **kwargs):
    vocab = Vocabulary.from_text(TEXT)
    keras.utils.set_random_seed(0)
    model = CharModel(len(vocab), "vanilla", 20, seed=0)
    model.build()
    result = fit_chars(model, AdaGrad(0.1, clipvalue=5.0), vocab.encode(TEXT),
                       updates=updates, seq_length=25, log_every=50, eval_every=100,
                       sample_every=100, vocab=vocab, val_ids=vocab.encode(TEXT[:600]),
                       verbose=0, **kwargs)
    return model, result


def test_course_trainer_learns_and_resume_continues_the_same_smooth_loss(tmp_path):
    model, straight = _course_run(tmp_path, 300, out_dir=str(tmp_path / "a"))
    rows = straight.rows
    assert rows[-1]["smooth_loss"] < rows[0]["smooth_loss"] - 1
    assert rows[-1]["val_loss_per_char"] < np.log(len(set(TEXT)) + 1)
    assert [s[0] for s in straight.samples] == [0, 100, 200, 300]
    _course_run(tmp_path, 200, out_dir=str(tmp_path / "b"))  # interrupted at 200
    resumed_model, resumed = _course_run(tmp_path, 300, out_dir=str(tmp_path / "b"))
    assert [r["step"] for r in resumed.rows] == [r["step"] for r in rows]
    assert resumed.samples == straight.samples
    assert resumed.rows[-1]["smooth_loss"] == rows[-1]["smooth_loss"]  # exactly
    for a, b in zip(model.get_weights(), resumed_model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_course_chunking_wraps_to_a_new_epoch_with_a_zero_state():
    vocab = Vocabulary.from_text(TEXT)
    ids = vocab.encode(TEXT[:101])  # 4 chunks of 25 (+1 target) per epoch
    model = CharModel(len(vocab), "vanilla", 8, seed=0)
    model.build()
    history = fit_chars(model, AdaGrad(0.1), ids, updates=10, seq_length=25, log_every=1,
                        verbose=0)
    assert [r["epoch"] for r in history.rows] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert int(history.streams.position) == 50


def test_loss_per_char_equals_the_mean_cross_entropy():
    vocab = Vocabulary.from_text(TEXT)
    model = CharModel(len(vocab), "gru", 16, seed=0)
    model.build()
    ids = vocab.encode(TEXT[:301])
    logits, _ = model(ids[None, :-1])
    want = float(sequence_loss(logits, ids[None, 1:])) / 300
    assert loss_per_char(model, ids, streams=1, window=70) == pytest.approx(want, rel=1e-5)
    loss_per_char(model, ids, streams=1, window=70)  # again: no new trace
    # one trace for the 70-character windows, one for the last, shorter one
    assert model.__dict__["_kcourse_functions"]["window_loss"].experimental_get_tracing_count() == 2


@pytest.mark.parametrize("cell", ["vanilla", "lstm", "gru"])
def test_char_models_round_trip_through_keras_files(tmp_path, cell):
    model = CharModel(30, cell, 12, layers=1 if cell == "vanilla" else 2, dropout=0.1,
                      seed=0)
    model.build()
    ids = np.random.default_rng(0).integers(0, 30, (2, 7)).astype(np.int32)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(ids)[0], model(ids)[0], atol=1e-6)


def test_bad_model_settings_are_clear():
    with pytest.raises(ValueError, match="Unknown cell"):
        CharModel(10, "transformer")
    with pytest.raises(ValueError, match="exactly 1 for the vanilla"):
        CharModel(10, "vanilla", layers=2)
    with pytest.raises(ValueError, match="rho"):
        AdaGrad(0.1, rho=1.5)


def test_best_model_by_validation_loss_and_time_limit(tmp_path):
    vocab = Vocabulary.from_text(TEXT)
    model = CharModel(len(vocab), "gru", 16, seed=0)
    model.build()
    result = fit_chars(model, keras.optimizers.Adam(1e-2), vocab.encode(TEXT), updates=10**6,
                       seq_length=20, batch_size=4, log_every=10, eval_every=10,
                       val_ids=vocab.encode(TEXT[:400]), select="val_loss", time_limit=3.0,
                       verbose=0)
    assert "Time limit" in result.stopped and result.seconds >= 3.0
    val = {r["step"]: r["val_loss_per_char"] for r in result.rows}
    assert result.best_step == min(val, key=val.get)
    assert result.best_score == min(val.values())
    model.set_weights(result.best_weights)
    assert loss_per_char(model, vocab.encode(TEXT[:400])) == pytest.approx(
        result.best_score, rel=1e-5)
    with pytest.raises(ValueError, match="needs val_ids"):
        fit_chars(model, AdaGrad(0.1), vocab.encode(TEXT), updates=5, select="val_loss")


def test_sampling_never_emits_the_out_of_vocabulary_id():
    vocab = Vocabulary.from_text(TEXT)
    model = CharModel(len(vocab), "vanilla", 8, seed=0)
    model.build()
    model.rnn.c.assign(np.where(np.arange(len(vocab)) == 0, 5.0, 0.0))  # id 0 most likely
    for temperature in (1.0, 0.0):
        text = generate(model, vocab, "First", 200, temperature=temperature, seed=1)
        assert OOV not in text and len(text) == 200
    logits = np.array([[9.0, 1.0, 0.5]])
    draws = {int(sample_next(logits, 1.0, 1.0, [0, i], banned=[0]).numpy()[0])
             for i in range(100)}
    assert 0 not in draws and draws == {1, 2}
    assert int(sample_next(logits, 0.0, banned=[0]).numpy()[0]) == 1  # greedy too
