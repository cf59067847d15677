"""String -> id tables for exported graphs."""

import tensorflow as tf


def static_table(keys, default_value):
    """A `tf.lookup.StaticHashTable` from `keys` (strings) to their positions (int64),
    `default_value` for any other string. Built under `tf.init_scope`, so that a module
    creating it lazily on its first call (even inside a trace) owns it, and a
    SavedModel or `keras.export.ExportArchive` tracking that module saves it."""
    keys = list(keys)
    with tf.init_scope():
        return tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string),
                                                tf.range(len(keys), dtype=tf.int64)),
            default_value=default_value)
