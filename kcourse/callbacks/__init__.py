"""Keras callbacks of the course (they work in `kcourse.training.fit` and `model.fit`)."""

from kcourse.callbacks.snapshot_ensemble import (SnapshotEnsemble, ensemble_accuracy,
                                                 ensemble_predict, snapshot_scores)

__all__ = ["SnapshotEnsemble", "ensemble_accuracy", "ensemble_predict", "snapshot_scores"]
