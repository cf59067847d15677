"""The surname track's TensorFlow side: one row (the ConvNet trained with SGD and
momentum, with or without compensation of the unbalanced classes), its figures and
saved model, the served name classifier, the gradient check and the tuning hooks.

DIR/rows/<tag>/ holds the checkpoints, TensorBoard logs, model.keras and
encoder.json (the alphabet and name length, for the served graph); DIR/figures/ the
loss and accuracy curves, the per-class accuracies, the final validation confusion
matrix, and <tag>_confusion/step-NNNNN.png at every evaluation point.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kcourse import plots
from kcourse.data import InMemory, InMemoryBatches, batched
from kcourse.data.orders import BalancedSampler
from kcourse.data.surnames import GraphNameEncoder, NameEncoder, load_surnames
from kcourse.errors import SettingError
from kcourse.losses import SoftmaxCrossEntropy, balanced_class_weights
from kcourse.runs.layout import read_json, write_json
from kcourse.serving import checked
from kcourse.tracks.surnames.model import surname_convnet
from kcourse.training import fit, gradcheck as check_model
from kcourse.training.checkpoints import save_model
from kcourse.training.evaluation import make_evaluator

EVAL_BATCH = 2000
TRAIN_EVAL_SIZE = 5000  # training metrics on a fixed random subset of this many names
INNER_PER_CLASS = 14    # the inner validation split of a search: 14 names per class

_DATA = {}


def data_for(config, data_dir):
    """The row's splits: the course's (train, validation[, test]), or for a search
    (`validation: inner`) an inner validation split carved from the training names,
    with the course's validation names kept as `test`, unseen until the end."""
    key = (config["data"], data_dir, os.environ.get("TFDS_DATA_DIR"))
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = {"course": load_surnames(config["data"], data_dir=data_dir,
                                              tfds_dir=key[2])}
    views = _DATA[key]  # each view kept, so each encodes its names once
    if config.get("validation") == "inner" and "inner" not in views:
        views["inner"] = views["course"].inner_split(per_class=INNER_PER_CLASS, seed=0)
    return views[config.get("validation", "course")]


def one_hot(labels, num_classes):
    return np.eye(num_classes, dtype=np.float32)[labels]


def build_model(config, seed, dtype=None, name="surname_convnet"):
    """The row's ConvNet; `config["input_shape"]` is `[length, alphabet size]`."""
    length, alphabet = config["input_shape"]
    return surname_convnet(length, alphabet, num_classes=config.get("num_classes", 18),
                           n1=config["n1"], k1=config["k1"], n2=config["n2"],
                           k2=config["k2"], dropout=config["dropout"], conv=config["conv"],
                           seed=seed, dtype=dtype, name=name)


def ensemble(members):
    """One model whose scores are the mean of its members' scores (logits)."""
    inputs = keras.Input(members[0].input_shape[1:], name="names")
    scores = keras.layers.Average(name="mean_scores")([m(inputs) for m in members])
    return keras.Model(inputs, scores, name="surname_ensemble")


def with_shape(config, splits):
    return {**config, "input_shape": [splits.encoder.length, len(splits.encoder.alphabet)],
            "num_classes": len(splits.class_names)}


def loss_for(config, splits, dtype=None):
    """Cross-entropy, weighted by N / (K n_y) for the `weighted` compensation."""
    weights = None
    if config["compensation"] == "weighted":
        weights = balanced_class_weights(splits.y("train"), len(splits.class_names))
    return SoftmaxCrossEntropy(class_weights=weights, dtype=dtype)


def training_batches(config, splits, seed):
    """Shuffled batches of the training names; with `balanced` compensation every
    class gives the size of the smallest class to each epoch (an epoch order of the
    data layer), in as many draws as make about one pass over the names."""
    labels, k = splits.y("train"), len(splits.class_names)
    sampler = None
    if config["compensation"] == "balanced":
        sampler = BalancedSampler.one_pass(labels, num_classes=k)
    return InMemoryBatches(examples(splits, "train"), config["batch_size"], seed,
                           sampler=sampler)


