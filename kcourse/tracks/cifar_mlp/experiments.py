"""The CIFAR-10 experiments of DD2424 Assignments 1-3, as plain data (no TensorFlow).

Each experiment names its `task` (`linear`: the one-layer classifier, `mlp`: a k-layer
net with a cyclical learning rate), its default settings, the rows to train (each the
settings that differ from the defaults), what `--quick` shrinks, and the course's
reference figure. A new experiment is a new entry.
"""

import itertools

from kcourse.experiments import at_least, non_negative, one_of, positive

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
# a2: 10^-2.458 with n_s 5 epochs per half cycle, best of 24 three-cycle trials (val 53.80%)
A2_SEARCHED_LAMBDA = 3.48e-3
A2_SEARCHED_N_S = 5 * (49000 // 100)  # 5 epochs of the full split: 2450 updates
A3_SEARCHED_LAMBDA = 5.95e-3  # 10^-2.226: best of 16 trials, validation 53.04%

# a lambda search: coarse log-grid, then random trials in the range of the best ones
LAMBDA_SEARCH = {"param": "lambda", "coarse_min": -5.0, "coarse_max": -1.0,
                 "coarse_values": 8, "fine_trials": 8, "fine_top": 3,
                 "objective": "val_accuracy"}

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
        "search": {**LAMBDA_SEARCH, "choices": {"n_s_epochs": [2, 5]}},
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

# INF265 project 1's L1 and L2 penalties on A2's two-layer net, trained as a2-final
# (49k images, three cycles of 5 epochs per half cycle): no penalty, L1 at three
# strengths, the searched L2, and both at two L1 strengths. `near_zero_weights`: the fraction of
# weight-matrix entries with |w| < 1e-3 at the end
L1L2_ROWS = [{"lambda": lam, "l1": l1}
             for lam, l1 in ((0.0, 0.0), (0.0, 1e-5), (0.0, 1e-4), (0.0, 1e-3),
                             (A2_SEARCHED_LAMBDA, 0.0), (A2_SEARCHED_LAMBDA, 1e-5),
                             (A2_SEARCHED_LAMBDA, 1e-4))]
EXPERIMENTS["inf265-l1l2"] = {
    "description": "The two-layer net (m=50) of a2-final with no weight penalty, L1 "
                   "(l1 * sum|W|, three strengths), L2 (the searched lambda) and both "
                   "(the elastic net): accuracy and the fraction of near-zero weights",
    "reference": "UiB INF265 project 1: L1 and L2 regularization (no published "
                 "figure); a2-final (L2 alone): 53.10% test",
    "task": "mlp",
    "defaults": {**MLP_DEFAULTS, "data": "full", "lambda": A2_SEARCHED_LAMBDA,
                 "n_s": A2_SEARCHED_N_S, "cycles": 3, "l1": 0.0},
    "rows": L1L2_ROWS,
    "quick": MLP_QUICK,
    "gradcheck": {"rows": [{"l1": 0.01, "lambda": 0.0}, {"l1": 0.01, "lambda": 0.01}],
                  "dims": 20, "examples": 5, "hidden": [10], "threshold": 1e-6,
                  "h": 1e-5},
}

# the rules of the settings a user may change with --set
CHECKS = {
    "eta": positive(),
    "lambda": non_negative(),
    "l1": non_negative(),
    "epochs": at_least(1),
    "batch_size": at_least(1),
    "sigma": positive(),
    "decay": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "decay_every": at_least(1),
    "data": (lambda v: v in ("a1", "search", "full"), "must be one of a1, search, full"),
    "loss": one_of(*LOSS_NAMES),
    "init": one_of("gaussian", "xavier", "he"),
    "hidden": (lambda v: (v >= 1 if isinstance(v, int) and not isinstance(v, bool)
                          else len(v) > 0 and min(v) >= 1),
               "must be a list of positive sizes (or one size: one hidden layer)"),
    "dropout": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "eta_min": non_negative(),
    "eta_max": positive(),
    "n_s": (lambda v: v >= 0, "must be a non-negative number of updates"),
    "cycles": at_least(1),
    "policy": one_of("triangular", "triangular2", "exp_range"),
    "translate": (lambda v: 0 <= v <= 8, "must be 0 to 8 pixels"),
    "evals_per_cycle": at_least(1),
}

# what each setting means (`kcourse list EXP`)
SETTINGS = {
    "data": "split preset: a1 (batch 1 / 2 / test, 10k each) | search (45k / 5k) | "
            "full (49k / 1k)",
    "loss": "cross_entropy | svm (multi-class SVM, the A1 bonus)",
    "lambda": "weight of the L2 penalty lambda * ||W||^2 (weights, not biases)",
    "l1": "weight of the L1 penalty l1 * sum|W| (weights, not biases; with lambda too: "
          "the elastic net)",
    "eta": "learning rate (linear classifiers)",
    "epochs": "passes over the training split (linear classifiers)",
    "batch_size": "examples per update",
    "init": "weight init: gaussian (std sigma) | xavier (N(0, 1/fan_in)) | he "
            "(N(0, 2/fan_in))",
    "sigma": "std of the gaussian init",
    "decay": "step decay: eta is multiplied by this ...",
    "decay_every": "... every this many epochs",
    "flip": "augmentation: random left-right flips of training images",
    "hidden": "hidden layer sizes, comma-separated (e.g. 50,50)",
    "batch_norm": "batch normalization before every hidden ReLU (A3)",
    "dropout": "dropout rate after every hidden ReLU",
    "eta_min": "cyclical learning rate: lowest rate",
    "eta_max": "cyclical learning rate: highest rate",
    "n_s": "cyclical step size in updates (half a cycle); 0 = 2 * floor(n / batch_size)",
    "cycles": "number of learning-rate cycles (the length of training)",
    "policy": "cycle shape: triangular | triangular2 (halving) | exp_range",
    "translate": "augmentation: random shifts of up to this many pixels",
    "ensemble": "evaluate the snapshot ensemble of the models at the cycle ends",
    "evals_per_cycle": "validation measures per cycle (history rows, curves)",
}

# the cyclical rate's bounds and step size searched jointly with lambda (random search;
# n_s of 2 or 5 epochs of the 45,000 search images, the course's A2 and A3 step sizes)
CLR_SPACE = {"lambda": {"log": [1e-4, 1e-2]}, "eta_min": {"log": [1e-6, 1e-4]},
             "eta_max": {"log": [3e-2, 3e-1]}, "n_s": [900, 2250]}
EXPERIMENTS["a2-clr-search"] = {
    "description": "Random search of the cyclical rate's bounds and step size jointly "
                   "with lambda, two-layer net (kcourse tune)",
    "reference": "DD2424 A2: eta_min 1e-5, eta_max 1e-1, n_s 2 epochs (the course's "
                 "setting)",
    "task": "mlp",
    "defaults": {**MLP_DEFAULTS, "data": "search", "cycles": 3},
    "rows": [{}],
    "search": {"type": "random", "trials": 24, "space": CLR_SPACE,
               "objective": "val_accuracy"},
    "quick": {**MLP_QUICK, "trials": 2, "space": {**CLR_SPACE, "n_s": [20, 50]}},
}

# the width and dropout of A2's best net (a2-best: 2048 units, dropout .3, lambda 3e-4),
# jointly with lambda; `hidden` as one number is one hidden layer of that size
WIDTH_SPACE = {"hidden": [256, 512, 1024, 2048], "dropout": {"range": [0.0, 0.5]},
               "lambda": {"log": [1e-5, 3e-3]}}
EXPERIMENTS["a2-width-dropout"] = {
    "description": "Random search of the width and dropout of A2's best net (one hidden "
                   "layer, flips and shifts) jointly with lambda (kcourse tune)",
    "reference": "DD2424 A2 bonus: best public 57.0% (800 hidden + dropout); a2-best: "
                 "2048 units, dropout .3, lambda 3e-4",
    "task": "mlp",
    "defaults": {**EXPERIMENTS["a2-best"]["defaults"], "data": "search", "cycles": 2,
                 "n_s": 1800, "ensemble": False},
    "rows": [{}],
    "search": {"type": "random", "trials": 12, "space": WIDTH_SPACE,
               "objective": "val_accuracy"},
    "quick": {**MLP_QUICK, "trials": 2,
              "space": {**WIDTH_SPACE, "hidden": [16, 32]}},
}
