"""The CIFAR-10 track's TensorFlow side: one row of an experiment (the one-layer
classifier or a k-layer net with a cyclical learning rate), its figures and saved
model, the gradient check, the learning-rate range test and the tuning hooks.

DIR/rows/<tag>/ holds the checkpoints, TensorBoard logs, model.keras and
preprocessing.npz (the training mean and std, for the served graph); DIR/figures/
the loss, cost, accuracy and learning-rate curves, the weight templates of a
one-layer classifier, the test confusion matrix and, in experiments with an `l1`
setting, the weight histogram (`<tag>_weights.png`; the row's `near_zero_weights` is
the fraction of weight-matrix entries with |w| < 1e-3). `report_figures` draws the
templates (or the weight histograms) of every row of a run side by side, for
`kcourse report`.
"""

import os

import keras
import numpy as np

from kcourse import plots
from kcourse.callbacks import SnapshotEnsemble, ensemble_accuracy
from kcourse.data import (CLASS_NAMES, InMemoryBatches, batched, chain, load_cifar10,
                          random_flip, random_shift)
from kcourse.losses import get as get_loss
from kcourse.runs.layout import write_json
from kcourse.schedules import CyclicLearningRate
from kcourse.tracks.cifar_mlp.archive import archive  # noqa: F401  (the track's export)
from kcourse.layers import Linear
from kcourse.tracks.cifar_mlp.models import linear_classifier, mlp
from kcourse.training import evaluate, fit, gradcheck as check_model, lr_range_test
from kcourse.training.checkpoints import save_arrays, save_model
from kcourse.training.evaluation import predict_scores

EVAL_BATCH = 2000
TRAIN_EVAL_SIZE = 10000  # k-layer rows measure training metrics on this many images
RESULT_KEYS = ("test_accuracy", "val_accuracy", "train_accuracy", "train_cost", "train_loss",
               "val_cost", "val_loss", "test_loss")

NEAR_ZERO = 1e-3  # |w| below this counts as a near-zero weight (experiments with `l1`)

_DATA = {}


def data_for(config, data_dir):
    """The row's CIFAR-10 splits (one preset kept in memory at a time)."""
    key = (config["data"], data_dir, config.get("limit"))
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = load_cifar10(config["data"], data_dir=data_dir, limit=config.get("limit"))
    return _DATA[key]


def build_model(config, seed, input_dim=3072, dtype=None):
    """The model of a row: the one-layer classifier or a k-layer net (`task`)."""
    if config.get("task", "mlp") == "linear":
        return linear_classifier(input_dim=input_dim, init=config["init"],
                                 sigma=config["sigma"], lam=config["lambda"], seed=seed,
                                 dtype=dtype, l1=config.get("l1", 0.0))
    hidden = config["hidden"]
    hidden = [hidden] if isinstance(hidden, int) else hidden  # one number: one layer
    return mlp(hidden, input_dim=input_dim, batch_norm=config["batch_norm"],
               dropout=config["dropout"], init=config["init"], sigma=config["sigma"],
               lam=config["lambda"], seed=seed, dtype=dtype, l1=config.get("l1", 0.0))


def training_batches(config, splits, seed):
    """The shuffled (and augmented: flips, shifts) training batches of a row, gathered
    in the trainer's graph."""
    augment = chain(random_flip(seed) if config.get("flip") else None,
                    random_shift(seed + 1, config["translate"])
                    if config.get("translate") else None)
    return InMemoryBatches(splits.train, config["batch_size"], seed, augment)


