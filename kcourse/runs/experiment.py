"""Run an experiment into a run directory: its rows, one after another, each trained
by the experiment's track; finished rows are kept, so running again resumes."""

import dataclasses
import os

from kcourse import experiments
from kcourse.runs.layout import (check_config, default_run_dir, locked, read_json, row_tag,
                                 start_fresh, write_history_csv, write_json)


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


def run_experiment(name, out=None, data_dir=None, seed=0, quick=False, overrides=None,
                   fresh=False, verbose=1):
    """Train every row of experiment `name` into the run directory `out`.

    Returns the metrics dict written to `out/metrics.json`.
    """
    spec = experiments.get(name)
    track = experiments.track_of(name)
    configs = experiments.resolve(name, overrides, quick)
    out = out or default_run_dir(name, quick)
    config_doc = {"experiment": name, "seed": seed, "quick": quick,
                  "overrides": overrides or {}, "rows": configs}
    if os.path.exists(out) and not os.path.isdir(out):
        raise experiments.SettingError(f"--out {out} is a file, not a directory")
    if fresh:
        start_fresh(out, name)
    impl = track.module()
    with locked(out):
        check_config(out, config_doc)
        write_json(os.path.join(out, "config.json"), {**config_doc, "data_dir": data_dir})
        metrics_path = os.path.join(out, "metrics.json")
        done = {}
        if os.path.exists(metrics_path):
            done = {row["tag"]: row for row in read_json(metrics_path)["rows"]}
        metrics = {"experiment": name, "reference": spec["reference"], "rows": []}
        histories = []
        for index, config in enumerate(configs):
            tag = row_tag(index, spec["rows"][index])
            row_dir = os.path.join(out, "rows", tag)
            if tag in done:
                metrics["rows"].append(done[tag])
                history = read_json(os.path.join(row_dir, "checkpoints", "history.json"))
                histories.append((tag, history["rows"]))
                continue
            if verbose:
                print(f"[{name}] row {index + 1}/{len(configs)}: {tag}")
            context = RowContext(name, spec, config, out, tag, row_dir, data_dir, seed,
                                 verbose)
            result, history_rows = impl.train_row(context)
            metrics["rows"].append({"tag": tag, **config, **result})
            histories.append((tag, history_rows))
            write_json(metrics_path, metrics)
            write_history_csv(out, histories)
        if spec.get("select"):
            select_rows(metrics["rows"], spec["select"])
        write_json(metrics_path, metrics)
        write_history_csv(out, histories)
    return metrics


def summary_table(metrics):
    """The metrics rows as a text table: the settings that vary between rows, the
    track's result columns, and the selected / diverged marks."""
    rows = metrics["rows"]
    spec = experiments.get(metrics["experiment"])
    track = experiments.track_of(metrics["experiment"])
    wanted = [*spec["rows"][0], *track.columns, "selected", "diverged"]
    columns = [c for i, c in enumerate(wanted) if c in rows[0] and c not in wanted[:i]]

    def fmt(value):
        if isinstance(value, float):
            return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
        return str(value)

    cells = [columns] + [[fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
