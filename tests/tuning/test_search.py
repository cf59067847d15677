import json

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from kcourse import experiments
from kcourse.data import Cifar10Splits, batched, in_memory
from kcourse.losses import SoftmaxCrossEntropy
from kcourse.tracks.cifar_mlp import track as cifar_track
from kcourse.tracks.cifar_mlp.experiments import MLP_DEFAULTS
from kcourse.training import evaluate
from tuning import search
from tuning.hypermodel import CourseHyperModel


def mock_splits(n=200, seed=0):
    """Small generated CIFAR-shaped splits whose label is readable from the input."""
    rng = np.random.default_rng(seed)

    def split(m):
        x = rng.normal(size=(m, 3072)).astype("float32")
        y = np.eye(10, dtype="float32")[(x[:, :10]).argmax(1)]
        return in_memory(tf.data.Dataset.from_tensor_slices((x, y)))

    return Cifar10Splits(preset="mock", train=split(n), val=split(100), test=split(100),
                         mean=np.zeros(3072, "float32"), std=np.ones(3072, "float32"))


def mock_config(**changes):
    # 2 batches per epoch, one cycle of 2 updates: every trial is one epoch
    return {**MLP_DEFAULTS, "hidden": [8], "n_s": 1, "cycles": 1, **changes}


def test_hypermodel_two_trial_search_and_best_model(tmp_path):
    splits = mock_splits()
    tuner = keras_tuner.RandomSearch(
        CourseHyperModel(mock_config(), log_range=(-4, -1), seed=0),
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=2,
        directory=tmp_path, project_name="mock", seed=0)
    tuner.search(data=splits, verbose=0)
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    lambdas = [10 ** t.hyperparameters.values["log_lambda"] for t in trials]
    assert all(1e-4 <= lam <= 1e-1 for lam in lambdas) and lambdas[0] != lambdas[1]
    best = tuner.get_best_models(1)[0]  # needs the callbacks driven by the trainer
    assert len(best.losses) == 2  # lambda * ||W||^2 of both weight matrices
    result = evaluate(best, SoftmaxCrossEntropy(), batched(splits.val, 100))
    assert result["accuracy"] == pytest.approx(trials[0].score)


def test_hypermodel_needs_one_search_space():
    with pytest.raises(ValueError, match="exactly one"):
        CourseHyperModel(mock_config())
    with pytest.raises(ValueError, match="exactly one"):
        CourseHyperModel(mock_config(), log_values=[-3], log_range=(-4, -1))
    with pytest.raises(ValueError, match="n_s_epochs must be"):
        CourseHyperModel(mock_config(), log_values=[-3], n_s_epochs=[0, 2])


def test_fine_range_spans_the_best_coarse_values():
    coarse = [{"log_lambda": v, "val_accuracy": a}
              for v, a in zip([-5, -4, -3, -2, -1], [.40, .45, .48, .46, .30])]
    assert search.fine_range(coarse, 3) == (-4, -2)
    assert search.fine_range(coarse, 1) == (-3.5, -2.5)  # one grid step around the best


