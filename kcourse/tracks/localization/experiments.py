"""The object localization and detection experiments of UiB INF265 project 2, as plain
data.

The data are kcourse's own MNIST canvases (`kcourse.data.mnist_canvas`): 48x60 gray
canvases holding one digit or none (localization, 54,000 / 6,000 / 10,000) or 1 to 4
zeros and ones on a 2x3 grid of cells (detection, 27,000 / 3,000 / 5,000). The course's
scores: over the objects present (canvases for localization, grid cells for detection),
accuracy (detected, `p_c > 0.5`, with the right class), IoU (0 where missed) and their
mean, the score. Rows are compared, and the best kept, on the validation canvases; the
test canvases are measured once, at the end of each row.
"""

from kcourse.experiments import at_least, non_negative, one_of, positive

TASKS = ("localization", "detection")
ARCHS = ("lenet", "lenet_bn", "wide", "deep")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "cyclic")

DEFAULTS = {
    "task": "localization",  # localization: one digit or none | detection: a 2x3 grid
    "arch": "lenet",         # lenet: the course's LeNet5Conv | lenet_bn | wide | deep
    "optimizer": "sgd",      # sgd (with momentum) | adam
    "eta": 0.01,             # learning rate (the peak of a cyclic schedule)
    "momentum": 0.9,         # SGD momentum
    "schedule": "constant",  # constant | cosine (to 0) | cyclic (one cycle eta/10 -> eta -> eta/10)
    "weight_decay": 0.0,     # decoupled weight decay of the optimizer (0: none)
    "box_weight": 1.0,       # weight of the box MSE in the loss (1: the course's loss)
    "epochs": 20,
    "batch_size": 256,
    "eval_every": 0,         # updates between validation measures (0: every epoch)
    "limit": 0,              # keep only the first `limit` canvases of every split (0: all)
}

# the course's solution: LeNet5Conv, SGD 0.01 with momentum 0.9, batch 256; 20 epochs
# for localization, 100 for detection
COURSE = {"arch": "lenet"}

# the course's network and two of kcourse's: batch norm, one cycle of the rate peaking
# at 0.05 and the box term weighted 5x. A check on 5,000 canvases (3 epochs, batch 64):
# validation IoU .28 -> .46 (lenet_bn, weight 10) and .35 -> .48 (deep, weight 5), the
# accuracy lower after so few updates (not measured on full runs yet)
VARIANTS = [COURSE,
            {"arch": "lenet_bn", "schedule": "cyclic", "eta": 0.05, "box_weight": 5.0},
            {"arch": "deep", "schedule": "cyclic", "eta": 0.05, "box_weight": 5.0}]

# detection: the deep row runs 20 epochs, not 100 (at ~280 canvases/s on two CPU cores,
# 100 epochs would take over 2.5 hours)
DETECTION_ROWS = VARIANTS[:2] + [{**VARIANTS[2], "epochs": 20}]

QUICK = {"limit": 512, "epochs": 2, "batch_size": 64, "eval_every": 0}

# `kcourse tune inf265-localization-search`: the architecture and its training, trials
# of 5 epochs (a full row trains 20), scored by the best validation score
SEARCH_SPACE = {"arch": list(ARCHS), "eta": {"log": [0.003, 0.1]},
                "schedule": ["constant", "cyclic"], "box_weight": [1.0, 5.0, 10.0]}

EXPERIMENTS = {
    "inf265-localization": {
        "description": "One MNIST digit (or none) on a 48x60 noisy canvas: is there one, "
                       "its box and its class. The course's LeNet5Conv (SGD 0.01, momentum "
                       "0.9, 20 epochs), the same with batch norm, a cyclic rate and the "
                       "box loss weighted 5x, and a deeper ConvNet so trained",
        "reference": "course solution (validation): IoU .496, accuracy .819, score .657; "
                     "target: score >= 0.85 with IoU >= 0.75",
        "defaults": DEFAULTS,
        "rows": VARIANTS,
        "quick": QUICK,
    },
    "inf265-localization-search": {
        "description": "KerasTuner random search over the localization network (arch), "
                       "its rate and schedule and the weight of the box loss: 12 trials of "
                       "5 epochs, scored by the best validation score",
        "reference": "course solution (validation): score .657",
        "defaults": {**DEFAULTS, "epochs": 5},
        "rows": [{}],
        "search": {"type": "random", "space": SEARCH_SPACE, "trials": 12,
                   "objective": "val_score"},
        "quick": {**QUICK, "trials": 2, "space": {**SEARCH_SPACE, "arch": ["lenet", "lenet_bn"]}},
    },
    "inf265-detection": {
        "description": "1 to 4 zeros and ones on a 48x60 noisy canvas: per cell of a 2x3 "
                       "grid, is an object centred there, its box and its class. The "
                       "course's LeNet5Conv (SGD 0.01, momentum 0.9, 100 epochs), the same "
                       "with batch norm, a cyclic rate and the box loss weighted 5x, and a "
                       "deeper ConvNet so trained",
        "reference": "course solution (validation): IoU .150, accuracy .529, score .339; "
                     "target: score >= 0.65",
        "defaults": {**DEFAULTS, "task": "detection", "epochs": 100},
        "rows": DETECTION_ROWS,
        "quick": QUICK,
    },
}

CHECKS = {
    "task": one_of(*TASKS),
    "arch": one_of(*ARCHS),
    "optimizer": one_of(*OPTIMIZERS),
    "eta": positive(),
    "momentum": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "schedule": one_of(*SCHEDULES),
    "weight_decay": non_negative(),
    "box_weight": positive(),
    "epochs": at_least(1),
    "batch_size": at_least(1),
    "eval_every": non_negative(" (0: every epoch)"),
    "limit": non_negative(" (0: all canvases)"),
}

# what each setting means (`kcourse list EXP`)
SETTINGS = {
    "task": "localization: one digit or none per canvas, output (15,) | detection: 0s "
            "and 1s, output per cell of the 2x3 grid (2, 3, 7)",
    "arch": "lenet: the course's LeNet5Conv (conv 6@5x5, pool, ReLU, conv 16@5x5, pool, "
            "ReLU, conv 120 to the grid, ReLU, 1x1 conv) | lenet_bn: the same with batch "
            "norm after each conv | wide: lenet_bn with 32, 64 and 256 channels | deep: "
            "three 3x3 conv stages (32, 64, 128) with batch norm, conv 256 to the grid",
    "optimizer": "sgd: SGD with momentum | adam: Adam",
    "eta": "learning rate (the peak rate of a cyclic schedule)",
    "momentum": "SGD momentum (sgd only)",
    "schedule": "constant | cosine: decays to 0 over the updates | cyclic: one cycle "
                "eta/10 -> eta -> eta/10 over the updates",
    "weight_decay": "decoupled weight decay of the optimizer (0: none)",
    "box_weight": "weight of the box term (MSE of x, y, w, h) in the training loss: 1 is "
                  "the course's loss; rows are measured on the course's loss",
    "epochs": "passes over the training canvases",
    "batch_size": "canvases per update",
    "eval_every": "updates between validation measures (0: at the end of every epoch); "
                  "the row keeps the model of the best validation score",
    "limit": "only the first `limit` canvases of every split (0: all; quick runs)",
}
