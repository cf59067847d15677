"""The toy track's TensorFlow side, its trials made observable for the tests:
`$TUNE_TRACK_LOG` gets a line (the trial's lambda) per finished training, and with
`$TUNE_TRACK_KILL_ONCE` (a file that does not exist yet) the first trial to start
creates that file and SIGKILLs its own process half way through; with
`$TUNE_TRACK_FAIL_ONCE` (likewise a file not there yet) the first trial to start
raises; with `$TUNE_TRACK_FAIL` set, every trial raises."""

import os
import signal
import time

from toy_track.impl import (apply_hyperparameters, build_model, evaluate_test, search_data,
                            train)

__all__ = ["apply_hyperparameters", "build_model", "evaluate_test", "search_data",
           "train_trial"]


def train_trial(config, data, model, seed, callbacks, verbose):
    time.sleep(config["pause"] / 2)
    if os.environ.get("TUNE_TRACK_FAIL"):
        raise RuntimeError("a toy trial failed")
    failing = os.environ.get("TUNE_TRACK_FAIL_ONCE")
    if failing:
        try:
            with open(failing, "x") as f:  # exactly one trial of the search raises
                f.write(f"{config['lambda']!r}")
        except FileExistsError:
            pass
        else:
            raise RuntimeError("a toy trial failed once")
    marker = os.environ.get("TUNE_TRACK_KILL_ONCE")
    if marker:
        try:
            with open(marker, "x") as f:  # exactly one trial of the search gets here
                f.write(os.environ.get("KERASTUNER_TUNER_ID", "?"))
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    history = train(config, data, model, seed, callbacks, verbose)
    time.sleep(config["pause"] / 2)
    if os.environ.get("TUNE_TRACK_LOG"):
        with open(os.environ["TUNE_TRACK_LOG"], "a") as f:
            f.write(f"{config['lambda']!r}\n")
    return {"val_accuracy": history.last["val_accuracy"]}
