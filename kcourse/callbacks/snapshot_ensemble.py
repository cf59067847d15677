"""Snapshot ensembles: the weights at the end of every learning-rate cycle, voting."""

import glob
import os

import keras
import numpy as np
import tensorflow as tf


class SnapshotEnsemble(keras.callbacks.Callback):
    """Keep a copy of the model's weights every `every` updates (the end of each cycle
    of a cyclical learning rate, where the rate is smallest).

    Works in the kcourse trainer and in `model.fit`: it reads the update counter of
    `optimizer` (default: the model's compiled optimizer) after each batch or chunk
    and takes a snapshot whenever the counter has crossed a multiple of `every`.

    Args:
        every: updates between snapshots, e.g. `2 * n_s` (one cycle).
        optimizer: the optimizer that trains the model (needed for the kcourse
            trainer, whose models are not compiled).
        directory: optional folder where every snapshot is also saved
            (`snapshot_<update>.npz`); snapshots already there are loaded at the start
            of training, so a resumed run keeps the cycles it had finished.

    Attributes:
        snapshots: list of `(update, weights)`; weights as from `model.get_weights()`
            (including batch-norm moving averages).

    Reference:
        G. Huang et al., "Snapshot Ensembles: Train 1, get M for free", ICLR 2017;
        DD2424 Assignment 2 (bonus).
    """

    def __init__(self, every, optimizer=None, directory=None):
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"every must be a positive number of updates, got {every}.")
        self.every = int(every)
        self.optimizer = optimizer
        self.directory = directory
        self.snapshots = []

    def _path(self, iterations):
        return os.path.join(self.directory, f"snapshot_{iterations:08d}.npz")

    def on_train_begin(self, logs=None):
        if self.directory and not self.snapshots:
            for path in sorted(glob.glob(os.path.join(self.directory, "snapshot_*.npz"))):
                with np.load(path) as f:
                    weights = [f[f"arr_{i}"] for i in range(len(f.files))]
                self.snapshots.append((int(path[-12:-4]), weights))

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.optimizer or self.model.optimizer
        iterations = int(optimizer.iterations.numpy())
        taken = self.snapshots[-1][0] // self.every if self.snapshots else 0
        if iterations // self.every > taken:
            weights = [w.copy() for w in self.model.get_weights()]
            self.snapshots.append((iterations, weights))
            if self.directory:
                os.makedirs(self.directory, exist_ok=True)
                tmp = self._path(iterations)[:-4] + f".tmp{os.getpid()}.npz"
                np.savez(tmp, *weights)  # then renamed: never a truncated snapshot
                os.replace(tmp, self._path(iterations))


def snapshot_scores(model, snapshots, x, batch_size=2000):
    """Softmax probabilities of every snapshot on `x`: array (snapshots, n, classes).

    The model's own weights are restored afterwards.
    """
    if not snapshots:
        raise ValueError("No snapshots: train for at least one full cycle first.")
    current = model.get_weights()
    predict = tf.function(lambda v: tf.nn.softmax(model(v, training=False)),
                          reduce_retracing=True)
    probs = []
    try:
        for weights in snapshots:
            model.set_weights(weights)
            probs.append(np.concatenate([predict(x[i:i + batch_size]).numpy()
                                         for i in range(0, len(x), batch_size)]))
    finally:
        model.set_weights(current)
    return np.stack(probs)


def ensemble_predict(probs, method="average"):
    """Class predictions of an ensemble from its members' probabilities.

    Args:
        probs: array (members, n, classes).
        method: `"average"` (argmax of the mean probability) or `"vote"` (the class
            most members predict; ties go to the class with the larger mean
            probability).
    """
    probs = np.asarray(probs)
    mean = probs.mean(axis=0)
    if method == "average":
        return mean.argmax(axis=1)
    if method == "vote":
        votes = np.stack([np.bincount(p, minlength=mean.shape[1]) for p in probs.argmax(2).T])
        return (votes + 0.5 * mean).argmax(axis=1)  # mean < 1 only breaks ties
    raise ValueError(f"Unknown method {method!r}: use 'average' or 'vote'.")


def ensemble_accuracy(model, snapshots, x, y):
    """Test accuracy of the snapshot ensemble, averaged and by vote, and of each member.

    Args:
        model: the trained model (its architecture; its weights are kept).
        snapshots: list of weight lists (e.g. `[w for _, w in callback.snapshots]`).
        x: inputs, y: one-hot or integer labels.
    """
    labels = np.asarray(y)
    labels = labels.argmax(1) if labels.ndim == 2 else labels
    probs = snapshot_scores(model, snapshots, np.asarray(x))
    return {"average": float((ensemble_predict(probs, "average") == labels).mean()),
            "vote": float((ensemble_predict(probs, "vote") == labels).mean()),
            "members": [float((p.argmax(1) == labels).mean()) for p in probs]}
