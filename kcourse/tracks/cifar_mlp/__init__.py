"""CIFAR-10 classifiers of DD2424 Assignments 1-3: the one-layer classifier (cross-entropy
and SVM), k-layer nets with batch normalization, dropout and cyclical learning rates.

TensorFlow-free: the experiments are plain data (`experiments.py`); the training,
figures and exports are in `track.py`, imported when a command needs them.
"""

import os

from kcourse.tracks import Track
from kcourse.tracks.cifar_mlp.experiments import CHECKS, EXPERIMENTS, SETTINGS

TRACK = Track(
    name="cifar_mlp",
    title="CIFAR-10 linear classifiers and k-layer nets (DD2424 A1-A3)",
    experiments=EXPERIMENTS,
    settings=SETTINGS,
    checks=CHECKS,
    impl="kcourse.tracks.cifar_mlp.track",
    columns=("train_cost", "val_accuracy", "test_accuracy", "ensemble_test_accuracy",
             "near_zero_weights"),
    best=("val_accuracy", "max"),
    commands="kcourse.tracks.cifar_mlp.commands",
    formats=("saved_model", "onnx"),
    order=1,
    rules=((lambda c: "eta_min" not in c or c["eta_min"] <= c["eta_max"],
            "eta_min={eta_min} is above eta_max={eta_max}"),),
)


def report_figures(run_dir, metrics, out_folder):
    """`kcourse report`: the class templates of every row of a one-layer-classifier run
    (a1, a1-best) side by side in `out_folder/templates.png`, the weight histograms of
    every row of a weight-penalty run (inf265-l1l2) in `out_folder/weights.png`;
    nothing for the other k-layer runs. TensorFlow loads only for those runs (their
    rows' model.keras)."""
    spec = EXPERIMENTS.get(metrics.get("experiment"), {})
    wanted = spec.get("task") == "linear" or "l1" in spec.get("defaults", {})
    if not wanted or not any(
            os.path.exists(os.path.join(run_dir, "rows", row.get("tag", ""), "model.keras"))
            for row in metrics.get("rows", [])):
        return []
    from kcourse import console

    console.load_tensorflow()  # quietly, under the command line
    from kcourse.tracks.cifar_mlp.track import report_figures as draw

    return draw(run_dir, metrics, out_folder)
