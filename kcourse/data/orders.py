"""Epoch orders: the sequence in which a training loop visits the examples.

`uniform_orders(n, seed)` gives one uniformly random permutation of `range(n)` per
epoch, reshuffled every epoch, as an endless dataset; the same seed gives the same
sequence of permutations, and `skip(k)` starts at epoch k (exact resume).
"""

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
