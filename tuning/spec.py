"""A search as the command line asks for it, TensorFlow-free: the experiment's `search`
entry with `--quick` and `--max-trials` applied, its stages, and the run directory
check (a directory holding another search is refused before anything starts)."""

import os

from kcourse import experiments
from kcourse.errors import SettingError
from kcourse.runs.layout import check_config


def search_spec(name, quick=False, max_trials=None):
    """The `search` entry of experiment `name`, shrunk by `--quick`; `max_trials` sets
    the number of trials of a random search, or the total of a coarse-to-fine search
    (the fine stage gets what the coarse grid leaves)."""
    spec = experiments.get(name)
    if "search" not in spec:
        raise SettingError(f"{name} is not a search; `kcourse list` shows them")
    search = dict(spec["search"])
    if quick:
        search.update({k: v for k, v in spec.get("quick", {}).items() if k in search})
    if max_trials is not None:
        if search.get("type") == "random":
            search["trials"] = max_trials
        else:
            coarse = coarse_trials(search)
            if max_trials <= coarse:
                raise SettingError(f"--max-trials {max_trials}: the coarse grid of {name} "
                                   f"alone has {coarse} trials; give more than {coarse}")
            search["fine_trials"] = max_trials - coarse
    return search


def coarse_trials(search):
    """The number of trials of a coarse-to-fine search's grid."""
    combinations = 1
    for values in search.get("choices", {}).values():
        combinations *= len(values)
    return search["coarse_values"] * combinations


def stages(search):
    """The KerasTuner projects of a search, in order (each one tuner and one oracle)."""
    return ["random"] if search.get("type") == "random" else ["coarse", "fine"]


def total_trials(search):
    if search.get("type") == "random":
        return search["trials"]
    return coarse_trials(search) + search["fine_trials"]


def config_doc(name, seed, quick, overrides, config):
    """What `config.json` of a search holds, less the data directory (which may move)."""
    return {"experiment": name, "seed": seed, "quick": quick, "overrides": overrides or {},
            "rows": [config]}


def check_run_dir(name, out, seed=0, quick=False, overrides=None):
    """Refuse a run directory holding another search (another experiment, seed,
    `--quick` or `--set`)."""
    config = experiments.resolve(name, overrides, quick)[0]
    if os.path.isdir(out) and os.path.exists(os.path.join(out, "config.json")):
        check_config(out, config_doc(name, seed, quick, overrides, config))
    return config
