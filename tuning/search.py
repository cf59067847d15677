"""KerasTuner searches of the tracks' experiments, declared as data.

`run_search(name)` runs the `search` entry of experiment `name`: a coarse-to-fine
search of one setting (below), or with `"type": "random"` a random search of
`"trials"` trials over a `"space"` of several settings (`SpaceHyperModel`).

Coarse-to-fine search of one setting, as the course describes.

An experiment with a `search` entry declares it as data:
`{"param", "coarse_min", "coarse_max", "coarse_values", "fine_trials", "fine_top",
"objective", "choices"?}`. Stage 1 (coarse): a grid of `coarse_values` values of
log10(param) in [coarse_min, coarse_max] (course: 8 values of log10(lambda) in
[-5, -1]), once per combination of `choices`. Stage 2 (fine): `fine_trials` random
log10(param) in the range spanned by the `fine_top` best coarse values, with the
choices of the best coarse trial. The trials train with the experiment's track
(`tuning.hypermodel.TrackHyperModel`); both tuners keep their trials in the run
directory, so an interrupted search resumes; `results.json`, `trials.csv` and
`figures/<param>_search.png` sum it up (and `hparams/`, for TensorBoard's HParams
dashboard), with the best model's test figure measured once at the end.

Every stage is one KerasTuner tuner whose `search` a `runner` runs: in this process by
default, or as the chief of KerasTuner's distributed mode (`tuning.distributed`,
`kcourse tune --workers N`), its workers running `work` with KerasTuner's three
variables set (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`),
all with the same run directory; only `--fresh` overwrites, so workers never wipe each
other's trials.
"""

import csv
import io
import os
import shutil
import time

import keras_tuner
import numpy as np

from kcourse import experiments, plots
from kcourse.errors import DataNotFoundError, SettingError
from kcourse.runs.layout import default_run_dir, start_fresh, write_json, write_text
from tuning.distributed import progress_line
from tuning.hparams import log_hparams
from tuning.hypermodel import SpaceHyperModel, TrackHyperModel
from tuning.oracles import grid_search
from tuning.spec import check_run_dir, coarse_trials, config_doc, search_spec


def _trials(tuner, stage, param, choices):
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED":
            continue
        values = trial.hyperparameters.values
        log = values["log_" + param]
        rows.append({"stage": stage, "trial": trial.trial_id, "log_" + param: log,
                     param: 10.0 ** log, **{c: values[c] for c in choices if c in values},
                     tuner.oracle.objective.name: trial.score})
    return sorted(rows, key=lambda row: (*(row.get(c, 0) for c in choices),
                                         row["log_" + param]))


def fine_range(coarse, top, param="lambda", objective="val_accuracy"):
    """The log10 range spanned by the `top` best coarse trials (at least one grid step
    wide)."""
    key = "log_" + param
    best = sorted(coarse, key=lambda t: -t[objective])[:top]
    low = min(t[key] for t in best)
    high = max(t[key] for t in best)
    if high - low < 1e-9:
        grid = sorted({t[key] for t in coarse})
        step = (grid[-1] - grid[0]) / max(1, len(grid) - 1) or 1.0
        low, high = low - step / 2, high + step / 2
    return low, high


def _prepare(name, out, data_dir, seed, quick, overrides, fresh, check=None,
             max_trials=None, worker=False):
    """The search's spec (shrunk by `--quick`), configuration, track and run directory;
    `check(search, config)` passed, `config.json` written (by the chief: a worker only
    checks it) and the data loaded. A search refused before its first trial leaves no
    directory behind, and a directory holding another search is refused."""
    search = search_spec(name, quick, max_trials)
    spec = experiments.get(name)
    config = experiments.resolve(name, overrides, quick)[0]
    impl = experiments.track_of(name).module()
    out = out or default_run_dir(name, quick, config)
    if fresh and not worker:
        start_fresh(out, name)
    check_run_dir(name, out, seed, quick, overrides)
    created = not os.path.exists(out)
    try:
        if check is not None:
            check(search, config)
        if not worker:  # no lock: the workers of a distributed search share the directory
            write_json(os.path.join(out, "config.json"),
                       {**config_doc(name, seed, quick, overrides, config),
                        "data_dir": data_dir})
        data = impl.search_data(config, data_dir)
    except (SettingError, DataNotFoundError):
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return spec, search, config, impl, out, data


