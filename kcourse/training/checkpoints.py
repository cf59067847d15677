"""Checkpoints of a training run: the TensorFlow state and the history, as one step.

`out_dir/checkpoints/` holds the latest TensorFlow checkpoints (`ckpt-<step>.*`: model,
optimizer, step, the data source's reading state) and, for each, its history
`history-<step>.json` (`{"step", "rows", ...}`, the one form every track uses) and,
when the run keeps its best model, `best-<step>.npz`; `history.json` is a copy of the
latest history, and `settings.json` describes the training the checkpoints belong to
(`training_settings`), so that a run with other settings is not resumed from them. The
step's files are written first, the TensorFlow checkpoint last, and every file goes to
a temporary name and is renamed, so a process killed at any moment leaves the previous
checkpoint complete. Restoring tries the newest checkpoint first and falls back to an
older intact one, saying so.
"""

import glob
import json
import os
import re
import shutil
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

    @property
    def settings_path(self):
        return os.path.join(self.directory, "settings.json")

    def read_settings(self):
        """The stored `training_settings`, or None (none stored, e.g. checkpoints of an
        older kcourse)."""
        try:
            return read_json(self.settings_path)
        except (OSError, ValueError):
            return None

    def write_settings(self, settings):
        write_json(self.settings_path, settings)

    def clear(self):
        """Delete the checkpoint folder and all it holds (training starts again)."""
        if os.path.isdir(self.directory):
            shutil.rmtree(self.directory)

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


def training_settings(model, loss_fn, optimizer, source=None, length=None, **training):
    """What defines a training run, as JSON values, to store beside its checkpoints.

    The model's architecture (its class, config and layers' configs without their
    names, which Keras numbers per process, and its weights' shapes), the optimizer's
    config (learning rate or schedule, momentum, clipping, ...), the loss (its class
    and config, or a function's name), the batch source's sizes (`steps_per_epoch`,
    `batch_size`, ...), the `training` keyword values (eval_every, ...) and the
    `length` of training (a dict: epochs, max_steps, updates; `setting_differences`
    leaves it out, as a run may be resumed to train longer). What cannot be written as
    JSON is left out.
    """
    own = _config(model)
    if isinstance(own, dict) and isinstance(own.get("layers"), list):  # described below
        own = {k: v for k, v in own.items()
               if k not in ("layers", "input_layers", "output_layers")}
    described = {
        "model": {"class": type(model).__name__, "config": own,
                  "layers": [{"class": type(layer).__name__, "config": _config(layer)}
                             for layer in model.layers],
                  "weights": [[None if d is None else int(d) for d in w.shape]
                              for w in model.weights]},
        "optimizer": {"class": type(optimizer).__name__, "config": _config(optimizer)},
        "loss": ({"class": type(loss_fn).__name__, "config": _config(loss_fn)}
                 if hasattr(loss_fn, "get_config") else
                 {"function": getattr(loss_fn, "__qualname__", type(loss_fn).__name__)}),
        "data": source_settings(source) if source is not None else None,
        "training": training,
        "length": length,
    }
    return json.loads(json.dumps(_jsonable(described)))


def source_settings(source):
    """A training source's class and sizes (its int `steps_per_epoch`, `batch_size`,
    `seq_length`, `size`, `seed`)."""
    described = {"class": type(source).__name__}
    for name in ("steps_per_epoch", "batch_size", "seq_length", "size", "seed"):
        value = getattr(source, name, None)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            described[name] = int(value)
    return described


def setting_differences(old, new, limit=6, ignore=("length",)):
    """The settings that differ, as `"key: old -> new"` lines (at most `limit`, then
    how many more), but for the top-level keys in `ignore`."""
    old, new = ({k: v for k, v in d.items() if k not in ignore} for d in (old, new))
    old, new = _flatten(old), _flatten(new)
    keys = list(old) + [k for k in new if k not in old]
    missing = "(not set)"
    # a key on one side only, with the value None, is an argument a Keras version added
    # or dropped (e.g. loss_scale_factor): not a change of the training
    lines = [f"{k}: {_short(old.get(k, missing))} -> {_short(new.get(k, missing))}"
             for k in keys if old.get(k, missing) != new.get(k, missing)
             and not (k not in old and new[k] is None or k not in new and old[k] is None)]
    if len(lines) > limit:
        lines = lines[:limit] + [f"and {len(lines) - limit} more"]
    return lines


_SKIP = object()


def _config(obj):
    """`obj.get_config()` as JSON values without names, or None when it has none."""
    try:
        config = obj.get_config()
    except Exception:  # e.g. a subclassed model whose arguments Keras cannot record
        return None
    config = _jsonable(config)
    return None if config is _SKIP else _anonymous(config)


def _jsonable(value):
    """`value` as JSON values: tuples as lists, NumPy values as Python ones, Keras
    objects as their class and config; `_SKIP` for what has no JSON form."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 1000 else _SKIP
    if isinstance(value, dict):
        items = ((str(k), _jsonable(v)) for k, v in value.items())
        return {k: v for k, v in items if v is not _SKIP}
    if isinstance(value, (list, tuple)):
        return [None if v is _SKIP else v for v in map(_jsonable, value)]
    if hasattr(value, "get_config"):
        config = _config(value)
        return _SKIP if config is None else {"class": type(value).__name__, "config": config}
    return _SKIP


def _anonymous(value):
    """`value` without its `name` keys (Keras numbers names per process: `sgd_1`,
    `dense_2`), except a dtype policy's (`float32`, `mixed_float16`)."""
    if isinstance(value, dict):
        if "DTypePolicy" in str(value.get("class_name", "")):
            return value
        return {k: _anonymous(v) for k, v in value.items() if k != "name"}
    if isinstance(value, list):
        return [_anonymous(v) for v in value]
    return value


def _flatten(value, path=""):
    """`{"a.b[0].c": leaf}` of nested dicts and lists (lists of plain values are leaves)."""
    if isinstance(value, dict) and value:
        items = [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return {path: value}
    flat = {}
    for key, item in items:
        flat.update(_flatten(item, key))
    return flat


def _short(value, width=60):
    text = value if value == "(not set)" else json.dumps(value)
    return text if len(text) <= width else text[:width - 3] + "..."
