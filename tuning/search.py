"""Coarse-to-fine search for lambda with KerasTuner, as the course describes.

Stage 1 (coarse): a grid of log10(lambda) values (course: 8 values in [-5, -1]), each
trained for the experiment's cycles (course: 2 cycles, n_s = 2 floor(n / n_batch)) on
the `search` split; a search with `n_s_epochs` runs the grid once per step size. Stage 2
(fine): random log10(lambda) in the range spanned by the best coarse values of the best
step size. Both tuners keep their trials in the run directory, so an interrupted
search resumes; `results.json`, `trials.csv` and `figures/lambda_search.png` sum it up.

KerasTuner distributes a search over processes when `KERASTUNER_TUNER_ID`,
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` are set (one "chief", several
workers, all with the same run directory); only `--fresh` overwrites, so workers
never wipe each other's trials.
"""

import csv
import json
import os
import shutil

import keras_tuner
import numpy as np

from kcourse import experiments, plots
from kcourse.data import batched
from kcourse.runner import EVAL_BATCH, data_for
from kcourse.train import evaluate
from kcourse.losses import get as get_loss
from tuning.hypermodel import CourseHyperModel

OBJECTIVE = keras_tuner.Objective("val_accuracy", direction="max")


def _trials(tuner, stage):
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED":
            continue
        values = trial.hyperparameters.values
        rows.append({"stage": stage, "trial": trial.trial_id,
                     "log_lambda": values["log_lambda"], "lambda": 10.0 ** values["log_lambda"],
                     **({"n_s_epochs": values["n_s_epochs"]} if "n_s_epochs" in values else {}),
                     "val_accuracy": trial.score})
    return sorted(rows, key=lambda row: (row.get("n_s_epochs", 0), row["log_lambda"]))


def fine_range(coarse, top):
    """The log10(lambda) range spanned by the `top` best coarse trials (at least one
    grid step wide)."""
    best = sorted(coarse, key=lambda t: -t["val_accuracy"])[:top]
    low = min(t["log_lambda"] for t in best)
    high = max(t["log_lambda"] for t in best)
    if high - low < 1e-9:
        grid = sorted({t["log_lambda"] for t in coarse})
        step = (grid[-1] - grid[0]) / max(1, len(grid) - 1) or 1.0
        low, high = low - step / 2, high + step / 2
    return low, high


def coarse_to_fine(name, out=None, data_dir=None, seed=0, quick=False, overrides=None,
                   fresh=False, verbose=1):
    """Run the two-stage lambda search of experiment `name`; return the results dict."""
    spec = experiments.get(name)
    if "search" not in spec:
        raise experiments.SettingError(f"{name} is not a search; `kcourse list` shows them")
    search = dict(spec["search"])
    if quick:
        search.update({k: v for k, v in spec.get("quick", {}).items() if k in search})
    config = experiments.resolve(name, overrides, quick)[0]
    out = out or experiments.run_dir(name, quick)
    if fresh and os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "figures"), exist_ok=True)
    splits = data_for(config, data_dir)
    common = dict(objective=OBJECTIVE, directory=out, overwrite=False, seed=seed)

    grid = np.linspace(search["coarse_min"], search["coarse_max"], search["coarse_values"])
    steps = search.get("n_s_epochs")
    coarse_tuner = keras_tuner.GridSearch(
        CourseHyperModel(config, log_values=grid, n_s_epochs=steps, seed=seed),
        project_name="coarse", max_trials=len(grid) * len(steps or [None]), **common)
    coarse_tuner.search(splits=splits, verbose=verbose)
    coarse = _trials(coarse_tuner, "coarse")

    # the fine stage keeps the step size of the best coarse trial
    step = max(coarse, key=lambda t: t["val_accuracy"]).get("n_s_epochs")
    low, high = fine_range([t for t in coarse if t.get("n_s_epochs") == step],
                           search["fine_top"])
    fine_tuner = keras_tuner.RandomSearch(
        CourseHyperModel(config, log_range=(low, high),
                         n_s_epochs=None if step is None else [step], seed=seed),
        project_name="fine", max_trials=search["fine_trials"], **common)
    fine_tuner.search(splits=splits, verbose=verbose)
    fine = _trials(fine_tuner, "fine")

    trials = coarse + fine
    best = max(trials, key=lambda t: t["val_accuracy"])
    tuner = coarse_tuner if best["stage"] == "coarse" else fine_tuner
    model = tuner.get_best_models(1)[0]
    test = evaluate(model, get_loss(config["loss"]), batched(splits.test, EVAL_BATCH))
    results = {"experiment": name, "reference": spec["reference"], "config": config,
               "seed": seed, "fine_range": [low, high], "best": best,
               "best_test_accuracy": test["accuracy"], "trials": trials}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(out, "trials.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, list(trials[0]))
        writer.writeheader()
        writer.writerows(trials)
    plots.plot_search(trials, "lambda", os.path.join(out, "figures", "lambda_search.png"),
                      title=f"{name}: validation accuracy against lambda")
    return results


def search_table(results):
    """The trials of a search as a text table, best marked."""
    with_steps = "n_s_epochs" in results["best"]
    lines = ["stage   trial  log10(lambda)     lambda"
             + ("  n_s (epochs)" if with_steps else "") + "  val_accuracy",
             "------  -----  -------------  ---------" + ("  ------------" if with_steps else "")
             + "  ------------"]
    for t in results["trials"]:
        mark = "  <- best" if t == results["best"] else ""
        step = f"  {t['n_s_epochs']:12d}" if with_steps else ""
        lines.append(f"{t['stage']:6s}  {t['trial']:>5s}  {t['log_lambda']:13.3f}  "
                     f"{t['lambda']:9.3g}{step}  {t['val_accuracy']:12.4f}{mark}")
    return "\n".join(lines)