def _write_trials(out, trials):
    text = io.StringIO()
    writer = csv.DictWriter(text, list(trials[0]))
    writer.writeheader()
    writer.writerows(trials)
    write_text(os.path.join(out, "trials.csv"), text.getvalue())


def _completed(tuner, name):
    """The completed trials of a tuner, in trial-id order (ties then go to the first);
    an error if none completed."""
    trials = sorted((t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"),
                    key=lambda t: t.trial_id)
    if not trials:
        raise SettingError(f"no trial of {name} completed; see the errors KerasTuner "
                           "printed above")
    return trials


def _local(tuner, stage, **search_kwargs):
    """Run a stage's search in this process (KerasTuner's own loop), printing a line per
    finished trial as a distributed search's chief does."""
    begin, end, started = tuner.on_trial_begin, tuner.on_trial_end, {}

    def on_trial_begin(trial):
        started[trial.trial_id] = time.monotonic()
        begin(trial)

    def on_trial_end(trial):
        end(trial)  # KerasTuner's: the oracle ends the trial (status, score)
        oracle = tuner.oracle
        print(progress_line(tuner.project_name, oracle.trials[trial.trial_id],
                            "this process", time.monotonic() - started[trial.trial_id],
                            len(set(oracle.end_order)), oracle.max_trials,
                            oracle.objective.name), flush=True)

    tuner.on_trial_begin, tuner.on_trial_end = on_trial_begin, on_trial_end
    tuner.search(**search_kwargs)


def coarse_to_fine(name, out=None, data_dir=None, seed=0, quick=False, overrides=None,
                   fresh=False, verbose=1, max_trials=None, runner=_local):
    """Run the two-stage search of experiment `name`; return the results dict.
    `runner(tuner, stage, **search_kwargs)` runs each stage (in this process, or as
    the chief of a distributed search: `tuning.distributed.Chief.run`)."""
    spec, search, config, impl, out, data = _prepare(name, out, data_dir, seed, quick,
                                                     overrides, fresh, max_trials=max_trials)
    return _search(name, spec, search, impl, config, out, data, seed, verbose, runner)


def _common(search, out, seed):
    objective = search.get("objective", "val_accuracy")
    # KerasTuner takes seed 0 for "no seed" (`seed or random.randint(...)`): seed + 1
    # keeps a random stage's values the same from run to run (and chief to chief)
    return dict(objective=keras_tuner.Objective(objective, direction="max"),
                directory=out, overwrite=False, seed=seed + 1)


def _coarse_tuner(search, impl, config, out, seed):
    grid = np.linspace(search["coarse_min"], search["coarse_max"],
                       search["coarse_values"])
    return grid_search(
        TrackHyperModel(impl, config, search["param"], log_values=grid,
                        choices=search.get("choices", {}), seed=seed),
        project_name="coarse", max_trials=coarse_trials(search),
        **_common(search, out, seed))


def _fine_tuner(search, impl, config, out, seed, log_range, choices):
    return keras_tuner.RandomSearch(
        TrackHyperModel(impl, config, search["param"], log_range=log_range,
                        choices=choices, seed=seed),
        project_name="fine", max_trials=search["fine_trials"], **_common(search, out, seed))


def _search(name, spec, search, impl, config, out, data, seed, verbose, runner=_local):
    runner = runner or _local
    param, objective = search["param"], search.get("objective", "val_accuracy")
    choices = search.get("choices", {})
    coarse_tuner = _coarse_tuner(search, impl, config, out, seed)
    runner(coarse_tuner, 0, data=data, verbose=verbose)
    coarse = _trials(coarse_tuner, "coarse", param, choices)

    # the fine stage keeps the choices of the best coarse trial
    best_coarse = max(coarse, key=lambda t: t[objective])
    kept = {c: [best_coarse[c]] for c in choices}
    low, high = fine_range([t for t in coarse if all(t[c] == v[0]
                                                     for c, v in kept.items())],
                           search["fine_top"], param, objective)
    fine_tuner = _fine_tuner(search, impl, config, out, seed, (low, high), kept)
    runner(fine_tuner, 1, data=data, verbose=verbose)
    fine = _trials(fine_tuner, "fine", param, choices)

    trials = coarse + fine
    best = max(trials, key=lambda t: t[objective])
    tuner = coarse_tuner if best["stage"] == "coarse" else fine_tuner
    model = tuner.get_best_models(1)[0]
    test = impl.evaluate_test(config, data, model)
    results = {"experiment": name, "reference": spec["reference"], "config": config,
               "seed": seed, "fine_range": [low, high], "best": best,
               "best_test_accuracy": test["accuracy"], "trials": trials}
    write_json(os.path.join(out, "results.json"), results)
    _write_trials(out, trials)
    log_hparams(trials, ["log_" + param, param, *choices], objective, out)
    plots.plot_search(trials, param, os.path.join(out, "figures", f"{param}_search.png"),
                      title=f"{name}: {objective.replace('_', ' ')} against {param}",
                      objective=objective, choices=list(choices))
    return results


def run_search(name, **options):
    """Run the search of experiment `name` (its `search` entry decides which kind);
    the options of `coarse_to_fine`. Returns the results dict."""
    if experiments.get(name).get("search", {}).get("type") == "random":
        return random_search(name, **options)
    return coarse_to_fine(name, **options)


def _random_tuner(search, hypermodel, out, seed):
    return keras_tuner.RandomSearch(
        hypermodel, max_trials=search["trials"], project_name="random",
        **_common(search, out, seed))


def random_search(name, out=None, data_dir=None, seed=0, quick=False, overrides=None,
                  fresh=False, verbose=1, max_trials=None, runner=_local):
    """KerasTuner's random search of `trials` trials over the experiment's `space`.

    A trial's score is what the track's `train_trial` returns (for the surnames: the
    final model's accuracy on the inner validation names), and the best trial (ties: the
    first by trial id) has its model measured once on the held-out split at the end.
    Results: `results.json`, `trials.csv` and `figures/search.png` (the objective against
    each searched setting).
    """
    spec, search, config, impl, out, data = _prepare(
        name, out, data_dir, seed, quick, overrides, fresh,
        check=lambda search, config: check_space(name, search["space"], config),
        max_trials=max_trials)
    objective = search.get("objective", "val_accuracy")
    hypermodel = SpaceHyperModel(impl, config, search["space"], data, seed=seed)
    tuner = _random_tuner(search, hypermodel, out, seed)
    (runner or _local)(tuner, 0, verbose=verbose)
    completed = _completed(tuner, name)
    trials = [{"stage": "random", "trial": t.trial_id, **t.hyperparameters.values,
               objective: t.score} for t in completed]
    best = max(trials, key=lambda t: t[objective])
    best_trial = completed[trials.index(best)]
    model = tuner.load_model(best_trial)
    best_config = hypermodel.configuration(best_trial.hyperparameters)
    test = impl.evaluate_test(best_config, data, model)
    results = {"experiment": name, "reference": spec["reference"], "config": config,
               "seed": seed, "space": search["space"], "best": best,
               "best_test_accuracy": test["accuracy"],
               "best_test": {k: float(v) for k, v in test.items()}, "trials": trials}
    if hasattr(impl, "evaluate_validation"):  # the measured model is the scored one
        metric = objective.removeprefix("val_")
        results[f"best_model_{objective}"] = float(impl.evaluate_validation(
            best_config, data, model)[metric])
    write_json(os.path.join(out, "results.json"), results)
    _write_trials(out, trials)
    log_hparams(trials, list(search["space"]), objective, out)
    plots.plot_space_search(trials, list(search["space"]),
                            os.path.join(out, "figures", "search.png"), objective=objective,
                            title=f"{name}: {objective.replace('_', ' ')}")
    return results


def work(name, out=None, data_dir=None, seed=0, quick=False, overrides=None, wait=None,
         **_):
    """Run as a worker of a distributed search (KerasTuner's three variables set): each
    stage's tuner is KerasTuner's worker, its trials handed out by the chief. The
    values of a trial come from the chief's oracle, so a worker's fine stage spans the
    whole coarse range and every choice (the chief narrows them)."""
    from tuning import distributed

    host, port = distributed.start_worker(wait or distributed.DEFAULT_WAIT)
    spec, search, config, impl, out, data = _prepare(name, out, data_dir, seed, quick,
                                                     overrides, False, worker=True)
    if search.get("type") == "random":
        hypermodel = SpaceHyperModel(impl, config, search["space"], data, seed=seed)
        stages = [(lambda: _random_tuner(search, hypermodel, out, seed), {"verbose": 0})]
    else:
        whole = (search["coarse_min"], search["coarse_max"])
        stages = [(lambda: _coarse_tuner(search, impl, config, out, seed), {}),
                  (lambda: _fine_tuner(search, impl, config, out, seed, whole,
                                       search.get("choices", {})), {})]
        for _, kwargs in stages:
            kwargs.update(data=data, verbose=0)
    distributed.run_stages(stages, host, port, wait or distributed.DEFAULT_WAIT)


def check_space(name, space, config):
    """Every searched setting is a setting of the experiment, and every value of a
    choice passes the track's checks (a typo would otherwise be 'searched' and never
    applied)."""
    for key, values in space.items():
        if key not in config:
            raise SettingError(f"the search space of {name} names {key!r}, which is not one "
                               f"of its settings: {', '.join(sorted(config))}")
        if isinstance(values, dict):
            continue  # bounds: checked by SpaceHyperModel
        for value in values:
            experiments.check(name, key, value)


def _space(results):
    search = experiments.get(results["experiment"])["search"]
    return search.get("param"), search.get("objective", "val_accuracy")


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def random_table(results):
    """The trials of a random search as a text table, best marked."""
    _, objective = _space(results)
    names = list(results["space"])
    header = ["trial", *names, objective]
    lines = [[t["trial"], *(_fmt(t[n]) for n in names), f"{t[objective]:.4f}",
              "  <- best" if t == results["best"] else ""] for t in results["trials"]]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    rows = [header + [""], ["-" * w for w in widths] + [""]] + lines
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(row, widths)) + row[-1]
                     for row in rows)


