"""The ConvNet track's TensorFlow side: one row (a ConvNet trained from scratch or on
the body of another, with kcourse's `fit`), its figures and saved model, and the
served graph (raw uint8 images in, class probabilities and names out).

DIR/rows/<tag>/ holds the checkpoints, TensorBoard logs, model.keras,
preprocessing.npz (the training mean and std) and classes.json (the class names, the
image shape and whether test-time augmentation is on), which the served graph needs;
DIR/source/ the network trained first when `source=train`; DIR/figures/ the loss and
accuracy curves (`<tag>_loss.png`, `<tag>_accuracy.png`) and the test confusion matrix
(`<tag>_confusion.png`), and for transfer runs `transfer.png` (test accuracy against
the fraction of the labels used, one line per mode, redrawn after every row).
"""

import dataclasses
import math
import os

import keras
import numpy as np
import tensorflow as tf

from kcourse import plots
from kcourse.data import (CLASS_NAMES, InMemory, InMemoryBatches, batched, chain,
                          load_cifar10, load_mnist_canvases, random_cutout, random_flip,
                          random_shift)
from kcourse.errors import SettingError
from kcourse.runs.layout import read_json, run_row, write_json
from kcourse.schedules import OneCycle
from kcourse.tracks.cifar_convnet import experiments
from kcourse.tracks.cifar_convnet.model import convnet, transfer_net
from kcourse.tracks.cifar_mlp.archive import classifier_archive
from kcourse.training import fit, make_evaluator
from kcourse.training.checkpoints import save_arrays, save_model

EVAL_BATCH = 1000
TRAIN_EVAL_SIZE = 2000  # training metrics on the first this many training images
DIGITS = tuple(str(d) for d in range(10))
CLASS_SETS = {"all": tuple(range(10)), "0-4": tuple(range(5)), "5-9": tuple(range(5, 10))}

_DATA = {}


@dataclasses.dataclass
class ImageSplits:
    """A dataset's splits in memory: `x[split]` float32 images `(n, h, w, c)`
    standardised (`(x / 255 - mean) / std`), `y[split]` int class ids, `mean` and
    `std` of the shape of one image, the class names."""

    dataset: str
    x: dict
    y: dict
    mean: np.ndarray
    std: np.ndarray
    class_names: tuple

    @property
    def image_shape(self):
        return tuple(self.mean.shape)

    def sizes(self):
        return {split: len(y) for split, y in self.y.items()}


def data_for(config, data_dir):
    """The row's dataset, all classes (one kept in memory at a time)."""
    limit = config.get("limit") or None
    key = (config["dataset"], config["data"], data_dir, os.environ.get("TFDS_DATA_DIR"), limit)
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = load_images(config["dataset"], config["data"], data_dir, limit)
    return _DATA[key]


def load_images(dataset, preset="full", data_dir=None, limit=None):
    """CIFAR-10 (split `preset`, standardised by its training split's per-pixel mean
    and std) or MNIST digits (in [0, 1]) as `ImageSplits`."""
    if dataset == "mnist":
        digits = load_mnist_canvases("digits", data_dir=data_dir, limit=limit,
                                     tfds_dir=os.environ.get("TFDS_DATA_DIR"))
        shape = (28, 28, 1)
        return ImageSplits("mnist", dict(digits.x), {k: v.astype(np.int64)
                                                     for k, v in digits.y.items()},
                           np.zeros(shape, np.float32), np.ones(shape, np.float32), DIGITS)
    splits = load_cifar10(preset, data_dir=data_dir, limit=limit, flatten=False)
    x, y = {}, {}
    for split, name in (("train", "train"), ("val", "validation"), ("test", "test")):
        images, onehot = splits.numpy(split)
        x[name], y[name] = images, onehot.argmax(1).astype(np.int64)
    shape = (32, 32, 3)
    return ImageSplits("cifar10", x, y, splits.mean.reshape(shape), splits.std.reshape(shape),
                       tuple(CLASS_NAMES))


