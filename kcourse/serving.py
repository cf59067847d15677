"""Export a trained run as a SavedModel for TensorFlow Serving, or as ONNX.

`export(run_dir, out_dir)` writes `out_dir/<experiment>/<version>/`, the layout that
TensorFlow Serving watches (`--model_base_path=out_dir/<experiment>`). The served
graph needs neither kcourse nor Python preprocessing. Its signatures:

Image classifiers (the CIFAR-10 experiments)
    `serving_default`: `images` uint8 (None, 32, 32, 3), raw pixels; the training
    set's feature-wise mean and std are constants of the graph.
    `features`: `features` float32 (None, 3072), already standardised vectors.
    Both return `probabilities` float32 (None, 10), `class_id` int64 (None,) and
    `class_name` string (None,).

Character-level language models
    `generate` (also `serving_default`): `prompt` string, `length` int32,
    `temperature` float32 (0: greedy), `seed` int64, all scalars; returns `text`
    string, the `length` characters that follow the prompt. The vocabulary lookup,
    the sampling loop and the decoding are graph ops; a character outside the
    vocabulary maps to the out-of-vocabulary id; `length` outside
    [1, `kcourse.sampling.MAX_LENGTH`] fails with an InvalidArgumentError that says so.

`format="onnx"` converts the classifier's `serving_default` with tf2onnx (from the
SavedModel; tf2onnx's `from_keras` does not handle Keras 3) into
`out_dir/<experiment>-onnx/<version>/model.onnx`, the layout of NVIDIA Triton's model
repositories; same input and output names.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from kcourse.data import CLASS_NAMES
from kcourse.data.text import Vocabulary
from kcourse.experiments import SettingError
from kcourse.sampling import MAX_LENGTH, TextGenerator

IMAGE_SHAPE = (32, 32, 3)
FORMATS = ("saved_model", "onnx")
ONNX_OPSET = 17


def run_row(run_dir, row=None):
    """`(metrics row, row directory)` of a finished run: row `row`, or by default the
    best one (classifiers: highest validation accuracy among the rows the experiment
    selected; character models: lowest validation loss)."""
    try:
        with open(os.path.join(run_dir, "metrics.json")) as f:
            metrics = json.load(f)
        rows = metrics["rows"]
        rows[0]
    except (OSError, ValueError, KeyError, IndexError):
        raise SettingError(f"{run_dir} holds no finished run (no metrics.json); give the "
                           "--out directory of a `kcourse run`") from None
    if row is None:
        candidates = [i for i, r in enumerate(rows) if not r.get("diverged")] or \
            list(range(len(rows)))
        if any(rows[i].get("selected") for i in candidates):
            candidates = [i for i in candidates if rows[i].get("selected")]
        if "val_loss_per_char" in rows[0]:
            row = min(candidates, key=lambda i: rows[i]["val_loss_per_char"])
        else:
            row = max(candidates, key=lambda i: rows[i].get("val_accuracy", 0.0))
    if not -len(rows) <= row < len(rows):
        raise SettingError(f"{run_dir} has rows 0 to {len(rows) - 1}, not {row}")
    row_dir = os.path.join(run_dir, "rows", rows[row]["tag"])
    if not os.path.exists(os.path.join(row_dir, "model.keras")):
        raise SettingError(f"{row_dir} has no model.keras: the row did not finish; run "
                           "the experiment again to resume it")
    return {**rows[row], "experiment": metrics.get("experiment", "model"),
            "index": row % len(rows)}, row_dir


def is_char_row(row_dir):
    """Whether a run's row holds a character model (it has a vocabulary) rather than an
    image classifier."""
    return os.path.exists(os.path.join(row_dir, "vocab.json"))


def load_row_model(row_dir):
    """The trained Keras model of a row, loaded in safe mode."""
    import kcourse

    kcourse.register_components()
    return keras.saving.load_model(os.path.join(row_dir, "model.keras"), safe_mode=True)


def checked_shape(x, shape, message):
    """`x`, usable only after its shape past the batch axis is checked to be `shape`
    (else an InvalidArgumentError with `message`, before any op reads `x`)."""
    check = tf.debugging.assert_equal(tf.shape(x)[1:], shape, message=message)
    with tf.control_dependencies([check]):
        return tf.identity(x)


def classifier_archive(model, mean, std, class_names=CLASS_NAMES):
    """An `ExportArchive` serving a classifier on raw images and on feature vectors."""
    mean = tf.constant(np.asarray(mean, np.float32))
    std = tf.constant(np.asarray(std, np.float32))
    names = tf.constant(list(class_names))
    dim = int(mean.shape[0])

    def from_features(features):
        features = checked_shape(features, [dim], f"features must be float32 (batch, {dim}): "
                                                  "standardised image vectors")
        probabilities = tf.nn.softmax(tf.cast(model(features, training=False), tf.float32))
        class_id = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(names, class_id)}

    def from_images(images):
        images = checked_shape(images, IMAGE_SHAPE, "images must be uint8 (batch, 32, 32, 3): "
                                                    "raw RGB pixels, 0-255")
        x = tf.reshape(tf.cast(images, tf.float32) / 255.0, [-1, dim])
        return from_features((x - mean) / std)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", from_images,
                         [tf.TensorSpec((None, *IMAGE_SHAPE), tf.uint8, name="images")])
    archive.add_endpoint("features", from_features,
                         [tf.TensorSpec((None, dim), tf.float32, name="features")])
    return archive


def char_archive(model, vocab, max_length=MAX_LENGTH):
    """An `ExportArchive` whose `generate` signature writes text in the graph."""
    generator = TextGenerator(model, vocab.chars, max_length)

    def generate(prompt, length, temperature, seed):
        return {"text": generator(prompt, length, temperature, seed, tf.constant(1.0))}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(generator)
    archive.add_endpoint("generate", generate,
                         [tf.TensorSpec([], tf.string, name="prompt"),
                          tf.TensorSpec([], tf.int32, name="length"),
                          tf.TensorSpec([], tf.float32, name="temperature"),
                          tf.TensorSpec([], tf.int64, name="seed")])
    return archive  # its first endpoint, `generate`, is also `serving_default`


def archive_of(row_dir):
    """The `ExportArchive` of a run's row (classifier or character model)."""
    model = load_row_model(row_dir)
    if is_char_row(row_dir):
        return char_archive(model, Vocabulary.load(os.path.join(row_dir, "vocab.json")))
    stats = np.load(os.path.join(row_dir, "preprocessing.npz"))
    return classifier_archive(model, stats["mean"], stats["std"])


