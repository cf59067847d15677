"""The words track end to end on tiny generated books (a folder of .txt files, cut
90/5/5 by lines): a quick run of inf265-embeddings, its files (metrics, neighbours, the
projector's TSV files, the projection), the reported figures against the saved model,
the exported SavedModel against the Keras model; and, against NumPy, the CBoW network,
the class weights and the nearest neighbours."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from kcourse.runs import run_experiment

EXPERIMENT = "inf265-embeddings"

# a tiny grammar holding the course's 16 query words, so that every one has neighbours
DETERMINERS = ("the", "a", "one")
ADJECTIVES = ("little", "big", "black", "white", "old")
NOUNS = ("man", "child", "children", "table", "mind", "dog")
VERBS = ("saw", "liked", "had", "found")
ENDINGS = ("yes , me too .", "out of the house .", "always .", "to have it .",
           "to be there .")


def write_tiny_books(folder, books=2, lines=300, seed=0):
    """`books` .txt files of `lines` generated sentences each, lower case only (the
    vocabulary drops words with an ASCII capital)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pick = lambda words: words[rng.integers(len(words))]  # noqa: E731
    for b in range(books):
        text = []
        for _ in range(lines):
            text.append(" ".join([pick(DETERMINERS), pick(ADJECTIVES), pick(NOUNS),
                                  pick(VERBS), pick(DETERMINERS), pick(ADJECTIVES),
                                  pick(NOUNS), pick(ENDINGS)]))
        (folder / f"book{b}.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    from conftest import tfds_data_dir

    root = tmp_path_factory.mktemp("words")
    books = write_tiny_books(root / "books")
    out = str(root / "runs" / EXPERIMENT)
    with tfds_data_dir(root / "tfds"):
        # 2 rows (dims 12 and 16), 2 epochs of 256-window batches over ~4,900 windows
        metrics = run_experiment(EXPERIMENT, out=out, quick=True, verbose=0,
                                 overrides={"books": str(books), "min_freq": 5,
                                            "batch_size": 256, "eta": 0.01})
        yield {"out": out, "metrics": metrics, "books": str(books), "root": root}


def saved_row(quick_run, index=0):
    from kcourse.tracks.words import track

    row = quick_run["metrics"]["rows"][index]
    row_dir = os.path.join(quick_run["out"], "rows", row["tag"])
    model, vocab = track.load_row(row_dir)
    return row, row_dir, model, vocab


def scores(model, contexts):
    return np.asarray(model(np.asarray(contexts, np.int32), training=False), np.float64)


# ----------------------------------------------------------------------------- the run

def test_quick_run_writes_metrics_neighbours_tsv_and_projection(quick_run):
    from kcourse.tracks.words import track
    from kcourse.tracks.words.experiments import QUERY_WORDS

    out, metrics = quick_run["out"], quick_run["metrics"]
    rows = metrics["rows"]
    assert [r["embedding_dim"] for r in rows] == [12, 16]
    assert metrics["reference"].startswith("course solution (dim 12")
    timing = json.load(open(os.path.join(out, "timing.json")))
    for row in rows:
        for key in ("val_accuracy", "test_accuracy", "train_accuracy"):
            assert 0 <= row[key] <= 1, (key, row[key])
        for key in ("val_loss", "test_loss"):
            assert np.isfinite(row[key]) and row[key] > 0
        assert row["combine"] == "concat" and row["class_weights"] == "course"
        assert not row["diverged"] and row["updates"] == 2 * -(-row["train_windows"] // 256)
        assert timing[row["tag"]]["train_seconds"] > 0
        row_dir = os.path.join(out, "rows", row["tag"])
        vocab_size = row["vocabulary"]
        assert row["parameters"] == vocab_size * row["embedding_dim"] + (
            4 * row["embedding_dim"] + 1) * vocab_size
        # the projector's files: one line per vocabulary word, <unk> first
        vectors = open(os.path.join(row_dir, "vectors.tsv"), encoding="utf-8").read()
        labels = open(os.path.join(row_dir, "metadata.tsv"), encoding="utf-8").read()
        assert len(vectors.splitlines()) == len(labels.splitlines()) == vocab_size
        assert all(len(line.split("\t")) == row["embedding_dim"]
                   for line in vectors.splitlines())
        assert labels.splitlines()[0] == "<unk>"
        # the neighbours of every query word, nearest first
        table = json.load(open(os.path.join(row_dir, "neighbours.json"), encoding="utf-8"))
        assert list(table) == list(QUERY_WORDS)
        for word, found in table.items():
            assert len(found) == 10 and word not in [w for w, _ in found]
            sims = [s for _, s in found]
            assert sims == sorted(sims, reverse=True) and -1 <= sims[-1] <= sims[0] <= 1
        text = open(os.path.join(row_dir, "neighbours.txt"), encoding="utf-8").read()
        assert "\nchildren\n" in text
        for suffix in ("loss", "accuracy", "projection"):
            path = os.path.join(out, "figures", f"{row['tag']}_{suffix}.png")
            assert os.path.getsize(path) > 1000
        assert os.path.exists(os.path.join(row_dir, "result.json"))
    history = open(os.path.join(out, "history.csv")).readline()
    assert "val_accuracy" in history and "train_accuracy" in history
    # learnt: the grammar's word classes are easy, far above always the likeliest word
    splits = track.data_for(rows[0], None)
    labels = track.windows(splits, "validation")[1]
    majority = np.bincount(labels).max() / len(labels)
    assert min(r["val_accuracy"] for r in rows) > majority + 0.05, (rows, majority)
    # the TSV files are the saved model's vectors, the neighbours theirs
    row, row_dir, model, vocab = saved_row(quick_run)
    vectors = np.loadtxt(os.path.join(row_dir, "vectors.tsv"), delimiter="\t")
    np.testing.assert_allclose(vectors, track.word_vectors(model), rtol=1e-6, atol=1e-6)
    table = json.load(open(os.path.join(row_dir, "neighbours.json"), encoding="utf-8"))
    assert table == json.loads(json.dumps(track.neighbour_table(track.word_vectors(model),
                                                                vocab)))


def test_reported_figures_are_those_of_the_saved_model(quick_run):
    """The row's validation and test accuracy and weighted loss are the saved (best)
    model's, as NumPy computes them from its scores."""
    from kcourse.tracks.words import track

    row, row_dir, model, vocab = saved_row(quick_run)
    splits = track.data_for(row, None)
    assert splits.vocab == vocab
    weights = track.class_weights("course", splits.ids("train"),
                                  track.windows(splits, "train", row["limit"])[1], len(vocab))
    for split, prefix in (("validation", "val_"), ("test", "test_")):
        contexts, labels = track.windows(splits, split, row["limit"])
        s = scores(model, contexts)
        assert np.isclose((s.argmax(1) == labels).mean(), row[prefix + "accuracy"])
        s = s - s.max(1, keepdims=True)
        nll = np.log(np.exp(s).sum(1)) - s[np.arange(len(labels)), labels]
        assert np.isclose((weights[labels] * nll).mean(), row[prefix + "loss"], rtol=1e-4)


def test_export_serves_words_as_the_model_predicts(quick_run, tmp_path):
    import tensorflow as tf

    from kcourse.errors import SettingError
    from kcourse.serving import export, predict

    out = quick_run["out"]
    path = export(out, str(tmp_path / "export"))
    best = max(quick_run["metrics"]["rows"], key=lambda r: r["val_accuracy"])
    row, row_dir, model, vocab = saved_row(quick_run, quick_run["metrics"]["rows"].index(best))
    given = [["the", "big", "saw", "a"], ["The", " OLD ", "zzz", "children"],
             ["yes", ",", "too", "."]]
    ids = np.array([[vocab[w.strip().lower()] for w in c] for c in given])
    assert ids[1, 2] == 0  # unknown -> <unk>
    s = scores(model, ids)
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loaded = tf.saved_model.load(path)
    served = {k: v.numpy() for k, v in
              loaded.signatures["serving_default"](contexts=tf.constant(given)).items()}
    np.testing.assert_array_equal(served["context_ids"], ids)
    assert served["words"].shape == served["word_probabilities"].shape == (3, 5)
    np.testing.assert_allclose(served["probabilities"], p, atol=1e-5)
    top = np.argsort(-p, axis=1, kind="stable")[:, :5]
    np.testing.assert_allclose(served["word_probabilities"],
                               np.take_along_axis(p, top, 1), atol=1e-5)
    assert [[w.decode() for w in r] for r in served["words"]] == [
        [vocab.words[i] for i in r] for r in served["word_ids"]]
    np.testing.assert_array_equal(served["word_ids"], top)
    by_ids = loaded.signatures["ids"](contexts=tf.constant(ids, tf.int32))
    np.testing.assert_allclose(by_ids["probabilities"].numpy(), served["probabilities"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="string tensor \\(batch, 4\\)"):
        loaded.signatures["serving_default"](contexts=tf.constant([["a", "b", "c"]]))
    # kcourse predict: the same graph, its answers the likeliest words
    found = predict(out, ["the big _ saw a", "yes , too ."], top=3)
    with pytest.raises(SettingError, match=r"refused the inputs: contexts must be a string "
                                          r"tensor \(batch, 4\).*\(got shape 1 x 3\)"):
        predict(out, ["the big _ saw"])
    assert [w for w, _ in found[0][1]] == [vocab.words[i] for i in top[0, :3]]
    assert np.isclose(found[1][1][0][1], p[2, top[2, 0]], atol=1e-5)


def test_predict_inputs_take_the_words_around_the_missing_one():
    from kcourse.errors import SettingError
    from kcourse.tracks.words import track

    batch = track.predict_inputs(["the old _ was here", "a b c d"])
    assert batch.shape == (2, 4)
    assert [w.decode() for w in batch.numpy()[0]] == ["the", "old", "was", "here"]
    assert track.predict_inputs(["a b c d e f _"]).shape == (1, 6)  # the generator's
    for bad, message in (("a _ b _ c", "at most one _"), ("_", "at most one _")):
        with pytest.raises(SettingError, match=message):
            track.predict_inputs([bad])
    with pytest.raises(SettingError, match="same number of words"):
        track.predict_inputs(["a b c d", "a b c"])


# ----------------------------------------------------------------------------- the pieces

@pytest.mark.parametrize("combine", ["concat", "mean", "sum"])
def test_cbow_net_matches_numpy(combine):
    from kcourse.tracks.words.model import cbow_net, word_vectors

    vocab_size, dim = 11, 3
    model = cbow_net(vocab_size, dim, 4, combine, seed=0)
    ids = np.random.default_rng(1).integers(0, vocab_size, (5, 4)).astype(np.int32)
    out = np.asarray(model(ids, training=False))
    assert model.output_shape == (None, vocab_size) and out.shape == (5, vocab_size)
    e = word_vectors(model)
    assert e.shape == (vocab_size, dim)
    kernel, bias = (np.asarray(w) for w in model.get_layer("scores").weights)
    if combine == "concat":  # the course's: side by side, ReLU
        h = np.maximum(e[ids].reshape(5, 4 * dim), 0)
        assert kernel.shape == (4 * dim, vocab_size)
    else:
        h = e[ids].mean(1) if combine == "mean" else e[ids].sum(1)
        assert kernel.shape == (dim, vocab_size)
    np.testing.assert_allclose(out, h @ kernel + bias, rtol=1e-5, atol=1e-5)
    assert model.count_params() == vocab_size * dim + kernel.size + vocab_size
    with pytest.raises(ValueError, match="combine must be"):
        cbow_net(vocab_size, dim, 4, "max")


def test_cbow_net_with_a_hidden_layer_matches_numpy():
    from kcourse.tracks.words.model import cbow_net, word_vectors

    vocab_size, dim, hidden = 11, 3, 7
    model = cbow_net(vocab_size, dim, 4, seed=0, hidden=hidden)
    ids = np.random.default_rng(1).integers(0, vocab_size, (5, 4)).astype(np.int32)
    out = np.asarray(model(ids, training=False), np.float64)
    e = word_vectors(model).astype(np.float64)
    w1, b1 = (np.asarray(w, np.float64) for w in model.get_layer("hidden").weights)
    w2, b2 = (np.asarray(w, np.float64) for w in model.get_layer("scores").weights)
    assert w1.shape == (4 * dim, hidden) and w2.shape == (hidden, vocab_size)
    h = np.maximum(np.maximum(e[ids].reshape(5, 4 * dim), 0) @ w1 + b1, 0)
    np.testing.assert_allclose(out, h @ w2 + b2, rtol=1e-5, atol=1e-5)
    assert model.count_params() == e.size + w1.size + hidden + w2.size + vocab_size
    with pytest.raises(ValueError, match="hidden must be >= 0"):
        cbow_net(vocab_size, dim, 4, hidden=-1)


def test_class_weights_formulas():
    from kcourse.tracks.words.track import class_weights

    tokens = np.array([0, 1, 1, 2, 3, 1, 2, 0, 4, 1])  # N = 10; f = 2, 4, 2, 1, 1, 0
    labels = np.array([1, 1, 2, 3, 1, 2])              # n = 6; n_k = 0, 3, 2, 1, 0, 0
    raw = 1 - np.array([2, 4, 2, 1, 1, 0]) / 10
    course = class_weights("course", tokens, labels, 6)
    np.testing.assert_allclose(course, raw / raw[labels].mean())
    inverse = class_weights("inverse", tokens, labels, 6)
    # n / (K n_k) with K = 3 target words; a word never a target: as if seen once
    np.testing.assert_allclose(inverse, [2, 6 / 9, 1, 2, 2, 2])
    for weights in (course, inverse):
        assert np.isclose(weights[labels].mean(), 1.0)
    np.testing.assert_array_equal(class_weights("none", tokens, labels, 6), np.ones(6))
    with pytest.raises(ValueError, match="course, inverse or none"):
        class_weights("balanced", tokens, labels, 6)


def test_nearest_neighbours_match_brute_force_cosine():
    from kcourse.tracks.words.track import nearest_neighbours, neighbour_table

    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(40, 5))
    vectors[7] = 0  # a zero vector: similarity 0 with every word
    queries = [0, 7, 13, 39]
    ids, sims = nearest_neighbours(vectors, queries, 6)
    assert ids.shape == sims.shape == (4, 6)
    for q, found, found_sims in zip(queries, ids, sims):
        brute = []
        for j in range(len(vectors)):
            if j == q:
                continue
            a, b = vectors[q], vectors[j]
            na, nb = np.sqrt(a @ a), np.sqrt(b @ b)
            brute.append((a @ b / (na * nb) if na and nb else 0.0, j))
        brute.sort(key=lambda t: (-t[0], t[1]))
        assert found.tolist() == [j for _, j in brute[:6]]
        np.testing.assert_allclose(found_sims, [s for s, _ in brute[:6]], atol=1e-12)
    from kcourse.data.books import WordVocabulary

    vocab = WordVocabulary([f"w{i}" for i in range(1, 40)])
    table = neighbour_table(vectors, vocab, words=("w13", "missing"), count=3)
    assert list(table) == ["w13"]
    assert [w for w, _ in table["w13"]] == [vocab.words[i] for i in
                                           nearest_neighbours(vectors, [13], 3)[0][0]]


def test_projector_tsv_and_principal_components():
    from kcourse.tracks.words.track import principal_components, projector_tsv

    vectors = np.array([[1.0, 2.0], [3.0, -4.5], [0.0, 1e-8]])
    tsv, metadata = projector_tsv(vectors, ["<unk>", "a", "b"])
    assert tsv == "1\t2\n3\t-4.5\n0\t1e-08\n" and metadata == "<unk>\na\nb\n"
    with pytest.raises(ValueError, match="tabs or line breaks"):
        projector_tsv(vectors, ["<unk>", "a\tb", "c"])
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3)) * [5.0, 1.0, 0.1]
    points, explained = principal_components(x, 2)
    assert points.shape == (200, 2) and explained[0] > explained[1] > 0
    # the projection keeps the variance along the two main axes, in order
    centred = x - x.mean(0)
    assert np.isclose(points[:, 0].var() + points[:, 1].var(),
                      centred.var(0).sum() * (explained.sum()), rtol=1e-9)


