"""The localization track's TensorFlow side: one row (a ConvNet trained with kcourse's
`fit` on `LocalizationLoss`, the model of the best validation score kept), its figures
and saved model, and the served graph (raw uint8 canvases in, boxes in pixels out).

DIR/rows/<tag>/ holds the checkpoints, TensorBoard logs, model.keras and canvas.json
(the task and class names); DIR/figures/ the loss and score curves
(`<tag>_loss.png`, `<tag>_score.png`), validation canvases with their true (green) and
predicted (red) boxes (`<tag>_boxes.png`) and the worst predicted ones
(`<tag>_worst.png`).

Boxes, as served and drawn: pixels of the 48x60 canvas, corners `(x_min, y_min, x_max,
y_max)`, x along the width, origin at the top-left corner of the canvas; edges on pixel
borders (pixel `(r, c)` covers `[c, c + 1) x [r, r + 1)`). Detection's cells are listed
in row-major order: (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), each 24 pixels high
and 20 wide.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kcourse import plots
from kcourse.data import InMemory, InMemoryBatches, batched
from kcourse.data.mnist_canvas import CELL, GRID, HEIGHT, WIDTH, load_mnist_canvases
from kcourse.errors import SettingError
from kcourse.losses import LocalizationLoss
from kcourse.losses.localization import localization_loss_terms
from kcourse.metrics import BoxIoU, LocalizationScore, ObjectAccuracy, box_iou
from kcourse.runs.layout import read_json, write_json
from kcourse.schedules import CyclicLearningRate
from kcourse.serving import checked
from kcourse.tracks.localization.model import localization_net
from kcourse.training import fit, make_evaluator
from kcourse.training.checkpoints import save_model

EVAL_BATCH = 1000
TRAIN_EVAL_SIZE = 5000  # training metrics on the first this many training canvases
FIGURE_CANVASES = 24    # canvases in the boxes and worst-predictions figures
THRESHOLD = 0.5         # confidence above which an object is detected
CLASS_NAMES = {"localization": [str(d) for d in range(10)], "detection": ["0", "1"]}

_DATA = {}


def data_for(config, data_dir):
    """The row's `CanvasSplits` (kept for the next rows of the same task and limit)."""
    limit = config.get("limit") or None
    key = (config["task"], data_dir, os.environ.get("TFDS_DATA_DIR"), limit)
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = load_mnist_canvases(config["task"], data_dir=data_dir,
                                         tfds_dir=key[2], limit=limit)
    return _DATA[key]


