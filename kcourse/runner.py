"""Run an experiment of the registry into a run directory.

DIR/config.json      the resolved configuration of every row, seed, data options
DIR/metrics.json     {"experiment": ..., "rows": [{settings..., results...}, ...]}
DIR/history.csv      every evaluation point of every row
DIR/figures/*.png    curves, weight templates, confusion matrices
DIR/rows/<tag>/      checkpoints, TensorBoard logs and the trained model of each row

Running again into the same directory resumes: finished rows are kept, the
interrupted row continues from its latest checkpoint.
"""

import csv
import json
import os
import shutil

import keras
import numpy as np

from kcourse import experiments, plots
from kcourse.char_runner import char_gradcheck, char_row
from kcourse.data import batched, chain, load_cifar10, random_flip, random_shift
from kcourse.ensemble import SnapshotEnsemble, ensemble_accuracy
from kcourse.gradcheck import gradcheck
from kcourse.losses import get as get_loss
from kcourse.lr_range import lr_range_test
from kcourse.models import linear_classifier, mlp
from kcourse.schedules import CyclicLearningRate
from kcourse.train import evaluate, fit, predict_scores

EVAL_BATCH = 2000
RESULT_KEYS = ("test_accuracy", "val_accuracy", "train_accuracy", "train_cost", "train_loss",
               "val_cost", "val_loss", "test_loss")


def _tag_part(key, value):
    if isinstance(value, bool):
        return key if value else "no_" + key
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return key + "-".join(map(str, value))
    return f"{key}{value:g}"


def row_tag(index, row):
    """Directory name of a row: its index and the settings that define the row."""
    return "_".join([f"{index:02d}"] + [_tag_part(k, v) for k, v in row.items()])


_DATA_CACHE = {}


def data_for(config, data_dir):
    key = (config["data"], data_dir, config.get("limit"))
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # keep one preset in memory at a time
        _DATA_CACHE[key] = load_cifar10(config["data"], data_dir=data_dir,
                                        limit=config.get("limit"))
    return _DATA_CACHE[key]


TRAIN_EVAL_SIZE = 10000  # MLP rows measure training metrics on this many images


def build_model(task, config, seed, input_dim=3072, dtype=None):
    """The model of one row of a `task` experiment."""
    if task == "linear":
        return linear_classifier(input_dim=input_dim, init=config["init"],
                                 sigma=config["sigma"], lam=config["lambda"], seed=seed,
                                 dtype=dtype)
    return mlp(config["hidden"], input_dim=input_dim, batch_norm=config["batch_norm"],
               dropout=config["dropout"], init=config["init"], sigma=config["sigma"],
               lam=config["lambda"], seed=seed, dtype=dtype)


def training_batches(config, splits, seed):
    """The shuffled, augmented training batches of a row."""
    augment = chain(random_flip(seed) if config.get("flip") else None,
                    random_shift(seed + 1, config["translate"])
                    if config.get("translate") else None)
    return batched(splits.train, config["batch_size"], shuffle_seed=seed, augment=augment)


