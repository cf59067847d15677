"""The experiments kcourse reproduces, as plain data (no TensorFlow import here).

Each experiment names a task (the function in `kcourse.runner` that trains one row),
its default settings, the rows to train (each a dict of settings that differ from the
defaults), what `--quick` shrinks, and the course's reference figure. Adding an
experiment is adding an entry.
"""

import itertools
import os

LOSS_NAMES = ("cross_entropy", "svm")
A1_SETTINGS = [(0.0, 0.1), (0.0, 0.001), (0.1, 0.001), (1.0, 0.001)]  # (lambda, eta)

LINEAR_DEFAULTS = {
    "data": "a1",            # split preset: a1 | search | full
    "loss": "cross_entropy",  # cross_entropy | svm
    "lambda": 0.0,           # weight of the L2 penalty lambda * ||W||^2
    "eta": 0.001,            # learning rate
    "epochs": 40,
    "batch_size": 100,
    "init": "gaussian",      # gaussian | xavier | he
    "sigma": 0.01,           # std of the gaussian init
    "decay": 1.0,            # step decay: eta is multiplied by `decay` ...
    "decay_every": 1,        # ... every `decay_every` epochs
    "flip": False,           # augmentation: random left-right flips of training images
}

# both losses, with and without lambda, on the first 20 dimensions of 5 images; h = 1e-5
# because at 1e-6 float64 round-off alone reaches ~1e-6 on the smallest kernel gradients
LINEAR_GRADCHECK = {"rows": [{"loss": loss, "lambda": lam}
                             for loss in LOSS_NAMES for lam in (0.0, 0.1)],
                    "dims": 20, "examples": 5, "threshold": 1e-6, "h": 1e-5}

EXPERIMENTS = {
    "a1": {
        "description": "One-layer classifier, 4 (lambda, eta) settings x {cross-entropy, SVM}",
        "reference": "DD2424 A1: 38.83% test for lambda=0, eta=.001 (cross-entropy)",
        "task": "linear",
        "defaults": LINEAR_DEFAULTS,
        "rows": [{"loss": loss, "lambda": lam, "eta": eta}
                 for loss in LOSS_NAMES for lam, eta in A1_SETTINGS],
        "quick": {"epochs": 2, "limit": 1000, "rows": 2},
        "gradcheck": LINEAR_GRADCHECK,
    },
    "a1-best": {
        "description": "One-layer classifier with the bonus ideas: 49k train, Xavier init, "
                       "step decay, flips, grid over (lambda, eta), CE and SVM",
        "reference": "DD2424 A1 bonus: best public ~39.6-40.9% test",
        "task": "linear",
        "defaults": {**LINEAR_DEFAULTS, "data": "full", "init": "xavier", "epochs": 40,
                     "decay": 0.9, "flip": True},
        "rows": [{"loss": loss, "lambda": lam, "eta": eta}
                 for loss, lam, eta in itertools.product(LOSS_NAMES, (0.0, 0.01), (0.002, 0.005))],
        "select": "val_accuracy",  # the reported row of each loss: best on validation
        "quick": {"epochs": 1, "limit": 1000, "rows": 2},
        "gradcheck": LINEAR_GRADCHECK,
    },
}

# (check, message) for the settings a user may change with --set
CHECKS = {
    "eta": (lambda v: v > 0, "must be positive"),
    "lambda": (lambda v: v >= 0, "must be non-negative"),
    "epochs": (lambda v: v >= 1, "must be at least 1"),
    "batch_size": (lambda v: v >= 1, "must be at least 1"),
    "sigma": (lambda v: v > 0, "must be positive"),
    "decay": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "decay_every": (lambda v: v >= 1, "must be at least 1"),
    "data": (lambda v: v in ("a1", "search", "full"), "must be one of a1, search, full"),
    "loss": (lambda v: v in LOSS_NAMES, "must be " + " or ".join(LOSS_NAMES)),
    "init": (lambda v: v in ("gaussian", "xavier", "he"), "must be gaussian, xavier or he"),
}


class SettingError(ValueError):
    """A bad --set key or value; the message is one line for the user."""


def get(name):
    if name not in EXPERIMENTS:
        raise SettingError(f"unknown experiment {name!r}; `kcourse list` shows the "
                           f"experiments: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def run_dir(name, quick=False):
    """The default run directory of an experiment."""
    return os.path.join("runs", name + ("-quick" if quick else ""))


def parse_value(key, text, default):
    """Parse `text` to the type of `default` (bool, int, float or str)."""
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        return text
    except ValueError:
        raise SettingError(f"--set {key}={text}: expected a {type(default).__name__}") from None


def check(key, value):
    test, message = CHECKS.get(key, (lambda v: True, ""))
    if not test(value):
        raise SettingError(f"{key}={value} {message}")


def parse_sets(name, sets):
    """Parse `key=value` strings against the experiment's defaults."""
    defaults = get(name)["defaults"]
    overrides = {}
    for item in sets or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SettingError(f"--set {item!r}: expected key=value")
        if key not in defaults:
            raise SettingError(f"--set {key}: unknown key for {name}; known keys: "
                               f"{', '.join(sorted(defaults))}")
        overrides[key] = parse_value(key, text.strip(), defaults[key])
        check(key, overrides[key])
    return overrides


def resolve(name, overrides=None, quick=False):
    """The list of full row configurations to train, in order."""
    spec = get(name)
    rows = spec["rows"]
    extra = {}
    if quick:
        q = dict(spec.get("quick", {}))
        rows = rows[: q.pop("rows", len(rows))]
        extra = q
    configs = [{**spec["defaults"], **row, **extra, **(overrides or {})} for row in rows]
    for config in configs:
        for key, value in config.items():
            check(key, value)
    return configs