def search_table(results):
    """The trials of a search as a text table, best marked."""
    if "space" in results:
        return random_table(results)
    param, objective = _space(results)
    choices = [c for c in results["best"] if c not in (
        "stage", "trial", "log_" + param, param, objective)]
    header = ["stage", "trial", f"log10({param})", param, *choices, objective]
    lines = []
    for t in results["trials"]:
        mark = "  <- best" if t == results["best"] else ""
        lines.append([t["stage"], t["trial"], f"{t['log_' + param]:.3f}", f"{t[param]:.3g}",
                      *(str(t[c]) for c in choices), f"{t[objective]:.4f}", mark])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    rows = [header, ["-" * w for w in widths]] + lines
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(row, widths)) + (
        row[-1] if len(row) > len(widths) else "") for row in rows)


def search_summary(results, out):
    """The table, the best trial and where the results are, for the command line."""
    param, objective = _space(results)
    if "space" in results:
        best = results["best"]
        values = ", ".join(f"{n} {_fmt(best[n])}" for n in results["space"])
        metric = objective.removeprefix("val_")
        measured = results.get("best_test", {})
        held_out = (f"held-out {metric} {measured[metric]:.4f}, accuracy "
                    if metric in measured and metric != "accuracy" else "held-out accuracy ")
        return (f"{search_table(results)}\n\nBest: {values} ({objective} "
                f"{best[objective]:.4f}; {held_out}"
                f"{results['best_test_accuracy']:.4f}, measured once).\n"
                f"Results: {os.path.join(out, 'results.json')}, "
                f"{os.path.join(out, 'figures', 'search.png')}")
    best = results["best"]
    extra = "".join(f", {c} {v}" for c, v in best.items() if c not in (
        "stage", "trial", "log_" + param, param, objective))
    low, high = results["fine_range"]
    return (f"{search_table(results)}\n\nBest {param} {best[param]:.4g}{extra} ({objective} "
            f"{best[objective]:.4f}, test accuracy {results['best_test_accuracy']:.4f}); "
            f"fine stage searched log10({param}) in [{low:.2f}, {high:.2f}].\n"
            f"Results: {os.path.join(out, 'results.json')}, "
            f"{os.path.join(out, 'figures', f'{param}_search.png')}")