def cyclic_schedule(config, num_train):
    """The row's cyclical learning rate and its total number of updates."""
    n_s = config["n_s"] or 2 * (num_train // config["batch_size"])
    schedule = CyclicLearningRate(config["eta_min"], config["eta_max"], n_s,
                                  mode=config["policy"])
    return schedule, config["cycles"] * schedule.cycle_length()


def train_linear(config, splits, row_dir, seed, verbose):
    """Train one row of a linear-classifier experiment; return model, loss, history."""
    keras.utils.set_random_seed(seed)
    model = build_model("linear", config, seed)
    loss_fn = get_loss(config["loss"])
    train = training_batches(config, splits, seed)
    eta = config["eta"]
    if config["decay"] < 1:
        steps = int(train.cardinality()) * config["decay_every"]
        eta = keras.optimizers.schedules.ExponentialDecay(eta, steps, config["decay"],
                                                          staircase=True)
    history = fit(model, loss_fn, train, batched(splits.val, EVAL_BATCH),
                  optimizer=keras.optimizers.SGD(eta), epochs=config["epochs"],
                  train_eval=batched(splits.train, EVAL_BATCH), out_dir=row_dir,
                  verbose=verbose)
    return model, loss_fn, history, {}


def train_mlp(config, splits, row_dir, seed, verbose, callbacks=None, model=None):
    """Train one row of a k-layer experiment with a cyclical learning rate.

    `model` defaults to the row's own (`build_model`); `row_dir` None keeps no
    checkpoints. Returns model, loss, history and extra results (the snapshot
    ensemble's accuracy).
    """
    keras.utils.set_random_seed(seed)
    model = model or build_model("mlp", config, seed)
    loss_fn = get_loss(config["loss"])
    train = training_batches(config, splits, seed)
    schedule, total = cyclic_schedule(config, int(splits.train.cardinality()))
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


TASKS = {"linear": train_linear, "mlp": train_mlp}


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def _write_history(out, histories):
    keys = []
    for tag, rows in histories:
        for row in rows:
            keys += [k for k in row if k not in keys]
    with open(os.path.join(out, "history.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, ["row"] + keys)
        writer.writeheader()
        for tag, rows in histories:
            for row in rows:
                writer.writerow({"row": tag, **row})


def _figures(out, tag, config, model, history, splits):
    fig_dir = os.path.join(out, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    title = tag.split("_", 1)[1] if "_" in tag else tag
    rows = history.rows
    x = "step" if "n_s" in config else "epoch"  # cyclical rates: against updates
    for metric in ("loss", "cost", "accuracy"):
        plots.plot_curves(rows, metric, os.path.join(fig_dir, f"{tag}_{metric}.png"),
                          title=f"{metric}: {title}", x=x)
    plots.plot_learning_rate(rows, os.path.join(fig_dir, f"{tag}_learning_rate.png"),
                             title=f"learning rate: {title}")
    if any(layer.name == "linear" for layer in model.layers):  # one-layer classifier
        plots.plot_templates(model.get_layer("linear").kernel.numpy(), splits.class_names,
                             os.path.join(fig_dir, f"{tag}_templates.png"), title=title)
    scores, labels = predict_scores(model, batched(splits.test, EVAL_BATCH))
    plots.plot_confusion(labels.argmax(1), scores.argmax(1), splits.class_names,
                         os.path.join(fig_dir, f"{tag}_confusion.png"),
                         title=f"test set: {title}")


def classifier_row(spec, config, out, tag, row_dir, data_dir, seed, verbose):
    """Train and evaluate one row of a CIFAR-10 experiment; save its model and figures."""
    splits = data_for(config, data_dir)
    model, loss_fn, history, extra = TASKS[spec["task"]](config, splits, row_dir, seed,
                                                         verbose)
    test = evaluate(model, loss_fn, batched(splits.test, EVAL_BATCH))
    last = history.last
    result = {k: last[k] for k in RESULT_KEYS if k in last}
    result.update(test_accuracy=test["accuracy"], test_loss=test["loss"],
                  diverged=history.stopped is not None, **extra)
    model.save(os.path.join(row_dir, "model.keras"))
    np.savez(os.path.join(row_dir, "preprocessing.npz"), mean=splits.mean, std=splits.std)
    _figures(out, tag, config, model, history, splits)
    return result, history.rows


def select_rows(rows, key):
    """Mark, for each loss, the row with the best `key` (validation accuracy)."""
    best = {}
    for i, row in enumerate(rows):
        if row.get("diverged"):
            continue
        if row["loss"] not in best or row[key] > rows[best[row["loss"]]][key]:
            best[row["loss"]] = i
    for i, row in enumerate(rows):
        row["selected"] = i in best.values()


def run_experiment(name, out=None, data_dir=None, seed=0, quick=False, overrides=None,
                   fresh=False, verbose=1):
    """Train every row of experiment `name` into the run directory `out`.

    Returns the metrics dict written to `out/metrics.json`.
    """
    spec = experiments.get(name)
    configs = experiments.resolve(name, overrides, quick)
    out = out or experiments.run_dir(name, quick)
    config_doc = {"experiment": name, "seed": seed, "quick": quick,
                  "overrides": overrides or {}, "rows": configs}
    config_path = os.path.join(out, "config.json")
    if fresh and os.path.isdir(out):
        shutil.rmtree(out)
    if os.path.exists(config_path):
        with open(config_path) as f:
            previous = json.load(f)
        previous.pop("data_dir", None)  # the data may move between runs
        if previous != json.loads(json.dumps(config_doc)):
            raise experiments.SettingError(
                f"{out} holds a run of another configuration; choose another --out "
                "or pass --fresh to start over")
    os.makedirs(out, exist_ok=True)
    _write_json(config_path, {**config_doc, "data_dir": data_dir})

    metrics_path = os.path.join(out, "metrics.json")
    done = {}
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            done = {row["tag"]: row for row in json.load(f)["rows"]}
    metrics = {"experiment": name, "reference": spec["reference"], "rows": []}
    histories = []
    run_row = char_row if spec["task"] == "char" else classifier_row
    for index, config in enumerate(configs):
        tag = row_tag(index, spec["rows"][index])
        row_dir = os.path.join(out, "rows", tag)
        if tag in done:
            metrics["rows"].append(done[tag])
            with open(os.path.join(row_dir, "checkpoints", "history.json")) as f:
                saved = json.load(f)
            histories.append((tag, saved["rows"] if isinstance(saved, dict) else saved))
            continue
        if verbose:
            print(f"[{name}] row {index + 1}/{len(configs)}: {tag}")
        result, history_rows = run_row(spec, config, out, tag, row_dir, data_dir, seed,
                                       verbose)
        metrics["rows"].append({"tag": tag, **config, **result})
        histories.append((tag, history_rows))
        _write_json(metrics_path, metrics)
        _write_history(out, histories)
    if spec.get("select"):
        select_rows(metrics["rows"], spec["select"])
    _write_json(metrics_path, metrics)
    _write_history(out, histories)
    return metrics


def summary_table(metrics):
    """The metrics rows as a text table."""
    rows = metrics["rows"]
    spec = experiments.get(metrics["experiment"])
    varying = [k for k in spec["rows"][0] if k not in ("loss", "lambda")]
    columns = [c for c in ["loss", "lambda", *varying, "cell", "units", "train_cost",
                           "val_accuracy", "test_accuracy", "ensemble_test_accuracy",
                           "smooth_loss", "val_loss_per_char", "test_loss_per_char",
                           "selected", "diverged"]
               if c in rows[0]]

    def fmt(value):
        if isinstance(value, float):
            return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
        return str(value)

    cells = [columns] + [[fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def gradcheck_experiment(name, data_dir=None, seed=0):
    """Gradient check of the experiment's model and losses on real, reduced data.

    Returns `(threshold, [(setting, {variable: max relative error}), ...])`.
    """
    spec = experiments.get(name)
    if spec["task"] == "char":
        return char_gradcheck(spec, data_dir, seed)
    check = spec["gradcheck"]
    defaults = spec["defaults"]
    splits = load_cifar10(defaults["data"], data_dir=data_dir)  # statistics of the whole split
    x, y = next(iter(splits.train.batch(check["examples"]).as_numpy_iterator()))
    x = x[:, : check["dims"]].astype(np.float64)
    y = y.astype(np.float64)
    results = []
    for setting in check["rows"]:
        config = {**defaults, **{k: v for k, v in check.items() if k in defaults}, **setting,
                  "dropout": 0.0}  # no random layers in a gradient check
        keras.utils.set_random_seed(seed)
        model = build_model(spec["task"], config, seed, input_dim=x.shape[1], dtype="float64")
        loss_fn = get_loss(config["loss"], dtype="float64")
        results.append((setting, gradcheck(model, loss_fn, x, y, h=check["h"])))
    return check["threshold"], results


def lr_range_experiment(name, out=None, data_dir=None, seed=0, quick=False, overrides=None,
                        eta_min=1e-5, eta_max=1.0, epochs=8, verbose=1):
    """Learning-rate range test of the first row of an `mlp` experiment.

    Writes `out/lr_range.json` (rows and suggestion) and `out/lr_range.png`.
    """
    spec = experiments.get(name)
    if spec["task"] != "mlp":
        raise experiments.SettingError(f"{name} has no cyclical learning rate to range-test")
    config = experiments.resolve(name, overrides, quick)[0]
    out = out or experiments.run_dir(name + "-lr-range", quick)
    os.makedirs(out, exist_ok=True)
    splits = data_for(config, data_dir)
    keras.utils.set_random_seed(seed)
    model = build_model("mlp", config, seed)
    rows, suggestion = lr_range_test(
        model, get_loss(config["loss"]), training_batches(config, splits, seed),
        batched(splits.val, EVAL_BATCH), eta_min=eta_min, eta_max=eta_max, epochs=epochs,
        train_eval=batched(splits.train.take(TRAIN_EVAL_SIZE), EVAL_BATCH),
        verbose=verbose)
    _write_json(os.path.join(out, "lr_range.json"),
                {"experiment": name, "config": config, "seed": seed, "eta_min": eta_min,
                 "eta_max": eta_max, "epochs": epochs, "suggestion": suggestion,
                 "rows": rows})
    plots.plot_lr_range(rows, os.path.join(out, "lr_range.png"), suggestion,
                        title=f"{name}: learning-rate range test")
    return suggestion
