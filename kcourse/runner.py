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
from kcourse.data import batched, load_cifar10, random_flip
from kcourse.gradcheck import gradcheck
from kcourse.losses import get as get_loss
from kcourse.models import linear_classifier
from kcourse.train import evaluate, fit, predict_scores

EVAL_BATCH = 2000
RESULT_KEYS = ("test_accuracy", "val_accuracy", "train_accuracy", "train_cost", "train_loss",
               "val_cost", "val_loss", "test_loss")


def row_tag(index, config):
    return f"{index:02d}_{config['loss']}_lambda{config['lambda']:g}_eta{config['eta']:g}"


_DATA_CACHE = {}


def data_for(config, data_dir):
    key = (config["data"], data_dir, config.get("limit"))
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # keep one preset in memory at a time
        _DATA_CACHE[key] = load_cifar10(config["data"], data_dir=data_dir,
                                        limit=config.get("limit"))
    return _DATA_CACHE[key]


def train_linear(config, splits, row_dir, seed, verbose):
    """Train one row of a linear-classifier experiment; return model, loss, history."""
    keras.utils.set_random_seed(seed)
    model = linear_classifier(init=config["init"], sigma=config["sigma"],
                              lam=config["lambda"], seed=seed)
    loss_fn = get_loss(config["loss"])
    train = batched(splits.train, config["batch_size"], shuffle_seed=seed,
                    augment=random_flip(seed) if config["flip"] else None)
    eta = config["eta"]
    if config["decay"] < 1:
        steps = int(train.cardinality()) * config["decay_every"]
        eta = keras.optimizers.schedules.ExponentialDecay(eta, steps, config["decay"],
                                                          staircase=True)
    history = fit(model, loss_fn, train, batched(splits.val, EVAL_BATCH),
                  optimizer=keras.optimizers.SGD(eta), epochs=config["epochs"],
                  train_eval=batched(splits.train, EVAL_BATCH), out_dir=row_dir,
                  verbose=verbose)
    return model, loss_fn, history


TASKS = {"linear": train_linear}


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
    title = f"{config['loss']}, lambda={config['lambda']:g}, eta={config['eta']:g}"
    rows = history.rows
    for metric in ("loss", "cost", "accuracy"):
        plots.plot_curves(rows, metric, os.path.join(fig_dir, f"{tag}_{metric}.png"),
                          title=f"{metric}: {title}")
    linear = model.get_layer("linear")
    plots.plot_templates(linear.kernel.numpy(), splits.class_names,
                         os.path.join(fig_dir, f"{tag}_templates.png"), title=title)
    scores, labels = predict_scores(model, batched(splits.test, EVAL_BATCH))
    plots.plot_confusion(labels.argmax(1), scores.argmax(1), splits.class_names,
                         os.path.join(fig_dir, f"{tag}_confusion.png"),
                         title=f"test set: {title}")


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
    train_row = TASKS[spec["task"]]
    for index, config in enumerate(configs):
        tag = row_tag(index, config)
        row_dir = os.path.join(out, "rows", tag)
        if tag in done:
            metrics["rows"].append(done[tag])
            with open(os.path.join(row_dir, "checkpoints", "history.json")) as f:
                histories.append((tag, json.load(f)))
            continue
        if verbose:
            print(f"[{name}] row {index + 1}/{len(configs)}: {tag}")
        splits = data_for(config, data_dir)
        model, loss_fn, history = train_row(config, splits, row_dir, seed, verbose)
        test = evaluate(model, loss_fn, batched(splits.test, EVAL_BATCH))
        last = history.last
        result = {k: last[k] for k in RESULT_KEYS if k in last}
        result.update(test_accuracy=test["accuracy"], test_loss=test["loss"],
                      diverged=history.stopped is not None)
        row = {"tag": tag, **{k: v for k, v in config.items()}, **result}
        metrics["rows"].append(row)
        histories.append((tag, history.rows))
        model.save(os.path.join(row_dir, "model.keras"))
        np.savez(os.path.join(row_dir, "preprocessing.npz"), mean=splits.mean, std=splits.std)
        _figures(out, tag, config, model, history, splits)
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
    columns = [c for c in ("loss", "lambda", "eta", "epochs", "train_cost", "val_accuracy",
                           "test_accuracy", "selected", "diverged") if c in rows[0]]

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
    check = spec["gradcheck"]
    defaults = spec["defaults"]
    splits = load_cifar10(defaults["data"], data_dir=data_dir)  # statistics of the whole split
    x, y = next(iter(splits.train.batch(check["examples"]).as_numpy_iterator()))
    x = x[:, : check["dims"]].astype(np.float64)
    y = y.astype(np.float64)
    results = []
    for setting in check["rows"]:
        config = {**defaults, **setting}
        keras.utils.set_random_seed(seed)
        model = linear_classifier(input_dim=x.shape[1], init=config["init"],
                                  sigma=config["sigma"], lam=config["lambda"], seed=seed,
                                  dtype="float64")
        loss_fn = get_loss(config["loss"], dtype="float64")
        results.append((setting, gradcheck(model, loss_fn, x, y, h=check["h"])))
    return check["threshold"], results
