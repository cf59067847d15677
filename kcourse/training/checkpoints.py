"""Checkpoints of a training run: the TensorFlow state and the history, as one step.

`out_dir/checkpoints/` holds the latest TensorFlow checkpoints (`ckpt-<step>.*`: model,
optimizer, step, the data source's reading state) and, for each, its history
`history-<step>.json` (`{"step", "rows", ...}`, the one form every track uses) and,
when the run keeps its best model, `best-<step>.npz`; `history.json` is a copy of the
latest history. The step's files are written first, the TensorFlow checkpoint last, and
every file goes to a temporary name and is renamed, so a process killed at any moment
leaves the previous checkpoint complete. Restoring tries the newest checkpoint first and
falls back to an older intact one, saying so.
"""

import glob
import os
import re
import sys

import numpy as np
import tensorflow as tf

from kcourse.errors import SettingError
from kcourse.runs.layout import read_json, write_json


class Checkpointer:
    """Save and restore a run's state in `directory`.

    Args:
        directory: the checkpoint folder.
        max_to_keep: checkpoints kept.
        **trackables: what to checkpoint (`model=`, `optimizer=`, variables, modules).
    """

    def __init__(self, directory, max_to_keep=2, **trackables):
        self.directory = directory
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.checkpoint.save_counter  # created now, so that every checkpoint holds it
        self.max_to_keep = max_to_keep
        self.restored = None

    def steps(self):
        """The steps of the checkpoints on disk, oldest first."""
        found = glob.glob(os.path.join(self.directory, "ckpt-*.index"))
        return sorted(int(re.search(r"ckpt-(\d+)\.index$", p).group(1)) for p in found)

    def _history(self, step):
        return os.path.join(self.directory, f"history-{step}.json")

    def _best(self, step):
        return os.path.join(self.directory, f"best-{step}.npz")

    def _prefix(self, step):
        return os.path.join(self.directory, f"ckpt-{step}")

    @property
    def latest(self):
        return self.restored

    def restore(self, say=lambda message: print(message, file=sys.stderr)):
        """Restore the newest intact checkpoint; returns its history document (with
        `best_weights` when saved), or None when there is none. A checkpoint that cannot
        be read is skipped with a message; when none can, the error says how to start
        the row again."""
        candidates = list(reversed(self.steps()))
        for step in candidates:
            path = self._prefix(step)
            try:
                doc = read_json(self._history(step))
                best = None
                if os.path.exists(self._best(step)):
                    with np.load(self._best(step)) as f:
                        best = [f[f"w{i}"] for i in range(len(f.files))]
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as error:  # a truncated, zeroed or missing file
                say(f"Checkpoint {path} cannot be read ({type(error).__name__}); trying "
                    "the one before.")
                continue
            if best is not None:
                doc["best_weights"] = best
            self.restored = path
            return doc
        if candidates:
            raise SettingError(f"no checkpoint in {self.directory} can be read; delete "
                               "that folder to train this row again from the start (the "
                               "finished rows are kept)")
        return None

    def save(self, step, doc, best_weights=None):
        """Checkpoint at `step` with the history document `doc`."""
        write_json(self._history(step), {"step": step, **doc})
        if best_weights is not None:
            save_arrays(self._best(step), **{f"w{i}": w for i, w in enumerate(best_weights)})
        self.checkpoint.write(self._prefix(step))
        write_json(os.path.join(self.directory, "history.json"), {"step": step, **doc})
        kept = set(self.steps()[-self.max_to_keep:])
        for path in glob.glob(os.path.join(self.directory, "*-*")):
            match = re.fullmatch(r"(ckpt|history|best)-(\d+)\..*", os.path.basename(path))
            if match and int(match.group(2)) not in kept:
                os.remove(path)


def save_model(model, path):
    """`model.save(path)`, atomically: a killed process leaves the previous file or the
    new one, never half of one."""
    tmp = f"{path[:-len('.keras')]}.tmp{os.getpid()}.keras"
    model.save(tmp)
    os.replace(tmp, path)


def save_arrays(path, **arrays):
    """`np.savez(path, **arrays)`, atomically."""
    tmp = f"{path[:-len('.npz')]}.tmp{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