def cyclic_schedule(config, num_train):
    """The row's cyclical learning rate and its total number of updates."""
    n_s = config["n_s"] or 2 * (num_train // config["batch_size"])
    schedule = CyclicLearningRate(config["eta_min"], config["eta_max"], n_s,
                                  mode=config["policy"])
    return schedule, config["cycles"] * schedule.cycle_length()


def train_linear(config, splits, row_dir, seed, verbose):
    """Train a one-layer classifier; return model, loss, history and extra results."""
    keras.utils.set_random_seed(seed)
    model = build_model({**config, "task": "linear"}, seed)
    loss_fn = get_loss(config["loss"])
    train = training_batches(config, splits, seed)
    eta = config["eta"]
    if config["decay"] < 1:
        steps = train.steps_per_epoch * config["decay_every"]
        eta = keras.optimizers.schedules.ExponentialDecay(eta, steps, config["decay"],
                                                          staircase=True)
    history = fit(model, loss_fn, train, batched(splits.val, EVAL_BATCH),
                  optimizer=keras.optimizers.SGD(eta), epochs=config["epochs"],
                  train_eval=batched(splits.train, EVAL_BATCH), out_dir=row_dir,
                  verbose=verbose)
    return model, loss_fn, history, {}


def train_mlp(config, splits, row_dir, seed, verbose, callbacks=None, model=None):
    """Train a k-layer net with a cyclical learning rate.

    `model` defaults to the row's own (`build_model`); `row_dir` None keeps no
    checkpoints. Returns model, loss, history and extra results (the snapshot
    ensemble's accuracy).
    """
    keras.utils.set_random_seed(seed)
    model = model or build_model(config, seed)
    loss_fn = get_loss(config["loss"])
    train = training_batches(config, splits, seed)
    schedule, total = cyclic_schedule(config, len(splits.train))
    optimizer = keras.optimizers.SGD(schedule)
    callbacks = list(callbacks or [])
    snapshots = None
    if config["ensemble"]:
        snapshots = SnapshotEnsemble(schedule.cycle_length(), optimizer, directory=(
            os.path.join(row_dir, "snapshots") if row_dir else None))
        callbacks.append(snapshots)
    eval_every = max(1, schedule.cycle_length() // config["evals_per_cycle"])
    history = fit(model, loss_fn, train, batched(splits.val, EVAL_BATCH),
                  optimizer=optimizer, max_steps=total, eval_every=eval_every,
                  train_eval=batched(splits.train.take(TRAIN_EVAL_SIZE), EVAL_BATCH),
                  out_dir=row_dir, callbacks=callbacks, verbose=verbose)
    extra = {"n_s": schedule.step_size, "updates": total}
    if snapshots is not None and snapshots.snapshots:
        weights = [w for _, w in snapshots.snapshots]
        for split in ("val", "test"):
            accuracy = ensemble_accuracy(model, weights, *splits.numpy(split))
            extra[f"ensemble_{split}_accuracy"] = accuracy["average"]
            extra[f"ensemble_{split}_vote_accuracy"] = accuracy["vote"]
        extra["snapshot_test_accuracies"] = accuracy["members"]
    return model, loss_fn, history, extra


def kernel_values(model):
    """Every weight-matrix entry of a model (the kernels of its `Linear` layers; no
    biases, no batch-norm parameters) as one flat float64 array."""
    kernels = [layer.kernel.numpy().ravel() for layer in model.layers
               if isinstance(layer, Linear)]
    return np.concatenate(kernels).astype(np.float64) if kernels else np.zeros(0)


def figures(row, model, history, splits):
    """The row's curves, weight templates (one-layer classifier) and confusion matrix."""
    tag, rows = row.tag, history.rows
    title = tag.split("_", 1)[1] if "_" in tag else tag
    x = "step" if "n_s" in row.config else "epoch"  # cyclical rates: against updates
    for metric in ("loss", "cost", "accuracy"):
        plots.plot_curves(rows, metric, os.path.join(row.figures, f"{tag}_{metric}.png"),
                          title=f"{metric}: {title}", x=x)
    plots.plot_learning_rate(rows, os.path.join(row.figures, f"{tag}_learning_rate.png"),
                             title=f"learning rate: {title}")
    if "l1" in row.config:  # an experiment about the weight penalties
        plots.plot_weight_histograms({title: kernel_values(model)},
                                     os.path.join(row.figures, f"{tag}_weights.png"),
                                     threshold=NEAR_ZERO)
    if any(layer.name == "linear" for layer in model.layers):  # one-layer classifier
        plots.plot_templates(model.get_layer("linear").kernel.numpy(), splits.class_names,
                             os.path.join(row.figures, f"{tag}_templates.png"), title=title)
    scores, labels = predict_scores(model, batched(splits.test, EVAL_BATCH))
    plots.plot_confusion(labels.argmax(1), scores.argmax(1), splits.class_names,
                         os.path.join(row.figures, f"{tag}_confusion.png"),
                         title=f"test set: {title}")


def train_row(row):
    """Train and evaluate one row (a `kcourse.runs.RowContext`); save its model,
    preprocessing statistics and figures."""
    splits = data_for(row.config, row.data_dir)
    train = train_linear if row.spec["task"] == "linear" else train_mlp
    model, loss_fn, history, extra = train(row.config, splits, row.row_dir, row.seed,
                                           row.verbose)
    test = evaluate(model, loss_fn, batched(splits.test, EVAL_BATCH))
    last = history.last
    result = {k: last[k] for k in RESULT_KEYS if k in last}
    result.update(test_accuracy=test["accuracy"], test_loss=test["loss"],
                  diverged=history.diverged, train_seconds=history.seconds, **extra)
    if "l1" in row.config:
        result["near_zero_weights"] = float(np.mean(np.abs(kernel_values(model)) < NEAR_ZERO))
    save_model(model, os.path.join(row.row_dir, "model.keras"))
    save_arrays(os.path.join(row.row_dir, "preprocessing.npz"), mean=splits.mean,
                std=splits.std)
    figures(row, model, history, splits)
    return result, history.rows


def report_figures(run_dir, metrics, out_folder):
    """For `kcourse report`: the weight templates of every finished one-layer row of a
    run, one line of class images per row (`out_folder/templates.png`), and for the
    weight-penalty experiments the weight histograms of every row
    (`out_folder/weights.png`)."""
    import kcourse

    kernels, histograms = {}, {}
    for row in metrics["rows"]:
        path = os.path.join(run_dir, "rows", row["tag"], "model.keras")
        if not os.path.exists(path):
            continue  # an unfinished row
        model = kcourse.load_model(path)
        test = (f"test {100 * row['test_accuracy']:.2f}%"
                if isinstance(row.get("test_accuracy"), float) else "")
        if any(layer.name == "linear" for layer in model.layers):
            kernels[f"{row['tag']}\n{test}".strip()] = model.get_layer("linear").kernel.numpy()
        if "near_zero_weights" in row:
            histograms[f"{row['tag']}: {test}"] = kernel_values(model)
    written = []
    if kernels:
        written.append(plots.plot_template_grid(
            kernels, CLASS_NAMES, os.path.join(out_folder, "templates.png"),
            title=f"{metrics['experiment']}: class templates of every row"))
    if histograms:
        written.append(plots.plot_weight_histograms(
            histograms, os.path.join(out_folder, "weights.png"), threshold=NEAR_ZERO,
            title=f"{metrics['experiment']}: the weights of every row"))
    return written


def gradcheck(spec, data_dir=None, seed=0):
    """Gradient check of the experiment's model and losses on real, reduced data.

    Returns `(threshold, [(setting, {variable: max relative error}), ...])`.
    """
    check = spec["gradcheck"]
    defaults = spec["defaults"]
    splits = load_cifar10(defaults["data"], data_dir=data_dir)  # statistics of the whole split
    x, y = next(iter(splits.train.batch(check["examples"]).as_numpy_iterator()))
    x = x[:, : check["dims"]].astype(np.float64)
    y = y.astype(np.float64)
    results = []
    for setting in check["rows"]:
        config = {**defaults, **{k: v for k, v in check.items() if k in defaults}, **setting,
                  "dropout": 0.0, "task": spec["task"]}  # no random layers in a check
        keras.utils.set_random_seed(seed)
        model = build_model(config, seed, input_dim=x.shape[1], dtype="float64")
        loss_fn = get_loss(config["loss"], dtype="float64")
        results.append((setting, check_model(model, loss_fn, x, y, h=check["h"])))
    return check["threshold"], results


def lr_range_experiment(name, config, out, data_dir=None, seed=0, eta_min=1e-5, eta_max=1.0,
                        epochs=8, verbose=1):
    """Learning-rate range test of a k-layer row `config` of experiment `name`.

    Writes `out/lr_range.json` (rows and suggestion) and `out/lr_range.png`.
    """
    os.makedirs(out, exist_ok=True)
    splits = data_for(config, data_dir)
    keras.utils.set_random_seed(seed)
    model = build_model(config, seed)
    rows, suggestion = lr_range_test(
        model, get_loss(config["loss"]), training_batches(config, splits, seed),
        batched(splits.val, EVAL_BATCH),
        eta_min=eta_min, eta_max=eta_max, epochs=epochs,
        train_eval=batched(splits.train.take(TRAIN_EVAL_SIZE), EVAL_BATCH),
        verbose=verbose)
    write_json(os.path.join(out, "lr_range.json"),
               {"experiment": name, "config": config, "seed": seed, "eta_min": eta_min,
                "eta_max": eta_max, "epochs": epochs, "suggestion": suggestion,
                "rows": rows})
    plots.plot_lr_range(rows, os.path.join(out, "lr_range.png"), suggestion,
                        title=f"{name}: learning-rate range test")
    return suggestion


# kcourse predict: image files in
def predict_inputs(paths):
    """The images of `paths` (PNG, JPEG, GIF or BMP files of 32x32 RGB pixels) as one
    uint8 batch for the served graph."""
    from kcourse.serving import read_images

    return read_images(paths, 32, 32, 3, "RGB images (resize it first)")


def class_names(row_dir):
    return list(CLASS_NAMES)


# tuning hooks (tuning.search): the data once per search, a model per trial
def search_data(config, data_dir):
    return data_for(config, data_dir)


def apply_hyperparameters(config, values, splits):
    """A trial's configuration: `lambda` and, when searched, the step size given in
    epochs per half cycle (`n_s_epochs`, the course's A2 uses 2, A3 5)."""
    config = {**config, **{k: v for k, v in values.items() if k in config}}
    if "n_s_epochs" in values:
        config["n_s"] = values["n_s_epochs"] * (len(splits.train) // config["batch_size"])
    return config


def train_trial(config, splits, model, seed, callbacks, verbose):
    """Train a trial's model; its objective values."""
    _, _, history, _ = train_mlp(config, splits, None, seed, verbose, callbacks=callbacks,
                                 model=model)
    return {"val_accuracy": history.last["val_accuracy"]}


def evaluate_test(config, splits, model):
    return evaluate(model, get_loss(config["loss"]), batched(splits.test, EVAL_BATCH))
