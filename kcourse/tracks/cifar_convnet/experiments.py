"""The ConvNet and transfer-learning experiments, as plain data (no TensorFlow).

CIFAR-10 images are kept 32x32x3, standardised with the training split's per-pixel
mean and std (`kcourse.data.load_cifar10(flatten=False)`); the `full` preset trains on
49,000 images and keeps 1,000 (the end of batch 5) to compare settings on (the final
model of a row is kept: one cycle of the rate ends at 0); the test batch is measured
once, at the end of each row. MNIST digits are
28x28x1 in [0, 1] (`kcourse.data.KcourseMnistDigits`: 54,000 / 6,000 / 10,000).

Transfer rows learn `classes` (e.g. CIFAR-10's 5-9) from a `fraction` of their
training images, from scratch or on the body of a network trained on other classes
(`source`: `train` trains it first, into DIR/source/, on `source_classes`; or a run or
row directory of this track). A new experiment is a new entry.
"""

from kcourse.experiments import at_least, non_negative, one_of, positive

DATASETS = ("cifar10", "mnist")
ARCHS = ("tutorial", "fast")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "one_cycle")
MODES = ("scratch", "frozen", "finetune")
CLASS_SETS = ("all", "0-4", "5-9")

DEFAULTS = {
    "dataset": "cifar10",    # cifar10 | mnist
    "data": "full",          # CIFAR-10 split preset: full (49k/1k) | search (45k/5k) | a1
    "arch": "fast",          # tutorial: the TF tutorial's net | fast: kcourse's ResNet-9 layout
    "width": 32,             # fast: channels of its first conv (stages: 2x, 4x, 8x)
    "optimizer": "sgd",      # sgd: SGD with Nesterov momentum | adam
    "eta": 0.4,              # learning rate (the peak of a one-cycle schedule)
    "momentum": 0.9,
    "weight_decay": 5e-4,    # decoupled weight decay of the optimizer (0: none)
    "schedule": "one_cycle",  # constant | one_cycle: eta/10 -> eta (first 25%) -> 0, linear
    "label_smoothing": 0.2,
    "epochs": 8,
    "updates": 0,            # total updates instead of epochs (0: use epochs)
    "batch_size": 512,
    "flip": True,            # augmentation: random left-right flips
    "translate": 2,          # augmentation: random shifts up to this many pixels (reflected border)
    "cutout": 0,             # augmentation: cutout square side in pixels (0: none)
    "tta": True,             # test-time augmentation: average with the flipped image
    "time_limit": 0,         # minutes of training after which it stops (0: none)
    "classes": "all",        # all | 0-4 | 5-9: the classes learned (relabelled 0..4)
    "fraction": 1.0,         # of the training images of each class used
    "mode": "scratch",       # scratch | frozen | finetune (on the body of `source`)
    "source": "train",       # train: train the source first (DIR/source/) | a run or row directory
    "source_classes": "0-4",  # classes the source is trained on (source=train)
    "source_epochs": 10,     # epochs of the source's training (source=train)
    "body_scale": 0.1,       # finetune: the body's gradient (learning rate) factor
    "limit": 0,              # keep the first `limit` images of every split (0: all)
}

# the TensorFlow tutorial: Adam, 10 epochs, batch 32, no augmentation
TUTORIAL = {"arch": "tutorial", "optimizer": "adam", "eta": 1e-3, "schedule": "constant",
            "weight_decay": 0.0, "label_smoothing": 0.0, "epochs": 10, "batch_size": 32,
            "flip": False, "translate": 0, "tta": False}

QUICK = {"limit": 512, "epochs": 1, "source_epochs": 1, "updates": 0, "batch_size": 64,
         "width": 8, "time_limit": 0}

TRANSFER = {"arch": "fast", "width": 16, "batch_size": 128, "updates": 600, "eta": 0.2,
            "epochs": 0, "classes": "5-9", "source_epochs": 10}
FRACTIONS = (0.01, 0.1, 1.0)

EXPERIMENTS = {
    "cnn-tutorial": {
        "description": "The TensorFlow CNN tutorial's network (3 convs, dense 64), Adam, "
                       "10 epochs, batch 32, no augmentation: the reference point",
        "reference": "TensorFlow CNN tutorial: 'over 70%' test accuracy",
        "defaults": {**DEFAULTS, **TUTORIAL},
        "rows": [{}],
        "quick": QUICK,
    },
    "cnn-fast": {
        "description": "kcourse's fast ConvNet (ResNet-9 layout, width 32, batch norm): "
                       "SGD with Nesterov momentum, one cycle of the rate, label smoothing "
                       "0.2, flips and 2-pixel shifts, flip test-time augmentation, sized "
                       "for a 30-minute training budget on 2 CPU cores",
        "reference": "Keras' cifar10_cnn example: 75% after 25 epochs, 79% after 50; "
                     "target: >= 80% test accuracy within 30 minutes of CPU training",
        "defaults": {**DEFAULTS, "time_limit": 30},
        "rows": [{}],
        "quick": QUICK,
    },
    "transfer-cifar": {
        "description": "Learn CIFAR-10's dog, frog, horse, ship and truck from 1%, 10% and "
                       "100% of their training images: from scratch, on the frozen body of "
                       "a network trained on airplane..deer, and fine-tuning that body at "
                       "0.1x the head's rate",
        "reference": "target: fine-tuning beats from-scratch by >= 10 points at 10%",
        "defaults": {**DEFAULTS, **TRANSFER},
        "rows": [{"mode": mode, "fraction": fraction}
                 for fraction in (0.1, 0.01, 1.0) for mode in MODES],
        "quick": {**QUICK, "updates": 4, "batch_size": 32, "rows": 3},
    },
    "transfer-mnist": {
        "description": "MNIST digits 5-9 on the body of a network trained on digits 0-4 "
                       "(frozen and fine-tuned), against from scratch; all their training "
                       "images",
        "reference": "Keras' mnist_transfer_cnn example: 99.2% on 5-9 after transfer; "
                     "target: >= 99.0%",
        "defaults": {**DEFAULTS, **TRANSFER, "dataset": "mnist", "source_epochs": 3,
                     "updates": 600, "translate": 2, "flip": False, "tta": False},
        "rows": [{"mode": mode} for mode in MODES],
        "quick": {**QUICK, "updates": 4, "batch_size": 32},
    },
}


