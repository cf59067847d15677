"""inf265-l1l2: the two-layer net with L1, L2 and both penalties; the rows' fraction of
near-zero weights, their weight histograms, and the report's side-by-side histograms."""

import os

import numpy as np
import pytest

from kcourse import experiments
from kcourse.errors import SettingError
from kcourse.regularizers import L1, ElasticNet
from kcourse.runs import run_experiment
from kcourse.runs.layout import read_json


def test_rows_cover_none_l1_l2_and_both():
    spec = experiments.get("inf265-l1l2")
    configs = experiments.resolve("inf265-l1l2")
    kinds = {(c["lambda"] > 0, c["l1"] > 0) for c in configs}
    assert kinds == {(False, False), (False, True), (True, False), (True, True)}
    assert spec["defaults"]["data"] == "full"
    with pytest.raises(SettingError, match="l1"):
        experiments.resolve("inf265-l1l2", {"l1": -1e-4})


def test_each_row_builds_the_penalty_it_names():
    from kcourse.tracks.cifar_mlp.track import build_model

    for config in experiments.resolve("inf265-l1l2"):
        model = build_model(config, seed=0, input_dim=12)
        penalty = model.get_layer("linear_1").kernel_regularizer
        if config["lambda"] > 0 and config["l1"] > 0:
            assert isinstance(penalty, ElasticNet)
            assert (penalty.l1, penalty.l2) == (config["l1"], config["lambda"])
        elif config["l1"] > 0:
            assert isinstance(penalty, L1) and penalty.l1 == config["l1"]
        elif config["lambda"] > 0:
            assert type(penalty).__name__ == "L2"
        else:
            assert penalty is None


def test_l1_drives_weights_to_zero(real_data_dir):
    """Trained on the same 1,000 images for the same 120 updates, a strong L1 leaves
    many more weights near zero than no penalty does."""
    from kcourse.tracks.cifar_mlp.track import NEAR_ZERO, data_for, kernel_values, train_mlp

    fractions = {}
    for l1 in (0.0, 3e-3):
        config = {**experiments.resolve("inf265-l1l2", {"l1": l1, "lambda": 0.0},
                                        quick=True)[0]}
        splits = data_for(config, real_data_dir)
        model, *_ = train_mlp(config, splits, None, seed=0, verbose=0)
        weights = kernel_values(model)
        assert weights.size == 3072 * 50 + 50 * 10
        fractions[l1] = np.mean(np.abs(weights) < NEAR_ZERO)
    assert fractions[0.0] < 0.1, fractions
    assert fractions[3e-3] > 0.5, fractions


def test_quick_run_reports_near_zero_weights_and_draws_histograms(real_data_dir, tmp_path):
    from kcourse.runs.report import write_report
    from kcourse.tracks.cifar_mlp.track import NEAR_ZERO, kernel_values

    import kcourse

    out = str(tmp_path / "l1l2")
    metrics = run_experiment("inf265-l1l2", out=out, data_dir=real_data_dir, quick=True,
                             verbose=0)
    for row in metrics["rows"]:
        model = kcourse.load_model(os.path.join(out, "rows", row["tag"], "model.keras"))
        expected = np.mean(np.abs(kernel_values(model)) < NEAR_ZERO)
        assert row["near_zero_weights"] == pytest.approx(expected)
        assert os.path.isfile(os.path.join(out, "figures", f"{row['tag']}_weights.png"))
        penalty = model.get_layer("linear_1").kernel_regularizer
        assert (penalty is None) == (row["l1"] == 0 and row["lambda"] == 0)
    md_path, _ = write_report([out], out=str(tmp_path / "report"))
    md = open(md_path, encoding="utf-8").read()
    assert "near zero weights" in md
    assert os.path.isfile(tmp_path / "report" / "l1l2" / "weights.png"), os.listdir(
        tmp_path / "report")
    assert read_json(os.path.join(out, "config.json"))["rows"][1]["l1"] > 0