def select(data, classes, fraction=1.0):
    """The images of `classes` (ids, relabelled 0..k-1 in that order), and of the
    training split the first `ceil(fraction * n_c)` images of each class `c` (in
    stored order): `(x, y)` per split, `y` int."""
    classes = list(classes)
    lookup = np.full(len(data.class_names), -1)
    lookup[classes] = np.arange(len(classes))
    out = {}
    for split in data.y:
        y = lookup[data.y[split]]
        keep = y >= 0
        if split == "train" and fraction < 1:
            keep = np.zeros_like(keep)
            for c in range(len(classes)):
                where = np.flatnonzero(y == c)
                # round first: 0.07 * 100 is 7.000000000000001, whose ceil is 8
                keep[where[:math.ceil(round(fraction * len(where), 9))]] = True
        # every image kept (all classes, all labels): no copy of the split
        out[split] = (data.x[split], y) if keep.all() else (data.x[split][keep], y[keep])
    return out


def is_transfer(spec):
    """An experiment whose rows compare transfer modes or fractions of the labels."""
    return any("mode" in row or "fraction" in row for row in spec.get("rows", []))


# ----------------------------------------------------------------------------- training

def augment_for(config, seed):
    """The row's augmentation of training batches: flips, shifts, cutout (or None)."""
    return chain(random_flip(seed) if config["flip"] else None,
                 random_shift(seed + 1, config["translate"], "reflect")
                 if config["translate"] else None,
                 random_cutout(seed + 2, config["cutout"]) if config["cutout"] else None)