def examples(splits, split, pick=None):
    """The encoded names and one-hot labels of a split (or of its examples `pick`)."""
    x, y = splits.x(split), splits.y(split)
    if pick is not None:
        x, y = x[pick], y[pick]
    return InMemory(tf.constant(x), tf.constant(one_hot(y, len(splits.class_names))))


def class_accuracies(labels, predictions, class_names):
    """`{class: accuracy}` of every class that has examples."""
    right = np.bincount(labels[labels == predictions], minlength=len(class_names))
    total = np.bincount(labels, minlength=len(class_names))
    return {name: float(r / t) for name, r, t in zip(class_names, right, total) if t}


class Evaluation:
    """What `fit` measures at every evaluation point: loss (the plain cross-entropy,
    comparable across compensations; a weighted row trains on the weighted one), cost
    and accuracy on a fixed subset of the training names and on the validation names,
    the accuracy of every language, and (with a `confusion_dir`) the validation
    confusion matrix as `step-NNNNN.png` at every multiple of `every` updates."""

    def __init__(self, model, splits, seed, optimizer=None, confusion_dir=None, every=500,
                 title=""):
        self.model, self.splits, self.optimizer = model, splits, optimizer
        self.evaluator = make_evaluator(model, SoftmaxCrossEntropy())
        pick = np.random.default_rng(seed).permutation(len(splits.y("train")))
        pick = np.sort(pick[:TRAIN_EVAL_SIZE])
        self.val = (splits.x("validation"), splits.y("validation"))
        self.datasets = {"train_": batched(examples(splits, "train", pick), EVAL_BATCH),
                         "val_": batched(examples(splits, "validation"), EVAL_BATCH)}
        self.predict = tf.function(lambda x: tf.argmax(model(x, training=False), -1))
        self.confusion_dir, self.every, self.title = confusion_dir, every, title

    def val_predictions(self):
        return self.predict(tf.constant(self.val[0])).numpy()

    def __call__(self):
        row = {}
        for prefix, dataset in self.datasets.items():
            row.update({prefix + k: v for k, v in self.evaluator(dataset).items()})
        labels, predictions = self.val[1], self.val_predictions()
        names = self.splits.class_names
        per_class = class_accuracies(labels, predictions, names)
        row["val_class_mean_accuracy"] = float(np.mean(list(per_class.values())))
        row.update({f"val_accuracy_{name}": a for name, a in per_class.items()})
        step = int(self.optimizer.iterations) if self.optimizer is not None else None
        if self.confusion_dir and step is not None and step % self.every == 0:
            plots.plot_confusion(labels, predictions, names,
                                 os.path.join(self.confusion_dir, f"step-{step:05d}.png"),
                                 title=f"validation, update {step}: {self.title}")
        return row


def train_convnet(config, splits, row_dir, seed, verbose, callbacks=None, model=None,
                  confusion_dir=None, title="", name="surname_convnet"):
    """Train the row's ConvNet with SGD and momentum for `updates` updates; return
    model, loss and history."""
    keras.utils.set_random_seed(seed)
    config = with_shape(config, splits)
    try:
        model = model or build_model(config, seed, name=name)
    except ValueError as error:  # e.g. filters wider than the names
        raise SettingError(str(error)) from None
    loss_fn = loss_for(config, splits)
    eta = config["eta"]
    if config.get("schedule", "constant") == "cosine":
        eta = keras.optimizers.schedules.CosineDecay(eta, config["updates"])
    optimizer = keras.optimizers.SGD(eta, momentum=config["momentum"])
    evaluation = Evaluation(model, splits, seed, optimizer, confusion_dir,
                            config["eval_every"], title)
    history = fit(model, loss_fn, training_batches(config, splits, seed),
                  optimizer=optimizer, max_steps=config["updates"],
                  eval_every=config["eval_every"], evaluate=evaluation, out_dir=row_dir,
                  callbacks=callbacks, verbose=verbose)
    return model, loss_fn, history