def test_list_shows_every_setting_with_its_meaning():
    from kcourse.cli import describe
    from kcourse.tracks.words import TRACK

    text = describe(EXPERIMENT)
    spec = TRACK.experiments[EXPERIMENT]
    for key in spec["defaults"]:
        line = next(l for l in text.splitlines() if l.split()[:1] == [key])
        assert TRACK.settings[key] in line
    assert "[rows: 12 | 16 | 64]" in text
    assert "--quick: limit=20000, epochs=2, rows=2" in text


def test_optimizer_rate_constant_or_one_cycle():
    from kcourse.errors import SettingError
    from kcourse.experiments import check
    from kcourse.schedules import OneCycle
    from kcourse.tracks.words.track import optimizer_for

    config = {"optimizer": "adam", "eta": 0.01}
    assert float(optimizer_for(config, 100).learning_rate) == pytest.approx(0.01)
    optimizer = optimizer_for({**config, "schedule": "one_cycle"}, 100)
    schedule = optimizer._learning_rate
    assert isinstance(schedule, OneCycle) and schedule.total == 100
    rates = [float(schedule(step)) for step in (0, 25, 100)]
    np.testing.assert_allclose(rates, [0.001, 0.01, 0.0], atol=1e-9)
    sgd = optimizer_for({**config, "optimizer": "sgd", "schedule": "one_cycle"}, 40)
    assert isinstance(sgd._learning_rate, OneCycle) and sgd._learning_rate.total == 40
    with pytest.raises(SettingError, match="schedule=cosine must be constant or one_cycle"):
        check("inf265-embeddings", "schedule", "cosine")


