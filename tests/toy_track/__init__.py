"""A toy track defined in the tests: proof that a new track is a new package, with no
edit of the CLI, the run directory, serving or tuning (`KCOURSE_TRACKS=toy_track`).

Three blobs in the plane, a one-hidden-layer net trained by kcourse's own loop.
TensorFlow-free, as a track's top level must be.
"""

from kcourse.experiments import at_least, non_negative, positive
from kcourse.tracks import Track

DEFAULTS = {"units": 8, "lambda": 0.0, "eta": 0.5, "epochs": 4, "batch_size": 20}

EXPERIMENTS = {
    "toy": {
        "description": "Three blobs, a small net, two widths",
        "reference": "toy: nothing to reproduce",
        "defaults": DEFAULTS,
        "rows": [{"units": 2}, {"units": 8}],
        "quick": {"epochs": 1, "rows": 1},
    },
    "toy-search": {
        "description": "Coarse-to-fine search of the toy net's lambda",
        "reference": "toy: nothing to reproduce",
        "defaults": DEFAULTS,
        "rows": [{}],
        "search": {"param": "lambda", "coarse_min": -4.0, "coarse_max": -1.0,
                   "coarse_values": 4, "fine_trials": 2, "fine_top": 2,
                   "objective": "val_accuracy"},
        "quick": {"coarse_values": 2, "fine_trials": 1},
    },
}

TRACK = Track(
    name="toy",
    title="a toy track defined in the tests",
    experiments=EXPERIMENTS,
    checks={"units": at_least(1), "lambda": non_negative(), "eta": positive(),
            "epochs": at_least(1), "batch_size": at_least(1)},
    impl="toy_track.impl",
    columns=("val_accuracy", "test_accuracy"),
)
