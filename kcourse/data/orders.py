"""Epoch orders: the sequence in which a training loop visits the examples.

`uniform_orders(n, seed)` gives one uniformly random permutation of `range(n)` per
epoch, reshuffled every epoch, as an endless dataset; the same seed gives the same
sequence of permutations, and `skip(k)` starts at epoch k (exact resume).
`balanced_orders(labels, seed)` visits every class equally often (the same number of
examples of each class per epoch), and `BalancedSampler` hands those orders to
`InMemoryBatches`.
"""

import numpy as np
import tensorflow as tf


def uniform_orders(n, seed):
    """An endless dataset of int64 permutations of `range(n)`, one per epoch.

    Args:
        n: number of examples.
        seed: the shuffle seed.
    """
    order = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return order.batch(n).repeat()


def uniform_order_batches(n, batch_size, seed):
    """The same orders cut into batches of indices (the last batch may be smaller),
    one epoch per iteration: what a tf.data input pipeline gathers from."""
    order = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return order.batch(batch_size)


def _class_counts(labels, per_class, draws, num_classes=None):
    """The labels as an array and the per-class sizes, checked; `per_class` resolved
    (default: the smallest class's size)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels must be a non-empty 1-D array of integer class ids.")
    classes, counts = np.unique(labels, return_counts=True)
    if num_classes is not None and (len(classes) != num_classes or classes[0] != 0
                                    or classes[-1] != num_classes - 1):
        raise ValueError(f"balanced sampling needs examples of every one of the "
                         f"{num_classes} classes, labels 0..{num_classes - 1}; found "
                         f"{len(classes)} classes, {classes.min()}..{classes.max()}.")
    per_class = int(counts.min()) if per_class is None else int(per_class)
    if not 1 <= per_class <= counts.min():
        raise ValueError(f"per_class must be in [1, {counts.min()}] (the smallest class has "
                         f"{counts.min()} examples), got {per_class}.")
    if int(draws) < 1:
        raise ValueError(f"draws must be at least 1, got {draws}.")
    return labels, classes, counts, per_class


def balanced_orders(labels, seed, per_class=None, draws=1):
    """An endless dataset of epoch orders that visit every class equally often.

    Each epoch draws `per_class` examples of every class without replacement (default:
    the size of the smallest class), a fresh random subset for each class and epoch,
    and visits them in a random order: the class-balanced sampling of DD2424
    Assignment 3 (2019), "each epoch sample the same number of names from every
    class". Epoch `e` depends only on `(seed, e)` (stateless random numbers), so
    `skip(k)` starts at epoch k and resumes exactly.

    Args:
        labels: integer class labels of the examples, 1-D.
        seed: the sampling seed.
        per_class: examples of each class per draw, at most the smallest class's size.
        draws: balanced draws per epoch order: an order is `draws` independent draws
            (each `per_class` examples of every class) visited in one random order, so
            that a training "epoch" of a small `per_class` is not a handful of updates.
    """
    labels, classes, counts, per_class = _class_counts(labels, per_class, draws)
    draws = int(draws)
    rank = np.searchsorted(classes, labels)  # 0..K-1
    by_class = np.argsort(rank, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # the positions, in `by_class`, of the first `per_class` examples of every class
    picks = (starts[:, None] + np.arange(per_class)[None, :]).reshape(-1)
    rank_sorted = tf.constant(rank[by_class], tf.float64)
    by_class = tf.constant(by_class, tf.int64)
    picks = tf.constant(picks, tf.int64)
    n, size = labels.size, picks.shape[0] * draws

    def draw(key):
        # shuffle within each class: sort by class, then by a uniform key in [0, 1)
        noise = tf.random.stateless_uniform([n], key, dtype=tf.float64)
        within = tf.argsort(rank_sorted + noise, stable=True)
        return tf.gather(by_class, tf.gather(within, picks))

    def epoch(e):
        key = tf.stack([tf.cast(seed, tf.int64), e * (draws + 1)])
        chosen = tf.concat([draw(key + [0, j]) for j in range(draws)], axis=0)
        order = tf.argsort(tf.random.stateless_uniform([size], key + [0, draws]))
        return tf.gather(chosen, order)

    return tf.data.Dataset.range(1 << 62).map(epoch)


class BalancedSampler:
    """The epoch orders of `balanced_orders` as a sampler for `InMemoryBatches`.

    Args:
        labels: integer class labels of the examples.
        per_class: examples of each class per draw (default: the smallest class's size).
        draws: balanced draws per epoch (see `balanced_orders`).
        num_classes: if given, every class 0..num_classes-1 must have examples (else
            one class missing from the labels would silently drop out of the balance).
    """

    def __init__(self, labels, per_class=None, draws=1, num_classes=None):
        self.labels, classes, _, self.per_class = _class_counts(labels, per_class, draws,
                                                                num_classes)
        self.draws = int(draws)
        self.size = self.per_class * len(classes) * self.draws

    @classmethod
    def one_pass(cls, labels, num_classes=None):
        """A sampler whose epoch is about one pass over the examples: as many draws
        of the smallest class's size from every class as make `len(labels)`."""
        labels, classes, counts, _ = _class_counts(labels, None, 1, num_classes)
        draws = max(1, round(labels.size / (counts.min() * len(classes))))
        return cls(labels, draws=draws, num_classes=num_classes)

    def orders(self, seed):
        return balanced_orders(self.labels, seed, self.per_class, self.draws)
