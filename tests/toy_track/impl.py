"""The toy track's TensorFlow side."""

import os

import keras
import numpy as np
import tensorflow as tf

from kcourse.data import InMemoryBatches, batched
from kcourse.losses import SoftmaxCrossEntropy
from kcourse.training import evaluate, fit


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = (np.array([[0, 3], [3, 0], [-3, -3]])[labels] + rng.normal(size=(n, 2)))
    return tf.data.Dataset.from_tensor_slices((x.astype("float32"),
                                               np.eye(3, dtype="float32")[labels]))


def search_data(config, data_dir):
    return {"train": blobs(200, 0), "val": blobs(100, 1), "test": blobs(100, 2)}


def build_model(config, seed):
    regularizer = keras.regularizers.L2(config["lambda"]) if config["lambda"] else None
    inputs = keras.Input((2,), name="features")
    hidden = keras.layers.Dense(config["units"], "relu", kernel_regularizer=regularizer,
                                kernel_initializer=keras.initializers.GlorotNormal(seed))(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, kernel_initializer=(
        keras.initializers.GlorotNormal(seed + 1)))(hidden))


def apply_hyperparameters(config, values, data):
    return {**config, **values}


def train(config, data, model, seed, callbacks=None, verbose=0, out_dir=None):
    keras.utils.set_random_seed(seed)
    return fit(model, SoftmaxCrossEntropy(),
               InMemoryBatches(data["train"], config["batch_size"], seed),
               batched(data["val"], 100), optimizer=keras.optimizers.SGD(config["eta"]),
               epochs=config["epochs"], out_dir=out_dir, callbacks=callbacks,
               verbose=verbose)


def train_trial(config, data, model, seed, callbacks, verbose):
    history = train(config, data, model, seed, callbacks, verbose)
    return {"val_accuracy": history.last["val_accuracy"]}


def evaluate_test(config, data, model):
    return evaluate(model, SoftmaxCrossEntropy(), batched(data["test"], 100))


def train_row(row):
    data = search_data(row.config, row.data_dir)
    model = build_model(row.config, row.seed)
    history = train(row.config, data, model, row.seed, verbose=row.verbose,
                    out_dir=row.row_dir)
    model.save(os.path.join(row.row_dir, "model.keras"))
    return {"val_accuracy": history.last["val_accuracy"],
            "test_accuracy": evaluate_test(row.config, data, model)["accuracy"]}, history.rows


def archive(row_dir, info):
    model = keras.saving.load_model(os.path.join(row_dir, "model.keras"))
    export = keras.export.ExportArchive()
    export.track(model)
    export.add_endpoint(
        "serving_default",
        lambda features: {"probabilities": tf.nn.softmax(model(features, training=False))},
        [tf.TensorSpec((None, 2), tf.float32, name="features")])
    return export
