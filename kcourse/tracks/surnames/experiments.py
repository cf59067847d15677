"""The surname experiments of DD2424 Assignment 3 (2019 edition), as plain data.

Accuracy is measured on the course's validation set: 252 names, 14 of each of the 18
languages (chance 5.6%). Searches never see those names: they select on an inner
validation split of 14 training names per class (`validation: inner`), and the
252-name figure of the best trial is measured once at the end.
"""

from kcourse.experiments import at_least, one_of, positive

COMPENSATIONS = ("none", "balanced", "weighted")

DEFAULTS = {
    "data": "dd2424",        # dd2424: the course's files | tutorial: the PyTorch set
    "validation": "course",  # course: the data's validation split | inner: 14 per class
                             # carved from the training names (searches)
    "k1": 5,                 # width of the first layer's filters (characters)
    "n1": 20,                # number of first-layer filters
    "k2": 3,                 # width of the second layer's filters
    "n2": 20,                # number of second-layer filters
    "conv": "matrix",        # matrix: kcourse.layers.MatrixConv1D | keras: keras Conv1D
    "dropout": 0.0,          # dropout before the dense layer
    "compensation": "none",  # none | balanced (sampling) | weighted (loss 1/(K n_y))
    "eta": 0.001,            # SGD learning rate
    "schedule": "constant",  # constant | cosine: eta decays to 0 over the updates
    "momentum": 0.9,         # SGD momentum rho
    "batch_size": 100,
    "updates": 20000,
    "eval_every": 500,       # updates between validation measures (and confusion PNGs)
    "members": 1,            # >1: an ensemble of networks (seeds seed, seed + 1, ...),
                             # their scores averaged
}

# the best trial of `kcourse tune a3-surnames-search` (24 random trials; README): inner
# validation 60.32% (trial 21)
SEARCHED = {"k1": 5, "n1": 200, "k2": 3, "n2": 200, "dropout": 0.4, "eta": 2.032e-3,
            "schedule": "constant", "compensation": "weighted", "updates": 4000}

SEARCH_SPACE = {
    "k1": [3, 4, 5, 6],
    "n1": [20, 50, 100, 200],
    "k2": [2, 3, 4, 5],
    "n2": [20, 50, 100, 200],
    "eta": {"log": [1e-3, 3e-2]},
    "dropout": [0.0, 0.2, 0.4],
    "compensation": ["balanced", "weighted"],
    "updates": [4000, 8000],
    "schedule": ["constant", "cosine"],
}

QUICK = {"updates": 40, "eval_every": 20, "rows": 2}

EXPERIMENTS = {
    "a3-surnames": {
        "description": "Two-layer ConvNet k1=5, k2=3, n1=n2=20, 20,000 updates: no "
                       "compensation, balanced sampling, weighted loss",
        "reference": "DD2424 A3 (2019): 43.65% balanced vs 28.57% unbalanced (validation)",
        "defaults": DEFAULTS,
        "rows": [{"compensation": c} for c in COMPENSATIONS],
        "quick": QUICK,
        # h = 1e-4, eps = 1e-6: float64 round-off of the cost (~3; up to ~30 with
        # the class weights) over 2h is 1e-12 to 1e-10 at h = 1e-5, and some entries
        # (a rare character at one position of one name) have gradients of ~1e-7,
        # whose relative error then reads 1e-5 however right the gradient is (checked
        # against a NumPy forward pass of the same network); the network is piecewise
        # linear before the softmax, so a larger h costs little. Entries whose gradient
        # is below eps are compared in absolute terms (|analytic - numeric| < 1e-12)
        "gradcheck": {"examples": 6, "threshold": 1e-6, "h": 1e-4, "eps": 1e-6,
                      "rows": [{"compensation": "none"}, {"compensation": "weighted"}],
                      "n1": 4, "n2": 3},
    },
    "a3-surnames-search": {
        "description": "KerasTuner random search over k1, k2, n1, n2, eta, its schedule, "
                       "dropout, compensation and updates, selected on 14 training "
                       "names per class",
        "reference": "DD2424 A3 (2019): best public 48.0% (k1=k2=3, n1=n2=40)",
        # Keras' Conv1D computes the same function as the hand-written MatrixConv1D
        # (tested) and trains 4x faster at 100 filters (the course's dense MF matrix is
        # mostly zeros): the search uses it, the best run uses the course's layer
        "defaults": {**DEFAULTS, "validation": "inner", "conv": "keras"},
        "rows": [{}],
        "search": {"type": "random", "space": SEARCH_SPACE, "trials": 24,
                   "objective": "val_accuracy"},
        "quick": {**QUICK, "trials": 2,
                  "space": {**SEARCH_SPACE, "n1": [4, 8], "n2": [4, 8], "updates": [40]}},
    },
    "a3-surnames-best": {
        "description": "The searched architecture and training on all training names, "
                       "an ensemble of 5 such networks (seeds 0-4, scores averaged)",
        "reference": "DD2424 A3 (2019): best public 48.0% (validation)",
        "defaults": {**DEFAULTS, **SEARCHED, "members": 5},
        "rows": [{}],
        "quick": QUICK,
    },
}

CHECKS = {
    "data": one_of("dd2424", "tutorial"),
    "validation": one_of("course", "inner"),
    "k1": at_least(1),
    "n1": at_least(1),
    "k2": at_least(1),
    "n2": at_least(1),
    "conv": one_of("matrix", "keras"),
    "dropout": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "compensation": one_of(*COMPENSATIONS),
    "eta": positive(),
    "schedule": one_of("constant", "cosine"),
    "momentum": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "batch_size": at_least(1),
    "updates": at_least(1),
    "eval_every": at_least(1),
    "members": at_least(1),
}

# the two convolutions must leave at least one position of the course's 19-character
# names (other data: checked against its own length when the model is built)
RULES = ((lambda c: c["data"] != "dd2424" or c["k1"] + c["k2"] - 2 < 19,
          "k1={k1} and k2={k2} leave no position of a 19-character name (k1 + k2 must be "
          "at most 20)"),)

# what each setting means (`kcourse list EXP`)
SETTINGS = {
    "data": "dd2424: the course's files | tutorial: the PyTorch char-RNN tutorial's set",
    "validation": "course: the data's validation split | inner: 14 names per class carved "
                  "from the training names (searches)",
    "k1": "width of the first layer's filters (characters)",
    "n1": "number of first-layer filters",
    "k2": "width of the second layer's filters",
    "n2": "number of second-layer filters",
    "conv": "matrix: kcourse.layers.MatrixConv1D (the course's) | keras: keras Conv1D",
    "dropout": "dropout rate before the dense layer",
    "compensation": "class imbalance: none | balanced (sampling) | weighted (loss "
                    "1/(K n_y))",
    "eta": "SGD learning rate",
    "schedule": "constant | cosine (eta decays to 0 over the updates)",
    "momentum": "SGD momentum rho",
    "batch_size": "names per update",
    "updates": "number of updates",
    "eval_every": "updates between validation measures (and confusion-matrix PNGs)",
    "members": "networks in the row: above 1 an ensemble (seeds seed, seed + 1, ...) "
               "whose scores are averaged",
}
