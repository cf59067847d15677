"""Run an experiment into a run directory: its rows, one after another, each trained
by the experiment's track; finished rows are kept, so running again resumes."""

import dataclasses
import glob
import math
import os
import shutil
import time

from kcourse import experiments
from kcourse.errors import CheckpointMismatch, DataNotFoundError, SettingError
from kcourse.tracks import tracks
from kcourse.runs.layout import (check_config, check_out_dir, default_run_dir, locked,
                                 read_json, row_tag, start_fresh, write_history_csv,
                                 write_json)


@dataclasses.dataclass
class RowContext:
    """What a track's `train_row` gets: one row of an experiment and where it goes.

    `out` is the run directory (figures go to `out/figures`), `row_dir` the row's own
    folder (`out/rows/<tag>`: checkpoints, model, anything else of the row).
    """

    experiment: str
    spec: dict
    config: dict
    out: str
    tag: str
    row_dir: str
    data_dir: str = None
    seed: int = 0
    verbose: int = 1

    @property
    def figures(self):
        return os.path.join(self.out, "figures")


def select_rows(rows, key):
    """Mark, for each loss, the row with the best `key` (validation accuracy)."""
    best = {}
    for i, row in enumerate(rows):
        if row.get("diverged"):
            continue
        if row["loss"] not in best or row[key] > rows[best[row["loss"]]][key]:
            best[row["loss"]] = i
    for i, row in enumerate(rows):
        row["selected"] = i in best.values()


WALL_CLOCK = ("_seconds", "_per_second")  # result keys that go to timing.json


