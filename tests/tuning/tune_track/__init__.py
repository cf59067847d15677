"""A toy track for the distributed-search tests (`KCOURSE_TRACKS=tune_track`, with
`tests/` and `tests/tuning/` on PYTHONPATH): the toy net's lambda, coarse-to-fine over
4 + 2 = 6 trials, each trial also pausing `pause` seconds so that a test can stop a
worker in the middle of one."""

from kcourse.experiments import non_negative
from kcourse.tracks import Track
from toy_track import DEFAULTS, TRACK as TOY

EXPERIMENTS = {
    "toy-dist": {
        "description": "The toy net's lambda, coarse-to-fine, 6 short trials",
        "reference": "toy: nothing to reproduce",
        "defaults": {**DEFAULTS, "pause": 0.6},
        "rows": [{}],
        "search": {"param": "lambda", "coarse_min": -4.0, "coarse_max": -1.0,
                   "coarse_values": 4, "fine_trials": 2, "fine_top": 2,
                   "objective": "val_accuracy"},
    },
}

TRACK = Track(name="tune_toy", title="the toy track's distributed search (tests)",
              experiments=EXPERIMENTS,
              checks={**TOY.checks, "pause": non_negative()}, impl="tune_track.impl")