@pytest.mark.parametrize("spec, steps", [("a2-lambda", [2, 5]), ("a3-lambda", None)])
def test_coarse_to_fine_writes_results_and_resumes(tmp_path, monkeypatch, capsys, spec,
                                                    steps):
    registry = experiments.experiments()
    assert registry[spec]["search"].get("choices", {}).get("n_s_epochs") == steps
    monkeypatch.setattr(cifar_track, "data_for", lambda config, data_dir: mock_splits())
    registry["mock-lambda"] = {**registry[spec], "defaults": mock_config(),
                               "quick": {"coarse_values": 3, "fine_trials": 2}}
    monkeypatch.setattr(experiments, "experiments", lambda: registry)
    out = tmp_path / "search"
    results = search.coarse_to_fine("mock-lambda", out=str(out), quick=True)
    trials = results["trials"]
    coarse = [t for t in trials if t["stage"] == "coarse"]
    fine = [t for t in trials if t["stage"] == "fine"]
    assert len(coarse) == 3 * len(steps or [None]) and len(fine) == 2
    # the grid once per step size
    assert sorted((t.get("n_s_epochs"), round(t["log_lambda"], 9)) for t in coarse) == [
        (step, v) for step in (steps or [None]) for v in (-5, -3, -1)]
    low, high = results["fine_range"]
    assert all(low <= t["log_lambda"] <= high for t in fine)
    if steps:  # the fine stage keeps the best coarse trial's step size
        best_coarse = max(coarse, key=lambda t: t["val_accuracy"])
        assert {t["n_s_epochs"] for t in fine} == {best_coarse["n_s_epochs"]}
    assert ("n_s_epochs" in search.search_table(results)) == bool(steps)
    assert results["best"]["val_accuracy"] == max(t["val_accuracy"] for t in trials)
    assert json.loads((out / "results.json").read_text())["best"] == results["best"]
    assert len((out / "trials.csv").read_text().splitlines()) == len(trials) + 1
    assert (out / "figures" / "lambda_search.png").stat().st_size > 0
    assert "<- best" in search.search_table(results)
    # a line per finished trial, as a distributed search's chief prints
    lines = [line for line in capsys.readouterr().out.splitlines() if "this process" in line]
    assert [line.split("]")[0] for line in lines] == (
        [f"[coarse {i}/{len(coarse)}" for i in range(1, len(coarse) + 1)]
        + ["[fine 1/2", "[fine 2/2"])
    assert all("log_lambda" in line and "-> val_accuracy 0." in line for line in lines)
    again = search.coarse_to_fine("mock-lambda", out=str(out), quick=True)  # resumes
    assert again["trials"] == trials


def test_hypermodel_step_size_in_epochs(tmp_path, monkeypatch):
    seen = []

    def recording(config, *args, **kwargs):
        seen.append(config["n_s"])
        return train_mlp(config, *args, **kwargs)

    train_mlp = cifar_track.train_mlp
    monkeypatch.setattr(cifar_track, "train_mlp", recording)
    tuner = keras_tuner.GridSearch(
        CourseHyperModel(mock_config(n_s=7), log_values=[-3], n_s_epochs=[1, 3], seed=0),
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=2,
        directory=tmp_path, project_name="steps")
    tuner.search(data=mock_splits(n=200), verbose=0)
    assert sorted(seen) == [2, 6]  # 200 images in batches of 100: 2 updates per epoch


def test_width_and_dropout_search_builds_each_trials_net(tmp_path, monkeypatch):
    """`a2-width-dropout`: a random search whose `hidden` is one number (one hidden
    layer of that width); each trial's model has that width and dropout, and the best
    trial's model is measured on the test split once."""
    registry = experiments.experiments()
    spec = registry["a2-width-dropout"]
    assert spec["search"]["space"]["hidden"] == [256, 512, 1024, 2048]
    monkeypatch.setattr(cifar_track, "data_for", lambda config, data_dir: mock_splits())
    registry["mock-width"] = {**spec, "defaults": mock_config(flip=True, translate=2),
                              "quick": {"trials": 3, "space": {
                                  "hidden": [4, 8, 16], "dropout": {"range": [0.0, 0.5]},
                                  "lambda": {"log": [1e-5, 1e-3]}}}}
    monkeypatch.setattr(experiments, "experiments", lambda: registry)
    built = []
    build = cifar_track.build_model
    monkeypatch.setattr(cifar_track, "build_model",
                        lambda config, seed, **kw: built.append(config) or build(config, seed, **kw))
    results = search.random_search("mock-width", out=str(tmp_path / "s"), quick=True,
                                   verbose=0)
    trials = results["trials"]
    assert len(trials) == 3
    for trial in trials:
        assert trial["hidden"] in (4, 8, 16) and 0 <= trial["dropout"] <= 0.5
        config = next(c for c in built if c["hidden"] == trial["hidden"]
                      and c["dropout"] == trial["dropout"])
        model = build(config, 0)
        kernels = [w for w in model.weights if len(w.shape) == 2]
        assert kernels[0].shape == (3072, trial["hidden"])
    assert results["best"]["val_accuracy"] == max(t["val_accuracy"] for t in trials)
    assert 0 <= results["best_test_accuracy"] <= 1
    from kcourse.errors import SettingError

    with pytest.raises(SettingError, match="positive sizes"):
        experiments.check("a2-width-dropout", "hidden", 0)