def _finished_row(out, row_dir, tag, old_rows):
    """`(result, history rows)` of a finished row, or None. A row is finished when its
    `result.json` exists (runs of older versions: when metrics.json lists it)."""
    path = os.path.join(row_dir, "result.json")
    try:
        if os.path.exists(path):
            result = read_json(path)
        elif tag in old_rows:
            result = old_rows[tag]
        else:
            return None
        path = os.path.join(row_dir, "checkpoints", "history.json")
        return result, read_json(path)["rows"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SettingError(
            f"row {tag} of {out} is finished but {path} cannot be read "
            f"({type(error).__name__}); train that row again with --fresh-row "
            f"{int(tag[:2])} (the other rows are kept)") from None


def _old_rows(metrics_path):
    """The rows listed by a metrics.json written by an older version (if readable)."""
    try:
        return {row["tag"]: row for row in read_json(metrics_path)["rows"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def run_experiment(name, out=None, data_dir=None, seed=0, quick=False, overrides=None,
                   fresh=False, verbose=1, fresh_rows=()):
    """Train every row of experiment `name` into the run directory `out`.

    Finished rows are kept (each has `rows/<tag>/result.json`); the others train, an
    interrupted one resuming from its checkpoint. `fresh_rows` (row indices) are trained
    again from the start. Returns the metrics dict written to `out/metrics.json`; the
    wall-clock figures of the rows go to `out/timing.json`, so that metrics.json is the
    same for the same command.
    """
    spec = experiments.get(name)
    track = experiments.track_of(name)
    configs = experiments.resolve(name, overrides, quick)
    out = out or default_run_dir(name, quick, configs[0])
    config_doc = {"experiment": name, "seed": seed, "quick": quick,
                  "overrides": overrides or {}, "rows": configs}
    check_out_dir(out)
    for index in fresh_rows:
        if not 0 <= index < len(configs):
            raise SettingError(f"--fresh-row {index}: {name} has rows 0 to "
                                           f"{len(configs) - 1}")
    if fresh:
        start_fresh(out, name)
    impl = track.module()
    created = not os.path.exists(out)
    try:
        return _run(name, spec, impl, configs, config_doc, out, data_dir, seed, verbose,
                    fresh_rows)
    except (SettingError, DataNotFoundError):
        if created:  # refused before anything was trained: leave nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise


def row_tags(spec, configs):
    """The directory names of the rows `configs` of the experiment `spec`: each row's
    index and the values it trains with of the settings its spec row sets (a --set of
    one of them shows in the name)."""
    return [row_tag(index, {key: config[key] for key in row})
            for index, (row, config) in enumerate(zip(spec["rows"], configs))]


def _run(name, spec, impl, configs, config_doc, out, data_dir, seed, verbose, fresh_rows):
    with locked(out):
        check_config(out, config_doc)
        write_json(os.path.join(out, "config.json"), {**config_doc, "data_dir": data_dir})
        metrics_path = os.path.join(out, "metrics.json")
        old_rows = {} if glob.glob(os.path.join(out, "rows", "*", "result.json")) else \
            _old_rows(metrics_path)  # a run of an older version lists its rows there
        metrics = {"experiment": name, "reference": spec["reference"], "rows": []}
        timing, histories = {}, []
        for index, config in enumerate(configs):
            tag = row_tags(spec, configs)[index]
            row_dir = os.path.join(out, "rows", tag)
            if index in fresh_rows and os.path.isdir(row_dir):
                shutil.rmtree(row_dir)
                old_rows.pop(tag, None)
            finished = _finished_row(out, row_dir, tag, old_rows)
            if finished is None:
                if verbose:
                    print(f"[{name}] row {index + 1}/{len(configs)}: {tag}")
                context = RowContext(name, spec, config, out, tag, row_dir, data_dir, seed,
                                     verbose)
                started = time.perf_counter()
                try:
                    result, history_rows = impl.train_row(context)
                except CheckpointMismatch as error:  # say it with the command line's words
                    raise SettingError(
                        f"row {tag} of {out} has checkpoints of a training with other "
                        f"settings ({'; '.join(error.changes)}); train that row again "
                        f"with --fresh-row {index}, or start over with --fresh") from None
                if not any(k.endswith("_seconds") for k in result):  # wall clock, this call
                    result["row_seconds"] = time.perf_counter() - started
                result = {"tag": tag, **config, **result}
                write_json(os.path.join(row_dir, "result.json"), result)  # the row is done
                finished = result, history_rows
                if verbose:
                    print(f"[{name}] row {index + 1}/{len(configs)} done: "
                          f"{row_line(result, spec)}")
            result, history_rows = finished
            timing[tag] = {k: v for k, v in result.items() if k.endswith(WALL_CLOCK)}
            metrics["rows"].append({k: v for k, v in result.items() if k not in timing[tag]})
            histories.append((tag, history_rows))
            write_json(metrics_path, metrics)
            write_json(os.path.join(out, "timing.json"), timing)
            write_history_csv(out, histories)
        if spec.get("select"):
            select_rows(metrics["rows"], spec["select"])
        write_json(metrics_path, metrics)
    return metrics


def fmt(key, value):
    """A result as the README shows it: accuracies in percent, other numbers to four
    decimals."""
    if isinstance(value, float):
        if "accuracy" in key:
            return f"{value:.2%}"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
    return "" if value is None else str(value)


def row_line(result, spec):
    """One finished row in a line: its track's result columns and training time."""
    track = tracks()[spec["track"]]
    shown = [c for c in track.columns if c in result and c not in spec["rows"][0]
             and not isinstance(result[c], str)]
    text = ", ".join(f"{c} {fmt(c, result[c])}" for c in shown)
    seconds = next((v for k, v in result.items() if k.endswith("_seconds")), None)
    if seconds is not None:
        text += f" ({seconds:.0f} s)"
    if result.get("diverged"):
        text += " DIVERGED"
    return text


def summary_table(metrics):
    """The metrics rows as a text table: the settings that vary between rows, the
    track's result columns (accuracies in percent), and the selected / diverged
    marks."""
    rows = metrics["rows"]
    spec = experiments.get(metrics["experiment"])
    track = experiments.track_of(metrics["experiment"])
    wanted = [*spec["rows"][0], *track.columns, "selected", "diverged"]
    columns = [c for i, c in enumerate(wanted) if c in rows[0] and c not in wanted[:i]]
    settings = set(spec["rows"][0]) - set(track.columns)

    def cell(column, value):  # a setting as `--set` takes it (1e-05, not 0.0000)
        if column in settings and isinstance(value, float) and math.isfinite(value):
            return f"{value:g}"
        return fmt(column, value)

    cells = [columns] + [[cell(c, row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
