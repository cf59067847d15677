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

MLP_DEFAULTS = {
    "data": "a1",
    "loss": "cross_entropy",
    "hidden": [50],          # hidden layer sizes
    "batch_norm": False,     # batch normalization before every hidden ReLU
    "dropout": 0.0,          # dropout rate after every hidden ReLU
    "init": "xavier",        # xavier = N(0, 1/fan_in) (A2) | he (A3) | gaussian (sigma)
    "sigma": 0.01,
    "lambda": 0.01,
    "eta_min": 1e-5,         # cyclical learning rate between eta_min ...
    "eta_max": 1e-1,         # ... and eta_max
    "n_s": 500,              # step size (updates); 0 = 2 * floor(n / batch_size)
    "cycles": 1,
    "policy": "triangular",  # triangular | triangular2 | exp_range
    "batch_size": 100,
    "flip": False,           # augmentation: random left-right flips
    "translate": 0,          # augmentation: random shifts of up to this many pixels
    "ensemble": False,       # evaluate the snapshot ensemble of the cycle ends
    "evals_per_cycle": 10,
}
A3_DEFAULTS = {**MLP_DEFAULTS, "data": "search", "hidden": [50, 50], "init": "he",
               "lambda": 0.005, "n_s": 2250, "cycles": 2}
MLP_QUICK = {"limit": 1000, "n_s": 20, "rows": 2}

