"""The served graph of an image classifier: raw uint8 images in, class probabilities
and names out, the training set's standardisation baked in."""

import os

import keras
import numpy as np
import tensorflow as tf

from kcourse.data import CLASS_NAMES
from kcourse.serving import checked

IMAGE_SHAPE = (32, 32, 3)


def classifier_archive(model, mean, std, class_names=CLASS_NAMES):
    """An `ExportArchive` serving a classifier on raw images and on feature vectors."""
    mean = tf.constant(np.asarray(mean, np.float32))
    std = tf.constant(np.asarray(std, np.float32))
    names = tf.constant(list(class_names))
    dim = int(mean.shape[0])

    def from_features(features):
        features = checked(features, [dim], f"features must be finite float32 (batch, {dim}): "
                                            "standardised image vectors",
                           lambda f: tf.reduce_all(tf.math.is_finite(f)))
        probabilities = tf.nn.softmax(tf.cast(model(features, training=False), tf.float32))
        class_id = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(names, class_id)}

    def from_images(images):
        # a float image in [0, 1] cast to uint8 on its way in (NumPy arrays are) is all 0s
        # and 1s: refused rather than classified
        images = checked(images, IMAGE_SHAPE, "images must be uint8 (batch, 32, 32, 3): raw "
                                              "RGB pixels, 0-255 (not scaled to [0, 1])",
                         lambda i: tf.reduce_all(tf.reduce_max(i, axis=[1, 2, 3]) > 1))
        x = tf.reshape(tf.cast(images, tf.float32) / 255.0, [-1, dim])
        return from_features((x - mean) / std)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", from_images,
                         [tf.TensorSpec((None, *IMAGE_SHAPE), tf.uint8, name="images")])
    archive.add_endpoint("features", from_features,
                         [tf.TensorSpec((None, dim), tf.float32, name="features")])
    return archive


def archive(row_dir, info):
    """The `ExportArchive` of a run's row: the model of `model.keras` and the training
    statistics of `preprocessing.npz`."""
    model = keras.saving.load_model(os.path.join(row_dir, "model.keras"), safe_mode=True)
    stats = np.load(os.path.join(row_dir, "preprocessing.npz"))
    return classifier_archive(model, stats["mean"], stats["std"])