def confusions(labels, predictions, class_names, top=5):
    """The `top` most frequent (true, predicted) mistakes."""
    matrix = plots.confusion_matrix(labels, predictions, len(class_names))
    np.fill_diagonal(matrix, 0)
    order = np.argsort(-matrix, axis=None, kind="stable")[:top]
    return [{"true": class_names[i], "predicted": class_names[j], "count": int(matrix[i, j])}
            for i, j in zip(*np.unravel_index(order, matrix.shape)) if matrix[i, j] > 0]


def train_row(row):
    """Train and evaluate one row (a `kcourse.runs.RowContext`): its network, or with
    `members` > 1 that many networks (seeds seed, seed + 1, ...; each checkpointed in
    `rows/<tag>/member-<i>/`) whose scores are averaged. Save the model, the encoder
    and the figures (curves and confusion matrices of the step: member 0's)."""
    config, tag = row.config, row.tag
    title = tag.split("_", 1)[1] if "_" in tag else tag
    splits = data_for(config, row.data_dir)
    count = config.get("members", 1)
    members, histories = [], []
    for i in range(count):
        model, _, history = train_convnet(
            config, splits, row.row_dir if count == 1 else os.path.join(
                row.row_dir, f"member-{i}"), row.seed + i, row.verbose,
            confusion_dir=os.path.join(row.figures, f"{tag}_confusion") if i == 0 else None,
            title=title, name=f"member_{i}" if count > 1 else "surname_convnet")
        members.append(model)
        histories.append(history)
    model = members[0] if count == 1 else ensemble(members)
    history = histories[0]
    evaluation = Evaluation(model, splits, row.seed)
    final = evaluation()
    names = splits.class_names
    labels, predictions = splits.y("validation"), evaluation.val_predictions()
    result = {k: final[k] for k in ("train_accuracy", "train_loss", "val_accuracy",
                                    "val_loss", "val_class_mean_accuracy")}
    result.update(compensation=config["compensation"],
                  diverged=any(h.diverged for h in histories),
                  updates=history.last["step"],
                  train_seconds=sum(h.seconds for h in histories),
                  val_class_accuracies=class_accuracies(labels, predictions, names),
                  val_confusions=confusions(labels, predictions, names))
    if count > 1:
        result["member_val_accuracies"] = [h.last["val_accuracy"] for h in histories]
    if "test" in splits.names:
        test = evaluate_test(config, splits, model)
        result.update(test_accuracy=test["accuracy"], test_loss=test["loss"])
    save_model(model, os.path.join(row.row_dir, "model.keras"))
    write_json(os.path.join(row.row_dir, "encoder.json"),
               {"encoder": splits.encoder.to_json(), "class_names": list(names)})
    for metric in ("loss", "accuracy"):
        plots.plot_curves(history.rows, metric,
                          os.path.join(row.figures, f"{tag}_{metric}.png"),
                          title=f"{metric}: {title}", x="step")
    plots.plot_confusion(labels, predictions, names,
                         os.path.join(row.figures, f"{tag}_confusion.png"),
                         title=f"validation: {title}")
    plots.plot_class_accuracies(result["val_class_accuracies"],
                                os.path.join(row.figures, f"{tag}_class_accuracy.png"),
                                title=f"validation accuracy per language: {title}")
    return result, history.rows


# serving: raw name strings in
def name_classifier_archive(model, encoder, class_names):
    """An `ExportArchive` serving the classifier on raw names (`serving_default`) and on
    encoded one-hot names (`encoded`)."""
    graph_encoder = GraphNameEncoder(encoder)
    names = tf.constant(list(class_names))
    shape = [encoder.length, len(encoder.alphabet)]

    def from_encoded(encoded):
        encoded = checked(encoded, shape, f"encoded must be float32 (batch, {shape[0]}, "
                                          f"{shape[1]}): one-hot names")
        probabilities = tf.nn.softmax(tf.cast(model(encoded, training=False), tf.float32))
        class_id = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(names, class_id)}

    def from_names(names_in):
        names_in = checked(names_in, [], "names must be a 1-D string tensor (batch,): "
                                         "one surname per element")
        return from_encoded(graph_encoder(names_in))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(graph_encoder)
    archive.add_endpoint("serving_default", from_names,
                         [tf.TensorSpec((None,), tf.string, name="names")])
    archive.add_endpoint("encoded", from_encoded,
                         [tf.TensorSpec((None, *shape), tf.float32, name="encoded")])
    return archive