def _fraction(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1


CHECKS = {
    "dataset": one_of(*DATASETS),
    "data": one_of("full", "search", "a1"),
    "arch": one_of(*ARCHS),
    "width": at_least(1),
    "optimizer": one_of(*OPTIMIZERS),
    "eta": positive(),
    "momentum": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "weight_decay": non_negative(),
    "schedule": one_of(*SCHEDULES),
    "label_smoothing": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "epochs": non_negative(" (0: give updates)"),
    "updates": non_negative(" (0: use epochs)"),
    "batch_size": at_least(1),
    "translate": non_negative(" (0: no shifts)"),
    "cutout": non_negative(" (0: no cutout)"),
    "time_limit": non_negative(" (0: no limit)"),
    "classes": one_of(*CLASS_SETS),
    "fraction": (_fraction, "must be a fraction in (0, 1]"),
    "mode": one_of(*MODES),
    "source_classes": one_of(*CLASS_SETS),
    "source_epochs": at_least(1),
    "body_scale": non_negative(),
    "limit": non_negative(" (0: all images)"),
}

RULES = (
    (lambda c: c["epochs"] > 0 or c["updates"] > 0,
     "epochs={epochs} and updates={updates}: give one of them above 0"),
    (lambda c: c["mode"] != "finetune" or c["optimizer"] != "adam" or c["body_scale"] == 1,
     "mode=finetune with optimizer=adam: Adam's steps ignore a scaled gradient, so "
     "body_scale={body_scale} would do nothing; use optimizer=sgd (or body_scale=1)"),
    (lambda c: c["mode"] == "scratch" or c["source"] != "train"
     or c["source_classes"] != c["classes"],
     "source_classes={source_classes} is the row's own classes={classes}: transfer needs "
     "the source trained on other classes"),
)

# what each setting means (`kcourse list EXP`)
SETTINGS = {
    "dataset": "cifar10 (32x32x3) | mnist (28x28x1 digits)",
    "data": "CIFAR-10 split preset: full (49,000 train / 1,000 validation) | search "
            "(45,000 / 5,000) | a1 (batch 1 / batch 2); the test batch always",
    "arch": "tutorial: the TensorFlow CNN tutorial's net | fast: kcourse's ResNet-9 layout "
            "(conv, three stages of conv + pool, two with a residual block; batch norm)",
    "width": "fast: channels of the first conv; the stages have 2x, 4x and 8x",
    "optimizer": "sgd: SGD with Nesterov momentum | adam",
    "eta": "learning rate (one_cycle: its peak)",
    "momentum": "SGD momentum",
    "weight_decay": "decoupled weight decay of the optimizer (0: none)",
    "schedule": "constant | one_cycle: linear from eta/10 up to eta over the first 25% of "
                "the updates, then linear down to 0",
    "label_smoothing": "label smoothing of the cross-entropy (0: none)",
    "epochs": "passes over the training images (when updates is 0)",
    "updates": "total updates (transfer rows: the same number whatever the fraction)",
    "batch_size": "images per update",
    "flip": "augmentation: random left-right flips",
    "translate": "augmentation: random shifts of up to this many pixels, border reflected",
    "cutout": "augmentation: a random square of this side set to the mean (0: none)",
    "tta": "test-time augmentation: the mean of the probabilities of the image and its "
           "mirror",
    "time_limit": "minutes of training after which it stops, measured (0: no limit)",
    "classes": "the classes learned: all | 0-4 | 5-9 (relabelled 0..4)",
    "fraction": "the fraction of each class's training images used (the first ones)",
    "mode": "scratch: a new network | frozen: the source's body, not trained, and a new "
            "head | finetune: all trained, the body at body_scale x the rate",
    "source": "the network transferred from: train (trained first, into DIR/source/, on "
              "source_classes) | a run directory of this track (its best row) | a row "
              "directory",
    "source_classes": "the classes the source is trained on (source=train)",
    "source_epochs": "epochs of the source's training (source=train)",
    "body_scale": "finetune: factor of the body's gradient (SGD: of its learning rate)",
    "limit": "only the first `limit` images of every split (0: all; quick runs)",
}
