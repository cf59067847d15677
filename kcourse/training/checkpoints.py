"""Checkpoints of a training run: the TensorFlow state and the history, as one step.

`out_dir/checkpoints/` holds the latest TensorFlow checkpoints (model, optimizer,
step, the data source's reading state), `history.json` (`{"step", "rows", ...}`: the
history up to that step, in the one form every track uses) and, when the run keeps
its best model, `best.weights.npz`. Every file is written to a temporary name and
renamed, so a killed process leaves a complete previous version.
"""

import os

import numpy as np
import tensorflow as tf

from kcourse.runs.layout import read_json, write_json


class Checkpointer:
    """Save and restore a run's state in `directory`.

    Args:
        directory: the checkpoint folder.
        max_to_keep: TensorFlow checkpoints kept.
        **trackables: what to checkpoint (`model=`, `optimizer=`, variables, modules).
    """

    def __init__(self, directory, max_to_keep=2, **trackables):
        self.directory = directory
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory,
                                                  max_to_keep=max_to_keep)
        self.history_path = os.path.join(directory, "history.json")
        self.best_path = os.path.join(directory, "best.weights.npz")

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def restore(self):
        """Restore the latest checkpoint; returns its history document (with
        `best_weights` when saved), or None when there is none."""
        if not self.latest:
            return None
        self.checkpoint.restore(self.latest).assert_existing_objects_matched()
        doc = read_json(self.history_path)
        if os.path.exists(self.best_path):
            with np.load(self.best_path) as best:
                doc["best_weights"] = [best[f"w{i}"] for i in range(len(best.files))]
        return doc

    def save(self, step, doc, best_weights=None):
        """Checkpoint at `step` with the history document `doc`."""
        self.manager.save(checkpoint_number=step)
        if best_weights is not None:
            tmp = self.best_path + f".tmp{os.getpid()}.npz"
            np.savez(tmp, **{f"w{i}": w for i, w in enumerate(best_weights)})
            os.replace(tmp, self.best_path)
        write_json(self.history_path, {"step": step, **doc})
