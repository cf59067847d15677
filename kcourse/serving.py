"""Export a trained run as a SavedModel for TensorFlow Serving, or as ONNX.

`export(run_dir, out_dir)` writes `out_dir/<experiment>/<version>/`, the layout that
TensorFlow Serving watches (`--model_base_path=out_dir/<experiment>`). The served
graph needs neither kcourse nor Python preprocessing. The run's track builds it
(`archive(row_dir, info)` of its TensorFlow side); the built-in tracks serve:

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
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from kcourse.errors import SettingError
from kcourse.experiments import track_of
from kcourse.runs.layout import run_row, write_json

FORMATS = ("saved_model", "onnx")
ONNX_OPSET = 17


def checked(x, shape, message, condition=None):
    """`x`, usable only after its shape past the batch axis is checked to be `shape` (any
    rank, e.g. a single image without its batch axis, is caught) and, if given,
    `condition(x)` holds; else an InvalidArgumentError with `message`, before any op
    reads `x`."""
    # the shape as it comes, not as the signature declares it: the declared rank would
    # let TensorFlow fold the checks below into constants (a single image without its
    # batch axis would then fail with "Incompatible shapes" instead of `message`)
    dims = tf.shape(tf.raw_ops.PlaceholderWithDefault(input=x, shape=None))
    # the shape padded (or cut) to the expected rank, so that comparing it never fails
    padded = tf.pad(dims, [[0, tf.maximum(len(shape) + 1 - tf.size(dims), 0)]])
    ok = tf.logical_and(tf.equal(tf.size(dims), len(shape) + 1),
                        tf.reduce_all(tf.equal(padded[1:len(shape) + 1], shape)))
    checks = [tf.debugging.Assert(ok, [message, "got shape", tf.shape(x)])]
    if condition is not None:
        with tf.control_dependencies(checks):
            checks.append(tf.debugging.Assert(condition(x), [message]))
    with tf.control_dependencies(checks):
        return tf.identity(x)


checked_shape = checked  # its old name


def refusal(error):
    """The one line a served graph's refusal means: the message of the `checked`
    assertion that failed (and the shape it got), else the error's first line."""
    found = re.search(r"assertion failed: \[(.*?)\](?: \[got shape\] \[([^\]]*)\])?",
                      error.message)
    if not found:
        return error.message.splitlines()[0]
    return found.group(1) + (f" (got shape {found.group(2).replace(' ', ' x ')})"
                             if found.group(2) else "")


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


def export(run_dir, out_dir, version=None, row=None, format="saved_model", name=None,
           allow_diverged=False):
    """Export the model of a finished run for serving.

    Args:
        run_dir: the run directory (`kcourse run ... --out`).
        out_dir: the model base directory; the model goes to `out_dir/<name>/<version>/`.
        version: version number (default: one more than the highest already there,
            claimed atomically, so that concurrent exports get different versions).
        row: which row of the run (default: the best, see `kcourse.runs.run_row`).
        format: `"saved_model"` (TensorFlow Serving) or `"onnx"` (`model.onnx`
            in the version directory; classifiers only).
        name: the model's name, a plain name (default: the experiment's name, with
            "-onnx" for ONNX, so that the two formats never share a model's versions).
        allow_diverged: export a row whose training diverged (refused otherwise).

    Returns:
        The directory written. A failed export leaves nothing behind.
    """
    if format not in FORMATS:
        raise SettingError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise SettingError(f"--name {name!r}: a model name is a plain name (letters, "
                           "digits, '.', '_', '-'), not a path")
    if version is not None and int(version) < 1:
        raise SettingError(f"version must be a positive integer, got {version}")
    info, row_dir = run_row(run_dir, row)
    if info.get("diverged") and not allow_diverged:
        raise SettingError(f"row {info['index']} of {run_dir} diverged in training; "
                           "export it anyway with --allow-diverged, or choose a row with "
                           "--row")
    track = track_of(info["experiment"])
    if format not in track.formats:
        raise SettingError(f"{info['experiment']} exports as {' or '.join(track.formats)}, "
                           f"not {format}")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise SettingError(f"OUT_DIR {out_dir} is a file, not a directory")
    model_dir = os.path.join(out_dir, name or info["experiment"] + (
        "-onnx" if format == "onnx" else ""))  # a server's model: versions of one format
    if version is not None and os.path.exists(os.path.join(model_dir, str(int(version)))):
        raise SettingError(f"{os.path.join(model_dir, str(int(version)))} exists already: "
                           "serving versions are immutable; give another --version or leave "
                           "it out for the next one")
    made = [d for d in (out_dir, model_dir) if not os.path.exists(d)]
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as error:
        raise SettingError(f"cannot create {model_dir} ({error.strerror})") from None
    if not os.access(model_dir, os.W_OK):
        raise SettingError(f"{model_dir} is not writable")
    try:
        try:
            archive = track.module().archive(row_dir, info)
        except (OSError, ValueError) as error:
            raise SettingError(f"the model of {row_dir} cannot be loaded ({type(error).__name__}"
                               f"); train that row again with kcourse run --fresh-row "
                               f"{info['index']}") from None
        with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
            saved_model = os.path.join(tmp, "saved_model")
            archive.write_out(saved_model, verbose=False)
            if format == "onnx":
                os.makedirs(os.path.join(tmp, "onnx"))
                to_onnx(saved_model, os.path.join(tmp, "onnx", "model.onnx"))
                saved_model = os.path.join(tmp, "onnx")
            extra = os.path.join(saved_model, "assets.extra" if format == "saved_model" else "")
            write_json(os.path.join(extra, "kcourse_export.json"),
                       {"run_dir": os.path.abspath(run_dir), "row": info["index"],
                        "tag": info["tag"], "experiment": info["experiment"],
                        "track": info["track"], "format": format})
            return _claim(saved_model, model_dir, version)
    except BaseException:
        for folder in reversed(made):  # what this export created, if still empty
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
        raise


