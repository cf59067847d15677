"""The surname track end to end on tiny generated files: quick runs of every row,
the files of a run, kcourse predict, the served graph in a process without kcourse,
the gradient check and a quick random search."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kcourse import cli
from kcourse.runs import run_experiment
from kcourse.serving import export, predict

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWKWARD = ["Dvořák", "Nakamura", "O'Neill", "", "123", "van der Berg",
           "Averyveryveryverylongsurname", "MÜLLER", "\u00e9"]
NOT_UTF8 = os.fsdecode(b"Ab\xffc")  # what a shell passes for bytes that are not UTF-8


@pytest.fixture(scope="module")
def surnames_env(tmp_path_factory):
    from conftest import tfds_data_dir, write_fake_surnames

    root = tmp_path_factory.mktemp("surnames")
    write_fake_surnames(root / "manual")
    with tfds_data_dir(root / "tfds"):
        yield {"manual": str(root / "manual"), "root": root}


@pytest.fixture(scope="module")
def quick_run(surnames_env):
    out = str(surnames_env["root"] / "runs" / "a3-surnames")
    metrics = run_experiment("a3-surnames", out=out, data_dir=surnames_env["manual"],
                             quick=True, overrides={"n1": 6, "n2": 5}, verbose=0)
    return out, metrics


def test_quick_run_trains_every_compensation_and_writes_its_files(quick_run, surnames_env):
    out, metrics = quick_run
    rows = metrics["rows"]
    assert [r["compensation"] for r in rows] == ["none", "balanced"]
    for row in rows:
        assert 0 <= row["val_accuracy"] <= 1 and row["updates"] == 40
        assert set(row["val_class_accuracies"]) >= {"Arabic", "Vietnamese"}
        assert np.isclose(np.mean(list(row["val_class_accuracies"].values())),
                          row["val_class_mean_accuracy"])
        row_dir = os.path.join(out, "rows", row["tag"])
        for name in ("model.keras", "encoder.json"):
            assert os.path.exists(os.path.join(row_dir, name))
        figures = os.path.join(out, "figures")
        for suffix in ("loss", "accuracy", "confusion", "class_accuracy"):
            assert os.path.exists(os.path.join(figures, f"{row['tag']}_{suffix}.png"))
        # a confusion matrix at every evaluation point (quick: every 20 updates)
        assert sorted(os.listdir(os.path.join(figures, f"{row['tag']}_confusion"))) == [
            "step-00000.png", "step-00020.png", "step-00040.png"]
    history = open(os.path.join(out, "history.csv")).readline()
    assert "val_accuracy_Arabic" in history


def test_weighted_ensemble_of_keras_convs_trains_and_answers(surnames_env, tmp_path):
    out = str(tmp_path / "w")
    metrics = run_experiment("a3-surnames", out=out, data_dir=surnames_env["manual"],
                             quick=True, overrides={"compensation": "weighted",
                                                    "conv": "keras", "n1": 4, "n2": 4,
                                                    "updates": 20, "schedule": "cosine",
                                                    "members": 2}, verbose=0)
    rows = metrics["rows"]
    assert all(r["compensation"] == "weighted" for r in rows)
    assert all(np.isfinite(r["val_loss"]) and len(r["member_val_accuracies"]) == 2
               for r in rows)
    row_dir = os.path.join(out, "rows", rows[0]["tag"])
    assert sorted(d for d in os.listdir(row_dir) if d.startswith("member")) == [
        "member-0", "member-1"]
    # the ensemble's scores are the mean of its members' scores, and it serves
    from kcourse.tracks.surnames.track import load_row

    model, encoder, _ = load_row(row_dir)
    x = encoder.encode(AWKWARD)
    members = [model.get_layer(f"member_{i}") for i in range(2)]
    np.testing.assert_allclose(model(x), (members[0](x) + members[1](x)) / 2, atol=1e-6)
    assert len(predict(out, ["Nakamura"], row=0)[0][1]) == 3


def test_predict_gives_the_top_classes_of_the_model(quick_run):
    out, metrics = quick_run
    answers = predict(out, AWKWARD, top=3)
    assert [a[0] for a in answers] == AWKWARD
    from kcourse.tracks.surnames.track import load_row

    row = max(metrics["rows"], key=lambda r: r["val_accuracy"])
    model, encoder, names = load_row(os.path.join(out, "rows", row["tag"]))
    logits = model.predict(encoder.encode(AWKWARD), verbose=0)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    for (_, classes), probabilities in zip(answers, p):
        best = np.argsort(-probabilities)[:3]
        assert [c for c, _ in classes] == [names[i] for i in best]
        np.testing.assert_allclose([q for _, q in classes], probabilities[best], atol=1e-5)


def test_predict_command_prints_one_line_per_name(quick_run, capsys):
    out, _ = quick_run
    assert cli.main(["predict", out, "Dvorak", "Nakamura", NOT_UTF8, "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["Dvorak", "Nakamura", "Ab\ufffdc"]
    assert all(len(line.split(":")[1].split()) == 4 for line in lines)  # 2 x (name, p)


def test_export_serves_raw_names_without_kcourse(quick_run, tmp_path):
    out, _ = quick_run
    path = export(out, str(tmp_path / "export"))
    names_path, result = tmp_path / "names.json", tmp_path / "served.npz"
    names_path.write_text(json.dumps(AWKWARD), encoding="utf-8")
    subprocess.run([sys.executable, os.path.join(HERE, "serve_without_kcourse.py"), "names",
                    path, str(names_path), str(result)], check=True, timeout=300,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    served = np.load(result)
    # in process: the Keras model on the names encoded by the NumPy encoder
    from kcourse.runs.layout import run_row
    from kcourse.tracks.surnames.track import load_row

    model, encoder, names = load_row(run_row(out)[1])
    logits = np.asarray(model(encoder.encode(AWKWARD), training=False), np.float64)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(served["probabilities"], p, atol=1e-5)
    np.testing.assert_array_equal(served["class_id"], p.argmax(1))
    assert list(served["class_name"]) == [names[i] for i in p.argmax(1)]


def test_gradient_check_of_the_convnet_passes(surnames_env):
    from kcourse import experiments
    from kcourse.tracks.surnames import track

    threshold, results = track.gradcheck(experiments.get("a3-surnames"),
                                         surnames_env["manual"])
    assert threshold == 1e-6 and len(results) == 2
    for _, errors in results:
        assert {"conv_1/kernel", "conv_2/kernel", "scores/kernel"} <= set(errors)
        assert max(errors.values()) < threshold


def test_quick_random_search_selects_on_inner_names_and_tests_once(surnames_env, tmp_path):
    from tuning.search import run_search, search_summary

    out = str(tmp_path / "search")
    results = run_search("a3-surnames-search", out=out, data_dir=surnames_env["manual"],
                         quick=True, verbose=0)
    assert len(results["trials"]) == 2
    assert set(results["space"]) == {"k1", "n1", "k2", "n2", "eta", "dropout",
                                     "compensation", "updates", "schedule"}
    assert 0 <= results["best_test_accuracy"] <= 1
    # the model measured at the end is the one the best score belongs to
    assert results["best_model_val_accuracy"] == results["best"]["val_accuracy"]
    assert os.path.exists(os.path.join(out, "figures", "search.png"))
    assert "<- best" in search_summary(results, out)
    # run again: the finished trials are reloaded, not trained again, same results
    again = run_search("a3-surnames-search", out=out, data_dir=surnames_env["manual"],
                       quick=True, verbose=0)
    assert again == json.loads(json.dumps(results))


def test_a_search_space_naming_no_setting_is_refused(surnames_env, tmp_path, monkeypatch):
    from kcourse import experiments
    from kcourse.errors import SettingError
    from tuning.search import run_search

    spec = experiments.get("a3-surnames-search")
    space = {**spec["quick"]["space"], "k3": [1, 2]}
    monkeypatch.setitem(spec["quick"], "space", space)
    monkeypatch.setattr(experiments, "get", lambda name: spec)
    with pytest.raises(SettingError, match="names 'k3', which is not one of its settings"):
        run_search("a3-surnames-search", out=str(tmp_path / "s"),
                   data_dir=surnames_env["manual"], quick=True, verbose=0)
    assert not (tmp_path / "s").exists()  # refused before any trial: nothing left behind


def test_bad_settings_are_refused_before_training(surnames_env, capsys):
    assert cli.main(["run", "a3-surnames", "--quick", "--set", "k1=15", "--set", "k2=7",
                     "--data-dir", surnames_env["manual"]]) == 2
    assert "leave no position" in capsys.readouterr().err


def test_same_command_twice_gives_the_same_metrics(quick_run, surnames_env, tmp_path):
    out, _ = quick_run
    again = str(tmp_path / "again")
    run_experiment("a3-surnames", out=again, data_dir=surnames_env["manual"], quick=True,
                   overrides={"n1": 6, "n2": 5}, verbose=0)
    with open(os.path.join(out, "metrics.json"), "rb") as a, \
            open(os.path.join(again, "metrics.json"), "rb") as b:
        assert a.read() == b.read()
