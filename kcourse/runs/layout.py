"""The run directory, in one place (TensorFlow-free).

DIR/config.json      the resolved configuration of every row, seed, data options
DIR/metrics.json     {"experiment", "reference", "rows": [{settings..., results...}]}
DIR/history.csv      every history row of every row of the experiment
DIR/figures/*.png    the track's figures
DIR/rows/<tag>/      checkpoints (with history.json), TensorBoard logs, the trained
                     model and whatever else the track keeps for the row
DIR/.lock            held while a process writes the run

Every JSON file is written atomically (a temporary file, fsync, rename), so a killed
process leaves the previous version or the new one, never half of one.
"""

import contextlib
import csv
import fcntl
import io
import json
import os
import shutil

from kcourse.errors import SettingError


def default_run_dir(name, quick=False, config=None):
    """The default run directory of an experiment: `runs/<name>[-quick]`; with the
    `config` of its first row, the track may name it after more than the experiment
    (`Track.run_name`: a4 on a user's text goes to `runs/a4-alice`)."""
    if config is not None:
        from kcourse.experiments import experiments, track_of

        if name in experiments() and track_of(name).run_name is not None:
            name = track_of(name).run_name(name, config)
    return os.path.join("runs", name + ("-quick" if quick else ""))


def _tag_part(key, value):
    if isinstance(value, bool):
        return key if value else "no_" + key
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return key + "-".join(map(str, value))
    return f"{key}{value:g}"


def row_tag(index, row):
    """Directory name of a row: its index and the settings that define the row."""
    return "_".join([f"{index:02d}"] + [_tag_part(k, v) for k, v in row.items()])


def write_text(path, text):
    """Write `text` to `path` atomically."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path, value):
    write_text(path, json.dumps(value, indent=2))


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_history_csv(out, histories):
    """`history.csv`: the rows of every `(tag, rows)` in `histories`, one column set."""
    keys = []
    for _, rows in histories:
        for row in rows:
            keys += [k for k in row if k not in keys]
    text = io.StringIO()
    writer = csv.DictWriter(text, ["row"] + keys)
    writer.writeheader()
    for tag, rows in histories:
        for row in rows:
            writer.writerow({"row": tag, **row})
    write_text(os.path.join(out, "history.csv"), text.getvalue())


def is_run_dir(path, experiment=None):
    """Whether `path` holds a kcourse run (of `experiment`, if given)."""
    try:
        config = read_json(os.path.join(path, "config.json"))
    except (OSError, ValueError):
        return False
    return experiment is None or config.get("experiment") == experiment


def check_out_dir(out):
    """Refuse a run directory that is a file."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise SettingError(f"--out {out} is a file, not a directory")


def check_fresh(out, experiment):
    """Refuse `--fresh` on anything but a run directory of `experiment` (or an empty
    one)."""
    check_out_dir(out)
    if os.path.isdir(out) and os.listdir(out) and not is_run_dir(out, experiment):
        raise SettingError(f"--fresh would delete {out}, which is not a run directory of "
                           f"{experiment}; choose another --out")


def start_fresh(out, experiment):
    """Delete the run directory `out` for `--fresh`, if it is one of `experiment`
    (or empty); anything else is refused, never deleted."""
    check_fresh(out, experiment)
    if os.path.exists(out):
        shutil.rmtree(out)


def check_config(out, config_doc):
    """Refuse a run directory that holds a run of another configuration."""
    path = os.path.join(out, "config.json")
    if not os.path.exists(path):
        return
    previous = read_json(path)
    previous.pop("data_dir", None)  # the data may move between runs
    if previous != json.loads(json.dumps(config_doc)):
        raise SettingError(f"{out} holds a run of another configuration; choose another "
                           "--out or pass --fresh to start over")


@contextlib.contextmanager
def locked(out):
    """Hold `out/.lock` while the block runs: a second process on the same run
    directory is refused with a clear message instead of overwriting the first."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, ".lock"), "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            raise SettingError(f"{out} is in use by {owner}; wait for it to finish or "
                               "choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"kcourse process {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_row(run_dir, row=None):
    """`(metrics row, row directory)` of a finished run: row `row`, or by default the
    best one by its track's rule (`Track.best`) among the rows the experiment selected,
    diverged rows last. The row dict gains `experiment`, `track` and `index`."""
    from kcourse.experiments import track_of

    try:
        metrics = read_json(os.path.join(run_dir, "metrics.json"))
        rows = metrics["rows"]
        rows[0]
    except (OSError, ValueError, KeyError, IndexError):
        raise SettingError(f"{run_dir} holds no finished run (no metrics.json); give the "
                           "--out directory of a `kcourse run`") from None
    track = track_of(metrics["experiment"])
    if row is None:
        candidates = [i for i, r in enumerate(rows) if not r.get("diverged")] or \
            list(range(len(rows)))
        if any(rows[i].get("selected") for i in candidates):
            candidates = [i for i in candidates if rows[i].get("selected")]
        key, direction = track.best
        sign = 1 if direction == "max" else -1
        row = max(candidates, key=lambda i: sign * rows[i].get(key, -sign * float("inf")))
    if not -len(rows) <= row < len(rows):
        raise SettingError(f"{run_dir} has rows 0 to {len(rows) - 1}, not {row}")
    row_dir = os.path.join(run_dir, "rows", rows[row]["tag"])
    if not os.path.exists(os.path.join(row_dir, "model.keras")):
        raise SettingError(f"{row_dir} has no model.keras: the row did not finish; run "
                           "the experiment again to resume it")
    return {**rows[row], "experiment": metrics["experiment"], "track": track.name,
            "index": row % len(rows)}, row_dir
