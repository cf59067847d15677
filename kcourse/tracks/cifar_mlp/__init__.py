"""CIFAR-10 classifiers of DD2424 Assignments 1-3: the one-layer classifier (cross-entropy
and SVM), k-layer nets with batch normalization, dropout and cyclical learning rates.

TensorFlow-free: the experiments are plain data (`experiments.py`); the training,
figures and exports are in `track.py`, imported when a command needs them.
"""

from kcourse.tracks import Track
from kcourse.tracks.cifar_mlp.experiments import CHECKS, EXPERIMENTS

TRACK = Track(
    name="cifar_mlp",
    title="CIFAR-10 linear classifiers and k-layer nets (DD2424 A1-A3)",
    experiments=EXPERIMENTS,
    checks=CHECKS,
    impl="kcourse.tracks.cifar_mlp.track",
    columns=("train_cost", "val_accuracy", "test_accuracy", "ensemble_test_accuracy"),
    best=("val_accuracy", "max"),
    commands="kcourse.tracks.cifar_mlp.commands",
    formats=("saved_model", "onnx"),
    order=1,
    rules=((lambda c: "eta_min" not in c or c["eta_min"] <= c["eta_max"],
            "eta_min={eta_min} is above eta_max={eta_max}"),),
)
