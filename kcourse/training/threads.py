"""TensorFlow's thread pools."""

import tensorflow as tf


def set_threads(threads):
    """Run TensorFlow ops on `threads` threads (intra- and inter-op; 0 keeps the
    default). The course's update (batch of one, m=100) is a long chain of tiny ops,
    faster on one thread than spread over several. Process-wide, and only possible
    before TensorFlow runs its first op: returns False (and changes nothing) after,
    unless the setting was already that."""
    if not threads:
        return True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow is already initialised: fine if already so
        return tf.config.threading.get_intra_op_parallelism_threads() == threads
    return True