def updates_of(config, num_train):
    """Total updates of a row: `updates`, or `epochs` passes over `num_train` images."""
    return config["updates"] or config["epochs"] * -(-num_train // config["batch_size"])


def optimizer_for(config, total):
    """SGD with Nesterov momentum or Adam; the rate constant or one cycle
    (`kcourse.schedules.OneCycle`) over the `total` updates."""
    eta = config["eta"]
    if config["schedule"] == "one_cycle":
        eta = OneCycle(eta, total)
    decay = config["weight_decay"] or None
    if config["optimizer"] == "adam":
        return keras.optimizers.Adam(eta, weight_decay=decay)
    return keras.optimizers.SGD(eta, momentum=config["momentum"], nesterov=True,
                                weight_decay=decay)


def loss_for(config):
    return keras.losses.CategoricalCrossentropy(from_logits=True,
                                                label_smoothing=config["label_smoothing"])


def onehot(y, k):
    return np.eye(k, dtype=np.float32)[y]


def train_model(config, splits, k, row_dir, seed, verbose, model):
    """Train `model` on `splits` (`select`'s) with `fit`: the final model is kept (one
    cycle of the rate ends at 0). Returns the history."""
    x, y = splits["train"]
    if not len(y) or not len(splits["validation"][1]):
        raise SettingError(f"no training or validation images for these classes "
                           f"(sizes: { {s: len(v[1]) for s, v in splits.items()} })")
    total = updates_of(config, len(y))
    steps_per_epoch = -(-len(y) // config["batch_size"])
    train = InMemoryBatches(InMemory(tf.constant(x), tf.constant(onehot(y, k))),
                            config["batch_size"], seed, augment_for(config, seed))
    xv, yv = splits["validation"]
    val = batched(InMemory(tf.constant(xv), tf.constant(onehot(yv, k))), EVAL_BATCH)
    train_eval = batched(InMemory(tf.constant(x[:TRAIN_EVAL_SIZE]),
                                  tf.constant(onehot(y[:TRAIN_EVAL_SIZE], k))), EVAL_BATCH)
    minutes = config["time_limit"]
    return fit(model, loss_for(config), train, val, optimizer=optimizer_for(config, total),
               max_steps=total, eval_every=max(1, min(steps_per_epoch, total // 10)),
               train_eval=train_eval, time_limit=minutes * 60 if minutes else None,
               out_dir=row_dir, verbose=verbose)


def probabilities(model, x, tta=False, batch_size=EVAL_BATCH):
    """The model's class probabilities on standardised images `x`, in NumPy (Keras'
    `predict`: one compiled function per model); with `tta` the mean of those of each
    image and its left-right mirror."""
    if not len(x):
        return np.zeros((0, model.output_shape[-1]), np.float32)
    p = _softmax(model.predict(x, batch_size=batch_size, verbose=0))
    if tta:
        p = (p + _softmax(model.predict(x[:, :, ::-1], batch_size=batch_size, verbose=0))) / 2
    return p


def _softmax(logits):
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(-1, keepdims=True))
    return (z / z.sum(-1, keepdims=True)).astype(np.float32)


def source_model(row, data):
    """The network whose body a transfer row takes: trained first (into DIR/source/,
    on `source_classes`, kept for the run's next rows) or loaded from `source`."""
    config = row.config
    source = config["source"]
    if source != "train":
        path = source_model_path(source)
        return keras.saving.load_model(path, safe_mode=True), os.path.dirname(path)
    out = os.path.join(row.out, "source")
    path = os.path.join(out, "model.keras")
    if os.path.exists(path):
        return keras.saving.load_model(path, safe_mode=True), out
    classes = CLASS_SETS[config["source_classes"]]
    source_config = {**config, "classes": config["source_classes"], "fraction": 1.0,
                     "updates": 0, "epochs": config["source_epochs"], "mode": "scratch",
                     "time_limit": 0}
    splits = select(data, classes)
    if row.verbose:
        print(f"the source: {config['arch']} on classes {config['source_classes']}, "
              f"{len(splits['train'][1])} images, {source_config['epochs']} epochs, "
              f"into {out}")
    keras.utils.set_random_seed(row.seed)
    model = build_model(source_config, data, len(classes), row.seed)
    history = train_model(source_config, splits, len(classes), out, row.seed, row.verbose,
                          model)
    measured = {"val_accuracy": accuracy(model, *splits["validation"]),
                "train_seconds": history.seconds,
                "classes": [data.class_names[c] for c in classes]}
    save_model(model, path)
    write_json(os.path.join(out, "source.json"), measured)
    return model, out


def source_model_path(source):
    """The model.keras of `source`: a row directory, or a run directory's best row."""
    source = os.path.abspath(os.path.expanduser(source))
    if os.path.isfile(os.path.join(source, "model.keras")):
        return os.path.join(source, "model.keras")
    if not os.path.isfile(os.path.join(source, "metrics.json")):
        raise SettingError(f"source={source}: no model.keras there, nor a finished run "
                           "(metrics.json); give a run directory of this track or a row "
                           "directory (DIR/rows/<tag>), or source=train")
    return os.path.join(run_row(source)[1], "model.keras")


def build_model(config, data, k, seed):
    return convnet(config["arch"], data.image_shape, k, config["width"], seed)


def accuracy(model, x, y, tta=False):
    return float((probabilities(model, x, tta).argmax(1) == y).mean()) if len(y) else 0.0


def train_row(row):
    """Train and evaluate one row (a `kcourse.runs.RowContext`): the final model is
    measured once on the validation and test images (with and without flip
    test-time augmentation); save it, its preprocessing and its figures."""
    config, tag = row.config, row.tag
    title = f"{row.experiment} " + (tag.split("_", 1)[1] if "_" in tag else f"row {tag}")
    data = data_for(config, row.data_dir)
    classes = CLASS_SETS[config["classes"]]
    k = len(classes)
    splits = select(data, classes, config["fraction"])
    keras.utils.set_random_seed(row.seed)
    transfer = is_transfer(row.spec)
    result = {"train_images": int(len(splits["train"][1]))}
    if transfer:
        result.update(mode=config["mode"], fraction=config["fraction"])
    if config["mode"] == "scratch":
        model = build_model(config, data, k, row.seed)
    else:
        source, where = source_model(row, data)
        if any(layer.name == "body" for layer in source.layers):
            raise SettingError(f"source={config['source']} is itself a transferred network "
                               "(a frozen or fine-tuned row); transfer from its own source, "
                               "or from a network trained from scratch")
        if tuple(source.input_shape[1:]) != data.image_shape:
            raise SettingError(f"source={config['source']} takes images "
                               f"{tuple(source.input_shape[1:])}, this row's {data.dataset} "
                               f"images are {data.image_shape}: transfer from a run on the "
                               "same kind of images")
        model = transfer_net(source, k, config["mode"], config["body_scale"], row.seed)
        result["source_dir"] = os.path.abspath(where)
    history = train_model(config, splits, k, row.row_dir, row.seed, row.verbose, model)
    tta = bool(config["tta"])
    test_predictions = np.zeros(0, np.int64)
    for split, prefix in (("validation", "val_"), ("test", "test_")):
        x, y = splits[split]
        if not len(y):  # a small `limit` may leave a split without these classes
            continue
        p = probabilities(model, x, tta)
        result[prefix + "accuracy"] = float((p.argmax(1) == y).mean())
        if tta:
            result[prefix + "accuracy_no_tta"] = accuracy(model, x, y)
        if split == "test":
            test_predictions = p.argmax(1)
    updates = int(history.last.get("step", 0))
    result.update(parameters=int(model.count_params()), updates_done=updates,
                  diverged=bool(history.diverged), train_seconds=history.seconds,
                  images_per_second=(updates * config["batch_size"] / history.seconds
                                     if history.seconds else 0.0),
                  stopped_by_time_limit=bool(history.stopped))
    save_model(model, os.path.join(row.row_dir, "model.keras"))
    names = [data.class_names[c] for c in classes]
    save_arrays(os.path.join(row.row_dir, "preprocessing.npz"), mean=data.mean,
                std=data.std)
    write_json(os.path.join(row.row_dir, "classes.json"),
               {"class_names": names, "image_shape": list(data.image_shape), "tta": tta,
                "dataset": data.dataset})
    for metric in ("loss", "accuracy"):
        plots.plot_curves(history.rows, metric,
                          os.path.join(row.figures, f"{tag}_{metric}.png"),
                          title=f"{metric}: {title}", x="step")
    plots.plot_confusion(splits["test"][1], test_predictions, names,
                         os.path.join(row.figures, f"{tag}_confusion.png"),
                         title=f"test set: {title}")
    if transfer:
        draw_transfer(row.out)
    return result, history.rows


# ----------------------------------------------------------------------------- figures

def draw_transfer(run_dir, path=None):
    """`transfer.png`: test accuracy against the fraction of the labels used, one line
    per mode, from the rows finished so far (their result.json)."""
    rows_dir = os.path.join(run_dir, "rows")
    found = {}
    for tag in sorted(os.listdir(rows_dir)) if os.path.isdir(rows_dir) else []:
        result = os.path.join(rows_dir, tag, "result.json")
        if os.path.isfile(result):
            r = read_json(result)
            r = r.get("result", r)
            if "mode" in r and "fraction" in r and "test_accuracy" in r:
                found.setdefault(r["mode"], []).append((r["fraction"], r["test_accuracy"]))
    if not found:
        return None
    path = path or os.path.join(run_dir, "figures", "transfer.png")
    series = {mode: sorted(points) for mode, points in found.items()}
    return plots.plot_series(series, path, x_label="fraction of the training labels",
                             y_label="test accuracy", title="transfer: accuracy against "
                             "the labels used", log_x=True)


# ----------------------------------------------------------------------------- serving

def load_row(row_dir):
    model = keras.saving.load_model(os.path.join(row_dir, "model.keras"), safe_mode=True)
    return model, read_json(os.path.join(row_dir, "classes.json"))


def archive(row_dir, info):
    """The `ExportArchive` of a row: raw uint8 images in (32x32x3 for CIFAR-10,
    28x28x1 for MNIST), class probabilities and names out (with the row's flip
    test-time augmentation, if it had it)."""
    model, classes = load_row(row_dir)
    stats = np.load(os.path.join(row_dir, "preprocessing.npz"))
    return classifier_archive(model, stats["mean"], stats["std"], classes["class_names"],
                              image_shape=classes["image_shape"], tta=classes["tta"])


def predict_inputs(paths, row_dir=None):
    """`kcourse predict`'s inputs: image files (PNG, JPEG, GIF, BMP) of the row's
    image size (32x32 RGB for CIFAR-10, 28x28 gray for MNIST) as one uint8 batch."""
    from kcourse.serving import read_images

    shape = (32, 32, 3)
    if row_dir is not None:
        shape = tuple(read_json(os.path.join(row_dir, "classes.json"))["image_shape"])
    what = "RGB images (resize it first)" if shape[-1] == 3 else "gray digits (resize it first)"
    return read_images(paths, shape[0], shape[1], shape[2], what)


def class_names(row_dir):
    return read_json(os.path.join(row_dir, "classes.json"))["class_names"]
