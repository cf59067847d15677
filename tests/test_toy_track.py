"""A new track is a new package: the toy track of `tests/toy_track` (named in
$KCOURSE_TRACKS) runs through `kcourse list`, `run`, `export` and `tune --quick`
with no edit of the CLI, the run directory, serving or tuning."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent


def kcourse(*args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KCOURSE_TRACKS": "toy_track",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "kcourse", *args], capture_output=True,
                            text=True, timeout=600, env=env, cwd=cwd)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_a_track_defined_outside_kcourse_runs_exports_and_tunes(tmp_path):
    listing = kcourse("list")
    assert "toy: a toy track defined in the tests" in listing and "toy-search" in listing
    assert "cifar_mlp" in listing  # the built-in tracks are still there

    out = tmp_path / "run"
    printed = kcourse("run", "toy", "--quiet", "--out", str(out), "--set", "epochs=3")
    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["units"] for row in metrics["rows"]] == [2, 8]
    assert all(row["val_accuracy"] > 0.8 for row in metrics["rows"])
    assert "val_accuracy" in printed and "units" in printed  # the summary table
    history = json.loads((out / "rows" / metrics["rows"][1]["tag"] / "checkpoints" /
                          "history.json").read_text())
    assert [r["step"] for r in history["rows"]] == [0, 10, 20, 30]
    assert kcourse("run", "toy", "--quiet", "--out", str(out), "--set", "epochs=3")  # kept

    kcourse("export", str(out), str(tmp_path / "export"))
    best = max(metrics["rows"], key=lambda r: r["val_accuracy"])
    served = tf.saved_model.load(str(tmp_path / "export" / "toy" / "1"))
    meta = json.loads((tmp_path / "export" / "toy" / "1" / "assets.extra" /
                       "kcourse_export.json").read_text())
    assert meta["track"] == "toy" and meta["tag"] == best["tag"]
    probabilities = served.signatures["serving_default"](
        features=tf.constant([[0.0, 3.0], [-3.0, -3.0]]))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)
    assert list(probabilities.argmax(1)) == [0, 2]

    printed = kcourse("tune", "toy-search", "--quick", "--quiet", "--out",
                      str(tmp_path / "tune"))
    results = json.loads((tmp_path / "tune" / "results.json").read_text())
    assert len(results["trials"]) == 3 and "Best lambda" in printed
    assert (tmp_path / "tune" / "figures" / "lambda_search.png").stat().st_size > 0