class BoxWeightedLoss(LocalizationLoss):
    """`LocalizationLoss` with its box term weighted: per example (cell)
    `BCE + p_c * (box_weight * MSE + CE)`; `box_weight` 1 is the course's loss."""

    def __init__(self, box_weight=1.0, reduction="sum_over_batch_size",
                 name="box_weighted_localization_loss", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.box_weight = float(box_weight)

    def call(self, y_true, y_pred):
        loss = super().call(y_true, y_pred)
        if self.box_weight == 1.0:
            return loss
        y_true = keras.ops.convert_to_tensor(y_true)
        present = keras.ops.expand_dims(y_true[..., 0] > 0, -1)  # as LocalizationLoss:
        y_true = keras.ops.where(present, y_true, keras.ops.zeros_like(y_true))  # no NaN
        _, mse, _ = localization_loss_terms(y_true, y_pred)
        p = keras.ops.cast(y_true[..., 0], mse.dtype)
        extra = (self.box_weight - 1.0) * p * mse
        rank = len(extra.shape)
        if rank > 1:
            extra = keras.ops.sum(extra, axis=tuple(range(1, rank)))
        return loss + extra

    def get_config(self):
        return {**super().get_config(), "box_weight": self.box_weight}


def loss_for(config):
    """The training loss: the course's `LocalizationLoss`, or with `box_weight` != 1 its
    box term weighted (`BoxWeightedLoss`). Rows are measured on the course's loss."""
    weight = config.get("box_weight", 1.0)
    return LocalizationLoss() if weight == 1.0 else BoxWeightedLoss(weight)


def build_model(config, seed=None):
    return localization_net(config["task"], config["arch"], seed=seed)


def score_metrics():
    """The course's accuracy, IoU and score, accumulated in float64; their names give
    the history's `val_accuracy`, `val_iou` and `val_score`."""
    return [ObjectAccuracy(name="accuracy", dtype="float64"),
            BoxIoU(name="iou", dtype="float64"),
            LocalizationScore(name="score", dtype="float64")]


def updates_of(config, num_train):
    return config["epochs"] * -(-num_train // config["batch_size"])


def optimizer_for(config, total):
    """SGD with momentum or Adam, its rate constant, decaying (cosine, to 0) or one
    cycle eta/10 -> eta -> eta/10 over the `total` updates (`CyclicLearningRate`)."""
    eta = config["eta"]
    if config["schedule"] == "cosine":
        eta = keras.optimizers.schedules.CosineDecay(eta, total)
    elif config["schedule"] == "cyclic":
        eta = CyclicLearningRate(eta / 10, eta, max(1, -(-total // 2)))
    decay = config.get("weight_decay") or None
    if config["optimizer"] == "adam":
        return keras.optimizers.Adam(eta, weight_decay=decay)
    return keras.optimizers.SGD(eta, momentum=config["momentum"], weight_decay=decay)


def examples(splits, split, count=None):
    x, y = splits.x[split], splits.y[split]
    if count is not None:
        x, y = x[:count], y[:count]
    return InMemory(tf.constant(x), tf.constant(y))


def predict(model, x, batch_size=EVAL_BATCH):
    """The model's raw outputs on canvases `x` (float32 in [0, 1]), in NumPy."""
    run = tf.function(lambda b: model(b, training=False), reduce_retracing=True)
    outputs = [run(tf.constant(x[i:i + batch_size])).numpy()
               for i in range(0, len(x), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0,) + model.output_shape[1:])


# ----------------------------------------------------------------------------- decoding

def pixel_boxes(boxes, task):
    """Boxes `(..., 4)` `[x, y, w, h]` as the labels hold them (canvas-relative for
    localization; for detection `(..., 2, 3, 4)` in units of their cell) -> pixel
    corners `[x_min, y_min, x_max, y_max]`; detection's cells flattened to 6."""
    boxes = np.asarray(boxes, np.float64)
    if task == "localization":
        cx, cy = boxes[..., 0] * WIDTH, boxes[..., 1] * HEIGHT
        w, h = boxes[..., 2] * WIDTH, boxes[..., 3] * HEIGHT
    else:
        cx = (boxes[..., 0] + np.arange(GRID[1])) * CELL[1]
        cy = (boxes[..., 1] + np.arange(GRID[0])[:, None]) * CELL[0]
        w, h = boxes[..., 2] * CELL[1], boxes[..., 3] * CELL[0]
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    if task == "detection":
        corners = corners.reshape(corners.shape[:-3] + (GRID[0] * GRID[1], 4))
    return corners


def decode(outputs, task, threshold=THRESHOLD):
    """The model's raw outputs -> what the served graph returns, in NumPy: `boxes`
    (pixel corners), `confidence` (sigmoid of the p_c logit), `class_id`,
    `probabilities` (softmax of the class logits) and `detected` (confidence above
    `threshold`); localization `(n, ...)`, detection `(n, 6, ...)` (cells row-major)."""
    outputs = np.asarray(outputs, np.float64)
    logits = outputs[..., 5:]
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    confidence = 1 / (1 + np.exp(-outputs[..., 0]))
    decoded = {"boxes": pixel_boxes(outputs[..., 1:5], task), "confidence": confidence,
               "class_id": p.argmax(-1), "probabilities": p}
    if task == "detection":
        cells = GRID[0] * GRID[1]
        for key in ("confidence", "class_id"):
            decoded[key] = decoded[key].reshape(-1, cells)
        decoded["probabilities"] = p.reshape(-1, cells, p.shape[-1])
    decoded["detected"] = decoded["confidence"] > threshold
    return decoded


def detections(decoded, class_names, index, task, only_detected=True):
    """The boxes of canvas `index` of decoded outputs: `[(x0, y0, x1, y1, class name,
    confidence), ...]`, those above the threshold only unless `only_detected` is
    False."""
    boxes, confidence = decoded["boxes"][index], decoded["confidence"][index]
    classes, detected = decoded["class_id"][index], decoded["detected"][index]
    if task == "localization":
        boxes, confidence, classes, detected = (boxes[None], confidence[None],
                                                classes[None], detected[None])
    return [(*map(float, box), class_names[int(c)], float(p))
            for box, p, c, d in zip(boxes, confidence, classes, detected)
            if d or not only_detected]


def true_boxes(labels, class_names, task):
    """The true boxes of every canvas of `labels`: one list per canvas of
    `(x0, y0, x1, y1, class name)`."""
    labels = np.asarray(labels)
    corners = pixel_boxes(labels[..., 1:5], task)
    present, classes = labels[..., 0] > 0.5, np.rint(labels[..., 5]).astype(int)
    if task == "localization":
        corners, present, classes = corners[:, None], present[:, None], classes[:, None]
    else:
        present, classes = present.reshape(len(labels), -1), classes.reshape(len(labels), -1)
    return [[(*map(float, box), class_names[c]) for box, p, c in zip(bs, ps, cs) if p]
            for bs, ps, cs in zip(corners, present, classes)]


def canvas_quality(labels, outputs):
    """Per canvas, how right its prediction is, in [0, 1]: the mean over its cells (one
    for localization) of, where an object is, the course's score of that object
    ((right detection + IoU) / 2, IoU 0 where missed), and where none is, 1 unless an
    object is (falsely) detected. Its `iou` too (NaN without an object)."""
    labels, outputs = np.asarray(labels, np.float64), np.asarray(outputs, np.float64)
    present, detected = labels[..., 0] > 0.5, outputs[..., 0] > 0
    right = outputs[..., 5:].argmax(-1) == np.rint(labels[..., 5])
    iou = np.where(detected, np.asarray(box_iou(labels[..., 1:5], outputs[..., 1:5])), 0.0)
    quality = np.where(present, ((detected & right) + iou) / 2, 1.0 - detected)
    axes = tuple(range(1, quality.ndim))
    if axes:
        count = present.sum(axis=axes)
        mean_iou = np.where(count > 0, (iou * present).sum(axis=axes) / np.maximum(count, 1),
                            np.nan)
        return quality.mean(axis=axes), mean_iou
    return quality, np.where(present, iou, np.nan)


def false_alarm_rate(labels, outputs):
    """The fraction of the canvases (localization) or cells (detection) without an
    object where one is detected."""
    empty = np.asarray(labels)[..., 0] < 0.5
    if not empty.any():
        return 0.0
    return float((np.asarray(outputs)[..., 0] > 0)[empty].mean())


# ----------------------------------------------------------------------------- figures

def plot_predictions(x, labels, outputs, task, path, title, pick=None):
    """Canvases `pick` (default: the first ones) with their true and predicted boxes."""
    names = CLASS_NAMES[task]
    pick = np.arange(min(FIGURE_CANVASES, len(x))) if pick is None else np.asarray(pick)
    if not len(pick):
        return None
    decoded = decode(outputs[pick], task)
    quality, iou = canvas_quality(labels[pick], outputs[pick])
    truths = true_boxes(labels[pick], names, task)
    predicted = [[(*d[:4], f"{d[4]} {d[5]:.2f}") for d in detections(decoded, names, i, task)]
                 for i in range(len(pick))]
    titles = [f"#{i} score {q:.2f}" + ("" if np.isnan(u) else f" IoU {u:.2f}")
              for i, q, u in zip(pick, quality, iou)]
    return plots.plot_canvas_boxes(x[pick], truths, predicted, path, titles=titles,
                                   title=title)


def worst_canvases(labels, outputs, count=FIGURE_CANVASES):
    """The indices of the `count` canvases with the lowest quality (`canvas_quality`),
    worst first (ties in order)."""
    quality, _ = canvas_quality(labels, outputs)
    return np.argsort(quality, kind="stable")[:count]


# ----------------------------------------------------------------------------- training

def train_model(config, splits, row_dir, seed, verbose, callbacks=None, model=None):
    """Train the row's network (or `model`, built from `config`) with `fit` on
    `LocalizationLoss`, measuring the course's scores on the validation canvases (and
    the first training ones) at every evaluation point, and keep the weights of the best
    validation score. Returns `(model, history)`."""
    keras.utils.set_random_seed(seed)
    if model is None:
        model = build_model(config, seed)
    num_train = len(splits.y["train"])
    if not num_train or not len(splits.y["validation"]):
        raise SettingError(f"the {config['task']} canvases have an empty split: "
                           f"{splits.sizes()}")
    total = updates_of(config, num_train)
    optimizer = optimizer_for(config, total)
    train = InMemoryBatches(examples(splits, "train"), config["batch_size"], seed)
    history = fit(model, loss_for(config), train,
                  batched(examples(splits, "validation"), EVAL_BATCH),
                  optimizer=optimizer, epochs=config["epochs"],
                  train_eval=batched(examples(splits, "train", TRAIN_EVAL_SIZE), EVAL_BATCH),
                  metrics=score_metrics(), eval_every=config["eval_every"] or None,
                  keep_best=("val_score", "max"), out_dir=row_dir, callbacks=callbacks,
                  verbose=verbose)
    if history.best_weights is not None:  # the kept and reported model: the best one
        model.set_weights(history.best_weights)
    return model, history


def evaluate_split(model, splits, split):
    """Loss, accuracy, IoU and score of `model` on a split's canvases."""
    evaluator = make_evaluator(model, LocalizationLoss(), score_metrics())
    return evaluator(batched(examples(splits, split), EVAL_BATCH))


def train_row(row):
    """Train and evaluate one row (a `kcourse.runs.RowContext`): the model of the best
    validation score is kept, then measured once on the validation and test canvases;
    save it (model.keras, canvas.json) and its figures."""
    config, tag = row.config, row.tag
    title = tag.split("_", 1)[1] if "_" in tag else tag
    task = config["task"]
    splits = data_for(config, row.data_dir)
    model, history = train_model(config, splits, row.row_dir, row.seed, row.verbose)
    result = {"parameters": int(model.count_params())}
    outputs = {}
    for split, prefix in (("validation", "val_"), ("test", "test_")):
        if split not in splits.x or not len(splits.y[split]):
            continue
        measured = evaluate_split(model, splits, split)
        result.update({prefix + k: measured[k] for k in ("loss", "iou", "accuracy", "score")})
        outputs[split] = predict(model, splits.x[split])
        result[prefix + "false_alarm_rate"] = false_alarm_rate(splits.y[split],
                                                               outputs[split])
    num_train = len(splits.y["train"])
    updates = int(history.last.get("step", 0))
    result.update(best_updates=int(history.best_step), updates=updates,
                  diverged=bool(history.diverged), train_seconds=history.seconds,
                  images_per_second=(min(updates * config["batch_size"],
                                         config["epochs"] * num_train)
                                     / history.seconds if history.seconds else 0.0))
    save_model(model, os.path.join(row.row_dir, "model.keras"))
    write_json(os.path.join(row.row_dir, "canvas.json"),
               {"task": task, "class_names": CLASS_NAMES[task], "arch": config["arch"]})
    for metric in ("loss", "score"):
        plots.plot_curves(history.rows, metric,
                          os.path.join(row.figures, f"{tag}_{metric}.png"),
                          title=f"{metric}: {title}", x="step")
    x, y = splits.x["validation"], splits.y["validation"]
    plot_predictions(x, y, outputs["validation"], task,
                     os.path.join(row.figures, f"{tag}_boxes.png"),
                     title=f"validation canvases: {title}")
    plot_predictions(x, y, outputs["validation"], task,
                     os.path.join(row.figures, f"{tag}_worst.png"),
                     title=f"worst validation predictions: {title}",
                     pick=worst_canvases(y, outputs["validation"]))
    return result, history.rows


# ----------------------------------------------------------------------------- serving

def canvas_archive(model, task, class_names):
    """An `ExportArchive` serving the model on raw canvases.

    `serving_default`: `images` uint8 `(batch, 48, 60, 1)`, raw gray pixels 0-255;
    `with_threshold`: the same and `threshold` float32 scalar (serving_default uses
    0.5). Both return `boxes` float32 pixel corners `(x_min, y_min, x_max, y_max)`,
    `confidence` float32 (sigmoid of the p_c logit), `class_id` int64, `class_name`
    string, `probabilities` float32 (softmax of the class logits) and `detected` bool
    (confidence > threshold): localization `(batch, ...)`, detection `(batch, 6, ...)`,
    one entry per cell of the 2x3 grid, row-major (keep those `detected`)."""
    names = tf.constant(list(class_names))
    cells = GRID[0] * GRID[1]
    cols = tf.constant(np.arange(GRID[1]), tf.float32)
    rows = tf.constant(np.arange(GRID[0])[:, None], tf.float32)

    def serve(images, threshold):
        images = checked(images, [HEIGHT, WIDTH, 1], "images must be uint8 (batch, 48, 60, "
                                                     "1): raw gray canvases, 0-255")
        threshold = tf.reshape(tf.cast(threshold, tf.float32), [])
        out = tf.cast(model(tf.cast(images, tf.float32) / 255.0, training=False), tf.float32)
        x, y, w, h = (out[..., i] for i in range(1, 5))
        if task == "localization":
            cx, cy, w, h = x * WIDTH, y * HEIGHT, w * WIDTH, h * HEIGHT
        else:
            cx, cy = (x + cols) * CELL[1], (y + rows) * CELL[0]
            w, h = w * CELL[1], h * CELL[0]
        boxes = tf.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
        confidence = tf.sigmoid(out[..., 0])
        probabilities = tf.nn.softmax(out[..., 5:])
        if task == "detection":
            boxes = tf.reshape(boxes, [-1, cells, 4])
            confidence = tf.reshape(confidence, [-1, cells])
            probabilities = tf.reshape(probabilities, [-1, cells, len(class_names)])
        class_id = tf.argmax(probabilities, axis=-1)
        return {"boxes": boxes, "confidence": confidence, "class_id": class_id,
                "class_name": tf.gather(names, class_id), "probabilities": probabilities,
                "detected": confidence > threshold}

    spec = tf.TensorSpec((None, HEIGHT, WIDTH, 1), tf.uint8, name="images")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", lambda images: serve(images, THRESHOLD), [spec])
    archive.add_endpoint("with_threshold", serve,
                         [spec, tf.TensorSpec((), tf.float32, name="threshold")])
    return archive


def load_row(row_dir):
    """The model and canvas.json (task, class names) of a row directory."""
    model = keras.saving.load_model(os.path.join(row_dir, "model.keras"), safe_mode=True)
    return model, read_json(os.path.join(row_dir, "canvas.json"))


def archive(row_dir, info):
    model, canvas = load_row(row_dir)
    return canvas_archive(model, canvas["task"], canvas["class_names"])


def predict_inputs(paths):
    """`kcourse predict`'s inputs: PNG (or JPEG, GIF, BMP) files of 48x60 canvases
    (gray; colour images are converted) as one uint8 batch `(n, 48, 60, 1)`."""
    from kcourse.serving import read_images

    return read_images(paths, HEIGHT, WIDTH, 1, "gray canvases")


def class_names(row_dir):
    return read_json(os.path.join(row_dir, "canvas.json"))["class_names"]


def describe(outputs, class_names):
    """The served graph's outputs (NumPy) as one list per canvas of its detections:
    `{"box": [x_min, y_min, x_max, y_max] (pixels), "class": name, "confidence": p}`."""
    boxes, confidence = np.asarray(outputs["boxes"]), np.asarray(outputs["confidence"])
    classes, detected = np.asarray(outputs["class_id"]), np.asarray(outputs["detected"])
    if confidence.ndim == 1:  # localization: one box per canvas
        boxes, confidence, classes, detected = (boxes[:, None], confidence[:, None],
                                                classes[:, None], detected[:, None])
    return [[{"box": [round(float(v), 2) for v in b], "class": class_names[int(c)],
              "confidence": float(p)} for b, p, c, d in zip(bs, ps, cs, ds) if d]
            for bs, ps, cs, ds in zip(boxes, confidence, classes, detected)]


def draw(images, described, paths):
    """Write each canvas of `images` (uint8 `(n, 48, 60, 1)`) with its described
    detections (`describe`) drawn, to `paths` (PNG)."""
    images = np.asarray(images)
    for image, found, path in zip(images, described, paths):
        plots.plot_canvas_boxes(image[None], None, [[(*d["box"], f"{d['class']} "
                                                     f"{d['confidence']:.2f}")
                                                    for d in found]], path, columns=1)
    return list(paths)


# tuning hooks (tuning.search)
def search_data(config, data_dir):
    return data_for(config, data_dir)


def apply_hyperparameters(config, values, splits):
    """A trial's configuration: the searched values."""
    return {**config, **{k: v for k, v in values.items() if k in config}}


def train_trial(config, splits, model, seed, callbacks, verbose):
    """Train a trial's model; the best validation score is the trial's score, and the
    tuner's callbacks see (and save) the model of that score only, so the model a search
    measures at the end is the one its score belongs to."""
    model, history = train_model(config, splits, None, seed, verbose, model=model)
    logs = {"val_score": float(history.best_score), "loss": history.last["train_loss"]}
    for callback in callbacks or []:
        callback.set_model(model)
        callback.on_epoch_end(0, logs)
    return {"val_score": logs["val_score"]}


def evaluate_validation(config, splits, model):
    return evaluate_split(model, splits, "validation")


def evaluate_test(config, splits, model):
    return evaluate_split(model, splits, "test")
