"""`kcourse tune SEARCH --report --out DIR`: the trials a search's oracles have saved
so far (finished or not, by one process or many), TensorFlow-free: the best ones as a
table and `figures/trials.png`, the objective against each hyperparameter."""

import glob
import json
import os

from kcourse import experiments, plots
from kcourse.errors import SettingError
from tuning.spec import stages

SHOWN = 10  # best trials in the table


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def saved_trials(name, out):
    """Every trial KerasTuner saved in `out` (`<stage>/trial_*/trial.json`), as rows
    `{"stage", "trial", "status", **values, "score"}` in stage and trial order."""
    rows = []
    for stage in stages(experiments.get(name)["search"]):
        for path in sorted(glob.glob(os.path.join(out, stage, "trial_*", "trial.json"))):
            try:
                with open(path, encoding="utf-8") as f:
                    trial = json.load(f)
            except (OSError, ValueError):
                continue  # being written
            rows.append({"stage": stage, "trial": trial["trial_id"],
                         "status": trial["status"], **trial["hyperparameters"]["values"],
                         "score": trial["score"]})
    return rows


def table(rows, names, objective):
    header = ["stage", "trial", *names, objective]
    lines = [[r["stage"], r["trial"], *(_fmt(r.get(n, "")) for n in names),
              f"{r['score']:.4f}"] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(line, widths))
                     for line in [header, ["-" * w for w in widths], *lines])


def report(name, out):
    """The report as text; the figure written to `out/figures/trials.png`."""
    rows = saved_trials(name, out)
    if not rows:
        raise SettingError(f"{out} holds no trial of {name} yet; give the --out of a "
                           f"`kcourse tune {name}`")
    search = experiments.get(name)["search"]
    objective = search.get("objective", "val_accuracy")
    done = [r for r in rows if r["status"] == "COMPLETED" and r["score"] is not None]
    names = [k for k in rows[0] if k not in ("stage", "trial", "status", "score")]
    for row in rows[1:]:
        names += [k for k in row if k not in names and k not in (
            "stage", "trial", "status", "score")]
    counts = {}
    for r in rows:
        counts[r["status"].lower()] = counts.get(r["status"].lower(), 0) + 1
    lines = [f"{name}: {len(rows)} trials in {out} ("
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")"]
    if done:
        best = sorted(done, key=lambda r: -r["score"])[:SHOWN]
        lines += ["", f"The best {len(best)} by {objective}:", table(best, names, objective)]
        path = os.path.join(out, "figures", "trials.png")
        plots.plot_space_search([{**r, objective: r["score"]} for r in done], names, path,
                                objective=objective,
                                title=f"{name}: {objective.replace('_', ' ')}")
        lines += ["", f"Figure: {path}"]
    return "\n".join(lines)