def read_images(paths, height, width, channels, what):
    """`kcourse predict`'s image inputs: PNG, JPEG, GIF or BMP files of `height` x
    `width` pixels, decoded to `channels` (1: gray, 3: RGB; others converted), as one
    uint8 batch `(n, height, width, channels)`; `what` names them in the messages."""
    images = []
    for path in paths:
        try:
            image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                       expand_animations=False)
        except tf.errors.OpError as error:  # missing, a directory, unreadable, not an image
            raise SettingError(f"{path}: not a readable image file ({type(error).__name__})"
                               ) from None
        if tuple(image.shape[:2]) != (height, width):
            raise SettingError(f"{path} is {image.shape[1]}x{image.shape[0]} pixels; the "
                               f"model takes {width}x{height} {what}")
        images.append(image)
    return tf.stack(images)


def predict(run_dir, inputs, row=None, top=3, allow_diverged=False, draw=None):
    """The `top` classes, with probabilities, of every input, answered by the model a
    `kcourse export` of the run serves (the same graph, written and loaded here); for a
    track that finds objects (its module has `describe`), the objects found.

    Args:
        run_dir: the run directory.
        inputs: what the track classifies, as given on the command line (its
            `predict_inputs(inputs)` turns them into the served graph's input: names
            for the surname classifier, image files for the image classifiers).
        row: which row (default: the best).
        top: how many classes per input.
        allow_diverged: answer with a row whose training diverged (refused otherwise,
            as by `export`).
        draw: a folder to write each input with the objects found drawn
            (`<input name>_boxes.png`; tracks that find objects).

    Returns:
        `[(input, [(class name, probability), ...]), ...]`, or for a track that finds
        objects `[(input, [{"box", "class", "confidence"}, ...]), ...]`.
    """
    info, row_dir = run_row(run_dir, row)
    if info.get("diverged") and not allow_diverged:
        raise SettingError(f"row {info['index']} of {run_dir} diverged in training; use it "
                           "anyway with --allow-diverged, or choose a row with --row")
    if not inputs:
        raise SettingError("give at least one input to predict")
    if int(top) < 1:
        raise SettingError(f"--top must be at least 1, got {top}")
    impl = track_of(info["experiment"]).module()
    if not hasattr(impl, "predict_inputs"):
        raise SettingError(f"{info['experiment']} ({info['track']}) is not a classifier "
                           "that `kcourse predict` serves")
    if draw is not None and not hasattr(impl, "draw"):
        raise SettingError(f"--draw is for tracks that find objects; {info['experiment']} "
                           "classifies")
    import inspect

    takes_row = "row_dir" in inspect.signature(impl.predict_inputs).parameters
    tensor = (impl.predict_inputs(inputs, row_dir=row_dir) if takes_row
              else impl.predict_inputs(inputs))
    class_names = impl.class_names(row_dir)
    with tempfile.TemporaryDirectory(prefix="kcourse-predict-") as tmp:
        impl.archive(row_dir, info).write_out(tmp, verbose=False)
        served = tf.saved_model.load(tmp).signatures["serving_default"]
        name = next(iter(served.structured_input_signature[1]))
        try:
            outputs = {k: v.numpy() for k, v in served(**{name: tensor}).items()}
        except tf.errors.InvalidArgumentError as error:
            raise SettingError(f"the model refused the inputs: {refusal(error)}") from None
    if hasattr(impl, "describe"):  # objects: boxes, classes, confidences
        found = impl.describe(outputs, class_names)
        if draw is not None:
            os.makedirs(draw, exist_ok=True)
            impl.draw(np.asarray(tensor), found, [
                os.path.join(draw, os.path.splitext(os.path.basename(str(given)))[0] +
                             "_boxes.png") for given in inputs])
        return list(zip(inputs, found))
    answers = []
    for given, p in zip(inputs, outputs["probabilities"]):
        best = p.argsort()[::-1][:int(top)]
        answers.append((given, [(class_names[i], float(p[i])) for i in best]))
    return answers


def _claim(source, model_dir, version):
    """Move the finished export `source` into `model_dir/<version>` atomically (rename
    of a directory: it appears complete or not at all); with no version given, the
    next free one, retried if another export claims it first."""
    while True:
        number = next_version(model_dir) if version is None else int(version)
        target = os.path.join(model_dir, str(number))
        try:
            os.rename(source, target)  # fails if target exists (and is not empty)
            return target
        except OSError:
            if not os.path.exists(target):
                raise
            if version is not None:
                raise SettingError(f"{target} exists already: serving versions are "
                                   "immutable; give another --version or leave it out for "
                                   "the next one") from None
