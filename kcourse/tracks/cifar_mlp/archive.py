"""The served graph of an image classifier: raw uint8 images in, class probabilities
and names out, the training set's standardisation baked in."""

import os

import keras
import numpy as np
import tensorflow as tf

from kcourse.data import CLASS_NAMES
from kcourse.serving import checked

IMAGE_SHAPE = (32, 32, 3)


def classifier_archive(model, mean, std, class_names=CLASS_NAMES, image_shape=IMAGE_SHAPE,
                       tta=False):
    """An `ExportArchive` serving a classifier on raw images and on feature vectors.

    `serving_default` takes uint8 images `image_shape` (0-255), `features` the
    standardised vectors (`(x / 255 - mean) / std`, flattened HWC); both return
    `probabilities`, `class_id` and `class_name`. The model may take the vectors (an
    MLP) or the images (a ConvNet: the vectors are reshaped for it). With `tta`, the
    probabilities are the mean of the image's and its left-right mirror's."""
    mean = tf.constant(np.asarray(mean, np.float32).reshape(-1))
    std = tf.constant(np.asarray(std, np.float32).reshape(-1))
    names = tf.constant(list(class_names))
    dim = int(mean.shape[0])
    image_shape = tuple(int(v) for v in image_shape)
    model_shape = [-1, *[int(v) for v in model.input_shape[1:]]]
    what = "RGB" if image_shape[-1] == 3 else "gray"
    shape_text = ", ".join(str(v) for v in image_shape)

    def classify(x):
        x = tf.reshape(x, model_shape)
        probabilities = tf.nn.softmax(tf.cast(model(x, training=False), tf.float32))
        if tta:
            flipped = tf.reverse(tf.reshape(x, [-1, *image_shape]), axis=[2])
            flipped = tf.nn.softmax(tf.cast(model(tf.reshape(flipped, model_shape),
                                                  training=False), tf.float32))
            probabilities = (probabilities + flipped) / 2
        return probabilities

    def from_features(features):
        features = checked(features, [dim], f"features must be finite float32 (batch, {dim}): "
                                            "standardised image vectors",
                           lambda f: tf.reduce_all(tf.math.is_finite(f)))
        probabilities = classify(features)
        class_id = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(names, class_id)}

    def from_images(images):
        # a float image in [0, 1] cast to uint8 on its way in (NumPy arrays are) is all 0s
        # and 1s: refused rather than classified
        images = checked(images, image_shape, f"images must be uint8 (batch, {shape_text}): "
                                              f"raw {what} pixels, 0-255 (not scaled to "
                                              "[0, 1])",
                         lambda i: tf.reduce_all(tf.reduce_max(i, axis=[1, 2, 3]) > 1))
        x = tf.reshape(tf.cast(images, tf.float32) / 255.0, [-1, dim])
        return from_features((x - mean) / std)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", from_images,
                         [tf.TensorSpec((None, *image_shape), tf.uint8, name="images")])
    archive.add_endpoint("features", from_features,
                         [tf.TensorSpec((None, dim), tf.float32, name="features")])
    return archive


def archive(row_dir, info):
    """The `ExportArchive` of a run's row: the model of `model.keras` and the training
    statistics of `preprocessing.npz`."""
    model = keras.saving.load_model(os.path.join(row_dir, "model.keras"), safe_mode=True)
    stats = np.load(os.path.join(row_dir, "preprocessing.npz"))
    return classifier_archive(model, stats["mean"], stats["std"])