# lambda found by `kcourse tune a2-lambda` / `kcourse tune a3-lambda` (see README)
# a2: 10^-2.714 with n_s 5 epochs per half cycle, best of 24 three-cycle trials (val 53.78%)
A2_SEARCHED_LAMBDA = 1.93e-3
A2_SEARCHED_N_S = 5 * (49000 // 100)  # 5 epochs of the full split: 2450 updates
A3_SEARCHED_LAMBDA = 7.2e-3  # 10^-2.14: best of 16 trials, validation 52.72%

# a lambda search: coarse log-grid, then random trials in the range of the best ones
LAMBDA_SEARCH = {"param": "lambda", "coarse_min": -5.0, "coarse_max": -1.0,
                 "coarse_values": 8, "fine_trials": 8, "fine_top": 3}

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

EXPERIMENTS.update({
    "a2-1cycle": {
        "description": "Two-layer net (m=50), cyclical learning rate, n_s=500, one cycle",
        "reference": "DD2424 A2: 45.85% test",
        "task": "mlp",
        "defaults": MLP_DEFAULTS,
        "rows": [{}],
        "quick": MLP_QUICK,
        "gradcheck": {"rows": [{"lambda": 0.0}, {"lambda": 0.01}], "dims": 20,
                      "examples": 5, "hidden": [10], "threshold": 1e-6, "h": 1e-5},
    },
    "a2-3cycles": {
        "description": "Two-layer net (m=50), cyclical learning rate, n_s=800, three cycles",
        "reference": "DD2424 A2: 47.47% test",
        "task": "mlp",
        "defaults": {**MLP_DEFAULTS, "n_s": 800, "cycles": 3},
        "rows": [{}],
        "quick": MLP_QUICK,
    },
    "a2-lambda": {
        "description": "Coarse-to-fine search for lambda of the two-layer net (kcourse tune)",
        "reference": "DD2424 A2: best lambda around 2e-3...3e-3 in public reports",
        "task": "mlp",
        # trials as long as the a2-final run (3 cycles): with 2 cycles the search
        # preferred a lambda too small for the longer final run. The step size is
        # searched too: 2 epochs per half cycle (the course's A2) or 5 (its A3)
        "defaults": {**MLP_DEFAULTS, "data": "search", "n_s": 0, "cycles": 3},
        "rows": [{}],
        "search": {**LAMBDA_SEARCH, "n_s_epochs": [2, 5]},
        "quick": {**MLP_QUICK, "coarse_values": 3, "fine_trials": 2},
    },
    "a2-final": {
        "description": "Two-layer net with the searched lambda and step size, 49k "
                       "training images, three cycles",
        "reference": "DD2424 A2: ~52% test (52.4% best public)",
        "task": "mlp",
        "defaults": {**MLP_DEFAULTS, "data": "full", "lambda": A2_SEARCHED_LAMBDA,
                     "n_s": A2_SEARCHED_N_S, "cycles": 3},
        "rows": [{}],
        "quick": MLP_QUICK,
    },
    "a2-best": {
        "description": "Wide two-layer net with dropout, flips and shifts, snapshot ensemble",
        "reference": "DD2424 A2 bonus: best public 57.0% (800 hidden + dropout)",
        "task": "mlp",
        # dropout .3 and lambda 3e-4: the first setting (.5, 5e-4) underfit (train 59.6%,
        # val 58.1%); this one reaches val 62.0% (README, a2-best)
        "defaults": {**MLP_DEFAULTS, "data": "full", "hidden": [2048], "dropout": 0.3,
                     "init": "he", "lambda": 3e-4, "eta_max": 0.05, "n_s": 1960,
                     "cycles": 5, "flip": True, "translate": 3, "ensemble": True},
        "rows": [{}],
        "quick": {**MLP_QUICK, "hidden": [64]},
    },
    "a3-3layer": {
        "description": "Three-layer net [50, 50], He init, with and without batch norm",
        "reference": "DD2424 A3: ~52% without BN, ~53.5% with BN",
        "task": "mlp",
        "defaults": A3_DEFAULTS,
        "rows": [{"batch_norm": False}, {"batch_norm": True}],
        "quick": MLP_QUICK,
        "gradcheck": {"rows": [{"batch_norm": True, "lambda": 0.0},
                               {"batch_norm": True, "lambda": 0.005},
                               {"batch_norm": False, "lambda": 0.005}],
                      "dims": 20, "examples": 10, "hidden": [20, 20], "threshold": 1e-5,
                      "h": 1e-5},
    },
    "a3-9layer": {
        "description": "Nine-layer net [50, 30, 20, 20, 10, 10, 10, 10], with and without BN",
        "reference": "DD2424 A3: ~41-46% without BN, ~51% with BN",
        "task": "mlp",
        "defaults": {**A3_DEFAULTS, "hidden": [50, 30, 20, 20, 10, 10, 10, 10]},
        "rows": [{"batch_norm": False}, {"batch_norm": True}],
        "quick": MLP_QUICK,
    },
    "a3-init": {
        "description": "Three-layer net, every weight N(0, sigma^2), with and without BN",
        "reference": "DD2424 A3: BN ~52% for every sigma; without BN small sigma collapses",
        "task": "mlp",
        "defaults": {**A3_DEFAULTS, "init": "gaussian"},
        "rows": [{"sigma": sigma, "batch_norm": bn}
                 for bn in (False, True) for sigma in (1e-1, 1e-3, 1e-4)],
        "quick": MLP_QUICK,
    },
    "a3-lambda": {
        "description": "Coarse-to-fine search for lambda of the 3-layer BN net (kcourse tune)",
        "reference": "DD2424 A3: lambda .005 is the course's starting point",
        "task": "mlp",
        "defaults": {**A3_DEFAULTS, "batch_norm": True, "n_s": 0},
        "rows": [{}],
        "search": LAMBDA_SEARCH,
        "quick": {**MLP_QUICK, "coarse_values": 3, "fine_trials": 2},
    },
    "a3-final": {
        "description": "Three-layer net with BN and the searched lambda, three cycles",
        "reference": "DD2424 A3: ~53.5% test",
        "task": "mlp",
        "defaults": {**A3_DEFAULTS, "data": "full", "batch_norm": True,
                     "lambda": A3_SEARCHED_LAMBDA, "n_s": 2450, "cycles": 3},
        "rows": [{}],
        "quick": MLP_QUICK,
    },
})

# character-level language models (course Assignment 4), trained through the text in order
CHAR_DEFAULTS = {
    "text": "tiny_shakespeare",  # TFDS dataset, or the path of a UTF-8 text file (--text)
    "cell": "vanilla",       # vanilla (hand-written, course) | lstm | gru
    "units": 100,            # m, size of the hidden state(s)
    "layers": 1,
    "embedding_dim": 0,      # 0: one-hot inputs (vanilla) / units (lstm, gru)
    "dropout": 0.0,
    "sigma": 0.01,           # init std of the vanilla RNN's weights
    "seq_length": 25,        # characters per update (truncated BPTT)
    "batch_size": 1,         # parallel contiguous streams of the text
    "optimizer": "adagrad",  # adagrad (hand-written) | rmsprop (its variant) | adam
    "eta": 0.1,
    "clip": 5.0,             # gradient clipping threshold ...
    "clip_mode": "value",    # ... element-wise (course) or by global norm
    "updates": 100000,
    "minutes": 0.0,          # stop after this much training time (0: no limit)
    "log_every": 100,        # smooth loss every ... updates
    "eval_every": 10000,     # validation loss and checkpoint every ... updates
    "sample_every": 10000,   # a printed sample every ... updates
    "sample_length": 200,
    "final_sample_length": 1000,  # sampled from the model with the best smooth loss
    "temperature": 1.0,
    "top_p": 1.0,
    "val_chars": 0,          # evaluate on the first ... validation characters (0: all)
    "select": "smooth_loss",  # the kept model: lowest smooth_loss (course) or val_loss
    "threads": 1,            # TensorFlow threads (0: its default); the course's batch of
                             # one runs ~1.5x faster on one thread (benchmarks/bench_rnn.py)
}
CHAR_QUICK = {"updates": 300, "eval_every": 100, "sample_every": 100, "sample_length": 40,
              "final_sample_length": 100, "val_chars": 5000}

EXPERIMENTS.update({
    "a4": {
        "description": "Vanilla RNN (m=100) on tiny_shakespeare, hand-written AdaGrad, "
                       "clip 5, 100,000 updates",
        "reference": "DD2424 A4: smooth loss ~47.6 after 30k updates on its book; a NumPy "
                     "twin reaches 49.3 after 100k on tiny_shakespeare",
        "task": "char",
        "defaults": CHAR_DEFAULTS,
        "rows": [{}],
        "quick": CHAR_QUICK,
        # m=5, 25 characters. At the course's sigma .01 the gradients of W are ~1e-8
        # and float64 round-off alone gives relative errors of 1e-5 (growing as h
        # shrinks), so the check runs at sigma .1 with h 1e-4 (errors ~1e-7)
        "gradcheck": {"rows": [{"sigma": 0.1}], "units": 5, "chars": 25, "threshold": 1e-6,
                      "h": 1e-4},
    },
    "a4-long": {
        "description": "The a4 vanilla RNN for 300,000 updates (~7 epochs), best model's "
                       "1,000-character sample",
        "reference": "DD2424 A4: ~39.5 after ~360k updates on its book; NumPy twin 47.55 "
                     "on tiny_shakespeare",
        "task": "char",
        "defaults": {**CHAR_DEFAULTS, "updates": 300000},
        "rows": [{}],
        "quick": CHAR_QUICK,
    },
    "char-lstm": {
        "description": "LSTM language model: mini-batches of parallel streams, dropout, "
                       "Adam, 20 minutes of CPU training",
        "reference": "beyond the course: a small GPT on CPU reaches 1.88 nats/char "
                     "validation (nanoGPT's shakespeare_char)",
        "task": "char",
        "defaults": {**CHAR_DEFAULTS, "cell": "lstm", "units": 384, "layers": 2,
                     "embedding_dim": 64, "dropout": 0.25, "seq_length": 100,
                     "batch_size": 64, "optimizer": "adam", "eta": 2e-3, "clip": 50.0,
                     "clip_mode": "norm", "updates": 1000000, "minutes": 20.0, "threads": 0,
                     "select": "val_loss", "eval_every": 200, "sample_every": 2000},
        "rows": [{}],
        "quick": {**CHAR_QUICK, "units": 32, "batch_size": 8, "seq_length": 25,
                  "minutes": 0.0},
    },
})

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
    "hidden": (lambda v: len(v) > 0 and min(v) >= 1, "must be a list of positive sizes"),
    "dropout": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "eta_min": (lambda v: v >= 0, "must be non-negative"),
    "eta_max": (lambda v: v > 0, "must be positive"),
    "n_s": (lambda v: v >= 0, "must be a non-negative number of updates"),
    "cycles": (lambda v: v >= 1, "must be at least 1"),
    "policy": (lambda v: v in ("triangular", "triangular2", "exp_range"),
               "must be triangular, triangular2 or exp_range"),
    "translate": (lambda v: 0 <= v <= 8, "must be 0 to 8 pixels"),
    "evals_per_cycle": (lambda v: v >= 1, "must be at least 1"),
    "cell": (lambda v: v in ("vanilla", "lstm", "gru"), "must be vanilla, lstm or gru"),
    "units": (lambda v: v >= 1, "must be at least 1"),
    "layers": (lambda v: v >= 1, "must be at least 1"),
    "embedding_dim": (lambda v: v >= 0, "must be non-negative (0: one-hot)"),
    "seq_length": (lambda v: v >= 1, "must be at least 1"),
    "optimizer": (lambda v: v in ("adagrad", "rmsprop", "adam"),
                  "must be adagrad, rmsprop or adam"),
    "clip": (lambda v: v > 0, "must be positive"),
    "clip_mode": (lambda v: v in ("value", "norm"), "must be value or norm"),
    "updates": (lambda v: v >= 1, "must be at least 1"),
    "minutes": (lambda v: v >= 0, "must be non-negative (0: no limit)"),
    "log_every": (lambda v: v >= 1, "must be at least 1"),
    "eval_every": (lambda v: v >= 1, "must be at least 1"),
    "sample_every": (lambda v: v >= 1, "must be at least 1"),
    "sample_length": (lambda v: v >= 1, "must be at least 1"),
    "final_sample_length": (lambda v: v >= 1, "must be at least 1"),
    "temperature": (lambda v: v >= 0, "must be non-negative (0: greedy)"),
    "top_p": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "val_chars": (lambda v: v >= 0, "must be non-negative (0: all)"),
    "select": (lambda v: v in ("smooth_loss", "val_loss"), "must be smooth_loss or val_loss"),
    "threads": (lambda v: v >= 0, "must be non-negative (0: TensorFlow's default)"),
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
        if isinstance(default, list):
            return [int(v) for v in text.split(",")]
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
        kind = ("comma-separated integers" if isinstance(default, list)
                else "a " + type(default).__name__)
        raise SettingError(f"--set {key}={text}: expected {kind}") from None


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
        q = {k: v for k, v in spec.get("quick", {}).items()
             if k not in spec.get("search", {})}
        rows = rows[: q.pop("rows", len(rows))]
        extra = q
    configs = [{**spec["defaults"], **row, **extra, **(overrides or {})} for row in rows]
    for config in configs:
        for key, value in config.items():
            check(key, value)
    return configs