def next_version(model_dir):
    """1 + the highest numeric version directory in `model_dir` (1 when none)."""
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()] \
        if os.path.isdir(model_dir) else []
    return max(versions, default=0) + 1


def to_onnx(saved_model_dir, path, opset=ONNX_OPSET):
    """Convert a SavedModel's `serving_default` to ONNX with tf2onnx's converter."""
    if importlib.util.find_spec("tf2onnx") is None:
        raise SettingError("ONNX export needs tf2onnx (and onnxruntime to run it): "
                           "pip install 'kcourse[onnx]'")
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", saved_model_dir,
               "--signature_def", "serving_default", "--opset", str(opset),
               "--output", path]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tf2onnx failed to convert {saved_model_dir}:\n{done.stderr[-3000:]}")
    return path


def export(run_dir, out_dir, version=None, row=None, format="saved_model", name=None):
    """Export the model of a finished run for serving.

    Args:
        run_dir: the run directory (`kcourse run ... --out`).
        out_dir: the model base directory; the model goes to `out_dir/<name>/<version>/`.
        version: version number (default: one more than the highest already there).
        row: which row of the run (default: the best, see `run_row`).
        format: `"saved_model"` (TensorFlow Serving) or `"onnx"` (`model.onnx`
            in the version directory; classifiers only).
        name: the model's name (default: the experiment's name, with "-onnx" for
            ONNX, so that the two formats never share a model's versions).

    Returns:
        The directory written.
    """
    if format not in FORMATS:
        raise SettingError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    info, row_dir = run_row(run_dir, row)
    if format == "onnx" and is_char_row(row_dir):
        raise SettingError("ONNX export covers the image classifiers; serve a character "
                           "model's in-graph generation as a SavedModel (the default "
                           "format)")
    model_dir = os.path.join(out_dir, name or info["experiment"] + (
        "-onnx" if format == "onnx" else ""))  # a server's model: versions of one format
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise SettingError(f"version must be a positive integer, got {version}")
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target):
        raise SettingError(f"{target} exists already: serving versions are immutable; "
                           "give another --version or leave it out for the next one")
    os.makedirs(model_dir, exist_ok=True)
    archive = archive_of(row_dir)
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
        saved_model = os.path.join(tmp, "saved_model")
        archive.write_out(saved_model, verbose=False)
        if format == "onnx":
            os.makedirs(os.path.join(tmp, "onnx"))
            to_onnx(saved_model, os.path.join(tmp, "onnx", "model.onnx"))
            saved_model = os.path.join(tmp, "onnx")
        extra = os.path.join(saved_model, "assets.extra" if format == "saved_model" else "")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "kcourse_export.json"), "w") as f:
            json.dump({"run_dir": os.path.abspath(run_dir), "row": info["index"],
                       "tag": info["tag"], "experiment": info["experiment"],
                       "format": format}, f, indent=2)
        shutil.move(saved_model, target)  # complete or absent: a server never sees half
    return target
