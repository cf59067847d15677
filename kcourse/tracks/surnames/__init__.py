"""Surname -> language with a character ConvNet (DD2424 Assignment 3, 2019 edition):
two 1-D convolutions over one-hot names, the course's convolution-as-a-matrix
written by hand (`kcourse.layers.MatrixConv1D`), class-balanced training, a tuned
best model and a served name classifier (raw strings in).

TensorFlow-free: the experiments are plain data (`experiments.py`); the training,
figures and exports are in `track.py`, imported when a command needs them.
"""

from kcourse.tracks import Track
from kcourse.tracks.surnames.experiments import CHECKS, EXPERIMENTS, RULES, SETTINGS

TRACK = Track(
    name="surnames",
    title="surname -> language, a character ConvNet (DD2424 A3, 2019 edition)",
    experiments=EXPERIMENTS,
    settings=SETTINGS,
    checks=CHECKS,
    impl="kcourse.tracks.surnames.track",
    columns=("compensation", "train_accuracy", "val_accuracy", "test_accuracy"),
    best=("val_accuracy", "max"),
    order=3,
    rules=RULES,
)