def load_row(row_dir):
    """The model, encoder and class names saved in a row directory."""
    model = keras.saving.load_model(os.path.join(row_dir, "model.keras"), safe_mode=True)
    saved = read_json(os.path.join(row_dir, "encoder.json"))
    return model, NameEncoder.from_json(saved["encoder"]), saved["class_names"]


def archive(row_dir, info):
    return name_classifier_archive(*load_row(row_dir))


def predict_inputs(inputs):
    """`kcourse predict`'s inputs for this track: the names themselves (as the bytes
    given: the graph replaces what is not UTF-8)."""
    return tf.constant([os.fsencode(name) if isinstance(name, str) else name
                        for name in inputs], tf.string)


def class_names(row_dir):
    return read_json(os.path.join(row_dir, "encoder.json"))["class_names"]


def gradcheck(spec, data_dir=None, seed=0):
    """Gradient check (float64) of the ConvNet, its hand-written convolutions included,
    on real names, with the plain and the class-weighted loss.

    Returns `(threshold, [(setting, {variable: max relative error}), ...])`."""
    check = spec["gradcheck"]
    splits = data_for(spec["defaults"], data_dir)
    # one name of each of `examples` classes (the first of each): different class
    # weights, so a wrong weight lookup shows
    labels = splits.y("train")
    pick = [int(np.flatnonzero(labels == k)[0]) for k in np.unique(labels)]
    pick = pick[:check["examples"]]
    x = splits.x("train")[pick].astype(np.float64)
    y = one_hot(labels[pick], len(splits.class_names))
    results = []
    for setting in check["rows"]:
        config = with_shape({**spec["defaults"], "n1": check["n1"], "n2": check["n2"],
                             **setting}, splits)
        keras.utils.set_random_seed(seed)
        model = build_model(config, seed, dtype="float64")
        # biases start at zero, which puts every all-padding patch exactly on ReLU's
        # kink (where finite differences see half a slope): start them away from it
        rng = np.random.default_rng(seed)
        for variable in model.trainable_variables:
            if variable.path.endswith("bias"):
                variable.assign(rng.normal(0.0, 0.1, variable.shape))
        loss_fn = loss_for(config, splits, dtype="float64")
        results.append((setting, check_model(model, loss_fn, x, y.astype(np.float64),
                                             h=check["h"], eps=check.get("eps", 1e-10))))
    return check["threshold"], results


# tuning hooks (tuning.search)
def search_data(config, data_dir):
    return data_for(config, data_dir)


def apply_hyperparameters(config, values, splits):
    """A trial's configuration: the searched values, and the input shape."""
    return with_shape({**config, **{k: v for k, v in values.items() if k in config}},
                      splits)


def train_trial(config, splits, model, seed, callbacks, verbose):
    """Train a trial's model; its final validation accuracy is the trial's score, and
    the tuner's callbacks see (and save) that final model only, so the model a search
    measures at the end is the one its score belongs to."""
    _, _, history = train_convnet(config, splits, None, seed, verbose, model=model)
    logs = {"val_accuracy": history.last["val_accuracy"], "loss": history.last["train_loss"]}
    for callback in callbacks or []:
        callback.set_model(model)
        callback.on_epoch_end(0, logs)
    return {"val_accuracy": logs["val_accuracy"]}


def evaluate_split(splits, split, model):
    """Loss (plain cross-entropy) and accuracy of `model` on a split's names."""
    return make_evaluator(model, SoftmaxCrossEntropy())(
        batched(examples(splits, split), EVAL_BATCH))


def evaluate_validation(config, splits, model):
    """On the validation names (for a search: the inner ones)."""
    return evaluate_split(splits, "validation", model)


def evaluate_test(config, splits, model):
    """On the held-out names (for a search: the course's 252)."""
    return evaluate_split(splits, "test", model)
