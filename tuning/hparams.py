"""A search's trials for TensorBoard's HParams dashboard: `DIR/hparams/<stage>-<trial>/`,
one run per finished trial with its hyperparameters and objective (rewritten whole at
the end of every search, so a resumed search lists each trial once).

    tensorboard --logdir DIR/hparams
"""

import os
import shutil

import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api


def log_hparams(trials, names, objective, out):
    """Write `trials` (rows with `stage`, `trial`, the `names` and `objective`)."""
    logdir = os.path.join(out, "hparams")
    shutil.rmtree(logdir, ignore_errors=True)
    for trial in trials:
        run = f"{trial['stage']}-{trial['trial']}"
        values = {n: trial[n] for n in names if isinstance(trial.get(n), (bool, int, float, str))}
        with tf.summary.create_file_writer(os.path.join(logdir, run)).as_default():
            hparams_api.hparams(values, trial_id=run)
            tf.summary.scalar(objective, trial[objective], step=1)
    return logdir
