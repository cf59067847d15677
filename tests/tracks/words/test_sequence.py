"""The words track's conjugation and generator experiments end to end on tiny generated
books: quick runs (the CBoW trained first, then the frozen-vector networks), what they
save, the served graph in a process without kcourse against kcourse's own beam search,
every returned score against the model's log-probability recomputed window by window,
width 1 against greedy decoding done in NumPy; and the graph tokenizer."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kcourse.data.books import CONJUGATIONS, tokenize
from kcourse.runs import run_experiment

HERE = Path(__file__).resolve().parents[2]

SUBJECTS = ("the man", "a child", "the children", "one dog", "i", "we", "they", "she")
PLACES = ("here", "there", "in the house", "at the table", "out", "always")
ENDINGS = (".", ", yes .", "with me .", "too .")


def write_form_books(folder, books=2, lines=300, seed=1):
    """Generated books whose sentences hold every be / have form (lower case only)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pick = lambda words: words[rng.integers(len(words))]  # noqa: E731
    for b in range(books):
        text = [" ".join([pick(SUBJECTS), pick(CONJUGATIONS), pick(PLACES), pick(ENDINGS)])
                for _ in range(lines)]
        (folder / f"book{b}.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from conftest import tfds_data_dir

    root = tmp_path_factory.mktemp("sequence")
    books = str(write_form_books(root / "books"))
    settings = {"books": books, "min_freq": 5, "batch_size": 64}
    with tfds_data_dir(root / "tfds"):
        found = {}
        for experiment in ("inf265-conjugation", "inf265-generator"):
            out = str(root / "runs" / experiment)
            found[experiment] = {"out": out, "metrics": run_experiment(
                experiment, out=out, quick=True, verbose=0, overrides=settings)}
        yield found


def test_conjugation_quick_run_trains_the_three_networks_on_frozen_vectors(runs):
    from kcourse.serving import predict
    from kcourse.tracks.words import sequence, track

    run = runs["inf265-conjugation"]
    rows = run["metrics"]["rows"]
    assert [r["model"] for r in rows] == ["mlp", "rnn", "attention"]
    # the CBoW trained first, once, its vectors those of every row
    cbow, _ = track.load_row(os.path.join(run["out"], "embedding", "dim16"))
    vectors = cbow.get_layer("embedding").embeddings.numpy()
    for row in rows:
        row_dir = os.path.join(run["out"], "rows", row["tag"])
        model, vocab = track.load_row(row_dir)
        embedding = model.get_layer("embedding")
        assert not embedding.trainable
        np.testing.assert_array_equal(embedding.embeddings.numpy(), vectors)
        assert row["trainable_parameters"] == row["parameters"] - vectors.size
        task = sequence.row_task(row_dir)
        assert task["labels"] == list(CONJUGATIONS) and (task["before"], task["after"]) \
            == (4, 4)
        assert 0 <= row["test_accuracy"] <= 1 and row["test_loss"] > 0
        for prefix in ("val_", "test_"):  # the windows split by the word before the gap
            share = row[prefix + "unk_before_share"]
            parts = [(share, row[prefix + "accuracy_unk_before"]),
                     (1 - share, row[prefix + "accuracy_known_before"])]
            assert np.isclose(sum(w * a for w, a in parts if w), row[prefix + "accuracy"])
    answers = predict(run["out"], ["i think the man _ here with me .",
                                   "oh yes , they _ in the house ,"], row=0, top=3)
    assert len(answers) == 2
    assert all(form in CONJUGATIONS for _, found in answers for form, _ in found)


def _log_probability(model, window, continuation):
    """The model's log-probability of `continuation` after `window` (its last 6 ids),
    one window at a time."""
    total, window = 0.0, list(window)
    for token in continuation:
        scores = np.asarray(model(np.array([window[-6:]], np.int32), training=False),
                            np.float64)[0]
        total += scores[token] - np.log(np.exp(scores - scores.max()).sum()) - scores.max()
        window.append(token)
    return total


def test_generator_beams_score_continue_the_prompt_and_serve_without_kcourse(runs, tmp_path):
    from kcourse.serving import export
    from kcourse.tracks.words import track
    from kcourse.tracks.words.generation import generate_beam
    from kcourse.tracks.words.sequence import load_generator

    run = runs["inf265-generator"]
    row = run["metrics"]["rows"][0]
    row_dir = os.path.join(run["out"], "rows", row["tag"])
    assert os.path.exists(os.path.join(row_dir, "samples.txt"))
    model, vocab = track.load_row(row_dir)
    generator = load_generator(row_dir)
    prompt = "The man was at the table, yes"
    tokens = tokenize(prompt)
    found = generate_beam(generator, prompt, width=3, length=4)
    assert len(found) == 3
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    ids = [vocab[w] if w in vocab else 0 for w in tokens]
    for text, score in found:
        words = text.split()
        assert words[:len(tokens)] == tokens  # the prompt is kept, then continued
        continuation = [vocab[w] for w in words[len(tokens):]]
        assert len(continuation) == 4 and 0 not in continuation
        assert score == pytest.approx(_log_probability(model, ids, continuation), abs=1e-4)
    # width 1 is greedy decoding, done here in NumPy
    window, greedy = list(ids), []
    for _ in range(4):
        s = np.array(model(np.array([window[-6:]], np.int32)))[0]
        s[0] = -np.inf
        greedy.append(int(np.argmax(s)))
        window.append(greedy[-1])
    assert generate_beam(generator, prompt, 1, 4)[0][0].split()[len(tokens):] == \
        [vocab.words[i] for i in greedy]
    # a short prompt (fewer than 6 words) and the exported graph in a process without kcourse
    calls = [{"prompt": prompt, "width": 3, "length": 4}, {"prompt": "we", "width": 2,
                                                            "length": 3}]
    path = export(run["out"], str(tmp_path / "export"))
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps({"contexts": [["the", "man", "was", "at", "the", "table"]],
                                    "beams": calls}))
    result = subprocess.run([sys.executable, str(HERE / "serve_without_kcourse.py"), "words",
                             path, str(requests), str(tmp_path / "out.json")],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads((tmp_path / "out.json").read_text())
    for call, answer in zip(calls, served["beams"]):
        mine = generate_beam(generator, call["prompt"], call["width"], call["length"])
        assert answer["texts"] == [t for t, _ in mine]
        np.testing.assert_allclose(answer["scores"], [s for _, s in mine], rtol=1e-6)
    s = np.asarray(model(np.array([[vocab[w] for w in
                                    ["the", "man", "was", "at", "the", "table"]]], np.int32)))
    assert served["words"][0][0] == vocab.words[int(np.argmax(s[0]))]


def test_generate_command_prints_the_completions(runs, capsys):
    from kcourse.cli import main

    run = runs["inf265-generator"]
    assert main(["generate", run["out"], "--prompt", "she had", "--beam", "2",
                 "--length", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["log-probability", "text"] and len(lines) == 3
    assert all(line.split()[1:3] == ["she", "had"] and len(line.split()) == 6
               for line in lines[1:])
    assert main(["generate", run["out"], "--prompt", " ; ", "--beam", "2"]) == 2
    assert "the prompt has no words" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [
    ({"prompt": " ", "width": 2, "length": 3}, "the prompt has no words"),
    ({"prompt": "we", "width": 11, "length": 3}, "beam width must be in 1..10"),
    ({"prompt": "we", "width": 2, "length": 0}, "length must be in 1..200"),
])
def test_bad_requests_are_one_clear_error(bad, message):
    from kcourse.errors import SettingError
    from kcourse.tracks.words.generation import check_request

    with pytest.raises(SettingError, match=message):
        check_request(**bad)


def test_graph_tokenizer_matches_the_course_tokenizer():
    import tensorflow as tf

    from kcourse.tracks.words.generation import tokenize_graph

    for text in ["It's \"Mr. Holmes\", (he said) -- yes! No? a;b:c", "  Twenty  Thousand.",
                 "don't <br /> stop", "x"]:
        assert [t.decode() for t in tokenize_graph(tf.constant(text)).numpy()] == \
            tokenize(text)


def test_embedding_row_finds_the_row_of_the_dim(tmp_path):
    from kcourse.errors import SettingError
    from kcourse.tracks.words.sequence import embedding_row

    for tag, dim in (("00_embedding_dim12", 12), ("01_embedding_dim16", 16)):
        row = tmp_path / "rows" / tag
        row.mkdir(parents=True)
        (row / "model.keras").write_bytes(b"")
        (row / "embedding.json").write_text(json.dumps({"embedding_dim": dim}))
    assert embedding_row(str(tmp_path), 16).endswith("01_embedding_dim16")
    assert embedding_row(str(tmp_path / "rows" / "00_embedding_dim12"), 64).endswith("dim12")
    with pytest.raises(SettingError, match="no row of that inf265-embeddings run has word "
                                           "vectors of dim 64"):
        embedding_row(str(tmp_path), 64)


def _numpy_lstm(xs, kernel, recurrent, bias):
    """Keras' LSTM (gates i, f, c, o; sigmoid and tanh) over xs (batch, time, d): every
    step's output (batch, time, units)."""
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    units = recurrent.shape[0]
    h = c = np.zeros((len(xs), units))
    outputs = []
    for t in range(xs.shape[1]):
        z = xs[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, 1)


def test_stacked_rnn_reads_each_side_in_the_light_of_the_other(tmp_path):
    """The RNN with layers=2 against the same network in NumPy: a bidirectional LSTM over
    the 8 words (the backward one from the last word, its outputs put back in order),
    then one LSTM over its outputs at the 4 left positions, another backwards over the
    4 right ones, their final states [left, right], the scores; frozen vectors, its
    parameter count, a save / load round trip; and layers=1 is the course's RNN."""
    import keras

    from kcourse.tracks.words.model import conjugation_net

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 6)).astype(np.float32)
    d, u = 6, 5
    model = conjugation_net("rnn", vectors, classes=12, units=u, layers=2, seed=0)
    assert not model.get_layer("embedding").trainable
    lstm = lambda inputs: 4 * u * (inputs + u + 1)  # noqa: E731
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == \
        2 * lstm(d) + 2 * lstm(2 * u) + 2 * u * 12 + 12
    for w in model.trainable_weights:  # away from the initial zeros of the biases
        w.assign(rng.normal(scale=0.5, size=w.shape))
    ids = rng.integers(0, 30, (4, 8))
    weights = lambda layer: [np.asarray(w, np.float64) for w in layer.weights]  # noqa: E731
    x = vectors[ids].astype(np.float64)
    both = model.get_layer("bilstm_0")
    x = np.concatenate([_numpy_lstm(x, *weights(both.forward_layer)),
                        _numpy_lstm(x[:, ::-1], *weights(both.backward_layer))[:, ::-1]], -1)
    left = _numpy_lstm(x[:, :4], *weights(model.get_layer("lstm_left")))[:, -1]
    right = _numpy_lstm(x[:, 4:][:, ::-1], *weights(model.get_layer("lstm_right")))[:, -1]
    kernel, bias = weights(model.get_layer("scores"))
    np.testing.assert_allclose(np.asarray(model(ids)),
                               np.concatenate([left, right], -1) @ kernel + bias, atol=1e-4)
    path = str(tmp_path / "stacked.keras")
    model.save(path)
    np.testing.assert_array_equal(np.asarray(keras.saving.load_model(path)(ids)),
                                  np.asarray(model(ids)))
    one = conjugation_net("rnn", vectors, units=u, seed=0)
    assert [w.path for w in one.weights] == [
        w.path for w in conjugation_net("rnn", vectors, units=u, seed=0, layers=1).weights]
    assert not any("bilstm" in w.path for w in one.weights)
    with pytest.raises(ValueError, match="layers must be >= 1"):
        conjugation_net("rnn", vectors, layers=0)