def test_best_experiment_has_its_hidden_layer_and_takes_one_cycle(tmp_path):
    """inf265-embeddings-best: a hidden layer of `hidden` units in the saved model; with
    --set schedule=one_cycle the rate of the recorded updates rises to the peak and
    falls to near 0 at the end."""
    import csv

    from conftest import tfds_data_dir
    from kcourse.experiments import get

    defaults = get("inf265-embeddings-best")["defaults"]
    peak = defaults["eta"]
    books = write_tiny_books(tmp_path / "books", lines=150)
    out = str(tmp_path / "run")
    with tfds_data_dir(tmp_path / "tfds"):
        metrics = run_experiment("inf265-embeddings-best", out=out, quick=True, verbose=0,
                                 overrides={"books": str(books), "min_freq": 5,
                                            "batch_size": 128, "epochs": 3,
                                            "schedule": "one_cycle"})
    [row] = metrics["rows"]
    assert row["schedule"] == "one_cycle" and row["embedding_dim"] == 12
    from kcourse.tracks.words import track

    model, _ = track.load_row(os.path.join(out, "rows", row["tag"]))
    assert model.get_layer("hidden").units == defaults["hidden"] > 0
    assert 0 < row["test_accuracy"] <= 1 and row["updates"] > 0
    with open(os.path.join(out, "history.csv")) as f:
        rates = [float(r["learning_rate"]) for r in csv.DictReader(f) if r["learning_rate"]]
    assert max(rates) <= peak * (1 + 1e-6) and max(rates) > 0.5 * peak
    assert rates[-1] < 0.05 * peak  # one cycle ends near 0
