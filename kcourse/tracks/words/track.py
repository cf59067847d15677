"""The words track's TensorFlow side: one CBoW row (the course's network trained with
kcourse's `fit` on the class-weighted cross-entropy, the model of the best validation
accuracy kept), what its word vectors show, its saved model, and the served graph
(context words as strings in, the likeliest missing words out).

DIR/rows/<tag>/ holds the checkpoints, TensorBoard logs, model.keras,
vocabulary.json (the words in id order, `<unk>` first), embedding.json (the row's
network and the class weights), neighbours.json and neighbours.txt (the nearest words of
the course's query words), and vectors.tsv / metadata.tsv, the word vectors and their
words for the TensorBoard Embedding Projector (projector.tensorflow.org: "Load", the
vectors then the metadata; one line per vocabulary word, `<unk>` included, no header).
DIR/figures/ holds the loss and accuracy curves (`<tag>_loss.png`,
`<tag>_accuracy.png`) and the word vectors projected on their first two principal
components, the query words labelled (`<tag>_projection.png`).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kcourse import plots
from kcourse.data import InMemory, InMemoryBatches, batched
from kcourse.data.books import WordVocabulary, load_books
from kcourse.errors import SettingError
from kcourse.lookup import static_table
from kcourse.losses import SoftmaxCrossEntropy
from kcourse.runs.layout import write_json, write_text
from kcourse.schedules import OneCycle
from kcourse.serving import checked
from kcourse.tracks.words.experiments import BOOKS, QUERY_WORDS
from kcourse.tracks.words.model import cbow_net, word_vectors
from kcourse.training import fit, make_evaluator
from kcourse.training.checkpoints import save_model

TASK = "embedding"       # kcourse.data.books.TASKS: 2 words before, 2 after
CONTEXT = 4
EVAL_BATCH = 8192
TRAIN_EVAL_SIZE = 50_000  # training metrics on this many training windows (a fixed sample)
TOP = 5                   # words the served graph returns

_DATA = {}


def data_for(config, data_dir):
    """The row's `BookSplits` (kept for the next rows of the same books)."""
    books = config.get("books", BOOKS)
    text_dir = None if books == BOOKS else os.path.abspath(os.path.expanduser(books))
    key = (text_dir, data_dir, os.environ.get("TFDS_DATA_DIR"), config["min_freq"])
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = load_books(data_dir=None if text_dir else data_dir, tfds_dir=key[2],
                                text_dir=text_dir, min_freq=config["min_freq"])
    return _DATA[key]


def windows(splits, split, limit=0, task=TASK):
    """`(contexts int32 (n, k), labels int32 (n,))` of a split for a task of
    `kcourse.data.books.TASKS` (the embedding's: every word not `<unk>` with the 2
    words before and the 2 after it, at most 2 of them `<unk>`), the first `limit`
    windows only when `limit` > 0."""
    contexts, labels = splits.windows(task, split)
    if limit:
        contexts, labels = contexts[:limit], labels[:limit]
    return contexts, labels


# ----------------------------------------------------------------------------- the loss

def class_weights(mode, train_tokens, train_labels, vocab_size):
    """The weight of every target word in the training loss, a float64 array `(V,)`,
    normalised so that its mean over the training windows is 1 (the mean weighted loss
    of a batch is then at the plain loss' scale, and the learning rate keeps its
    meaning).

    Args:
        mode: `"course"`: the course's `weight.pt` (seq01-vocab.ipynb), `1 - f_k / N`,
            `f_k` the occurrences of word k among all the `N` training tokens (`<unk>`
            included), then divided by its mean over the training windows,
            `(1/n) sum_i (1 - f_{y_i} / N)`; the course's PyTorch loss divides each
            batch's weighted sum by the batch's weights, the same on average. These
            weights are all near 1 (",": .93, "the": .94, rare words: 1.0).
            `"inverse"`: `n / (K max(n_k, 1))`, `n_k` the training windows whose target
            is k, `n` all of them, `K` the number of words that are targets: every
            target word weighs the same in total (a word never a target gets the
            weight of one seen once). `"none"`: 1.
        train_tokens: the word ids of the training tokens (int).
        train_labels: the target ids of the training windows (int).
        vocab_size: V.
    """
    labels = np.asarray(train_labels, np.int64)
    if labels.size == 0:
        raise SettingError("there are no training windows to weigh")
    if mode == "none":
        return np.ones(vocab_size)
    if mode == "course":
        tokens = np.asarray(train_tokens, np.int64)
        freqs = np.bincount(tokens, minlength=vocab_size).astype(np.float64)
        weights = 1.0 - freqs / len(tokens)
    elif mode == "inverse":
        counts = np.bincount(labels, minlength=vocab_size).astype(np.float64)
        weights = len(labels) / (np.count_nonzero(counts) * np.maximum(counts, 1.0))
    else:
        raise ValueError(f"class_weights must be course, inverse or none, got {mode!r}.")
    return weights / weights[labels].mean()


def accuracy_metric():
    """Plain accuracy over the windows (the likeliest word is the target), exact counts;
    its name gives the history's `val_accuracy`."""
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy", dtype="float64")]


# ----------------------------------------------------------------------------- the vectors

def nearest_neighbours(vectors, query_ids, count=10):
    """The `count` words nearest to each query word by cosine similarity of their
    vectors, the query word itself left out (the course lists it first, similarity 1),
    ties in id order.

    Args:
        vectors: the word vectors `(V, d)`.
        query_ids: the ids of the query words.
        count: how many neighbours per query word.

    Returns:
        `(ids int64 (q, count), similarities float64 (q, count))`, nearest first. A
        zero vector has similarity 0 with every word.
    """
    vectors = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.where(norms > 0, norms, 1.0)[:, None]
    query_ids = np.asarray(query_ids, np.int64).reshape(-1)
    sims = unit[query_ids] @ unit.T  # (q, V)
    sims[np.arange(len(query_ids)), query_ids] = -np.inf  # not the word itself
    count = min(int(count), len(vectors) - 1)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :count]
    return order, np.take_along_axis(sims, order, axis=1)


def neighbour_table(vectors, vocab, words=QUERY_WORDS, count=10):
    """`{word: [[neighbour, similarity], ...]}` for the query words that are in the
    vocabulary (the others are left out)."""
    known = [w for w in words if w in vocab]
    if not known:
        return {}
    ids, sims = nearest_neighbours(vectors, [vocab[w] for w in known], count)
    return {w: [[vocab.words[int(i)], round(float(s), 6)] for i, s in zip(row, srow)]
            for w, row, srow in zip(known, ids, sims)}


def neighbours_text(table):
    """The neighbour table as the course prints it: per word, a rule, the word, then one
    line per neighbour `rank | similarity | word`."""
    lines = []
    for word, found in table.items():
        lines += ["-" * 59, word]
        lines += [f"{i + 1:2d}  |  similarity {s:9.6f}  |  {w}" for i, (w, s) in
                  enumerate(found)]
    return "\n".join(lines) + "\n"


def projector_tsv(vectors, words):
    """`(vectors.tsv, metadata.tsv)` texts for the TensorBoard Embedding Projector: one
    line per word, the vector's numbers tab-separated; the word (a single column, so no
    header line)."""
    vectors = np.asarray(vectors, np.float32)
    if len(vectors) != len(words):
        raise ValueError(f"{len(vectors)} vectors for {len(words)} words.")
    bad = [w for w in words if not w or any(c in w for c in "\t\n\r")]
    if bad:
        raise ValueError(f"a projector label cannot hold tabs or line breaks: {bad[0]!r}")
    rows = "".join("\t".join(f"{v:.7g}" for v in row) + "\n" for row in vectors)
    return rows, "".join(w + "\n" for w in words)


def principal_components(vectors, count=2):
    """The vectors centred and projected on their first `count` principal components
    (NumPy SVD), and the fraction of the variance each explains."""
    x = np.asarray(vectors, np.float64)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    count = min(count, vt.shape[0])
    total = float((s ** 2).sum())
    explained = (s[:count] ** 2 / total) if total > 0 else np.zeros(count)
    return x @ vt[:count].T, explained


def plot_projection(vectors, vocab, path, words=QUERY_WORDS, title=None):
    """Every word vector on the first two principal components (gray dots), the query
    words in colour and labelled."""
    points, explained = principal_components(vectors, 2)
    if points.shape[1] < 2:
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
        explained = np.pad(explained, (0, 2 - len(explained)))
    fig, ax = plots._subplots(figsize=(8, 7))
    ax.scatter(points[:, 0], points[:, 1], s=4, c="0.75", linewidths=0,
               label=f"{len(points)} words")
    known = [w for w in words if w in vocab]
    ids = [vocab[w] for w in known]
    if ids:
        ax.scatter(points[ids, 0], points[ids, 1], s=18, c="tab:red", label="query words")
        for word, i in zip(known, ids):
            ax.annotate(word, points[i], xytext=(3, 3), textcoords="offset points",
                        fontsize=9, color="tab:red")
    ax.set_xlabel(f"principal component 1 ({explained[0]:.0%} of the variance)")
    ax.set_ylabel(f"principal component 2 ({explained[1]:.0%} of the variance)")
    ax.set_title(title or "word vectors")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return plots._save(fig, path)


# ----------------------------------------------------------------------------- training

def build_model(config, vocab_size, seed=None):
    return cbow_net(vocab_size, config["embedding_dim"], CONTEXT, config["combine"],
                    seed=seed, hidden=config.get("hidden", 0))


def optimizer_for(config, updates):
    """The row's optimizer (`optimizer`) and its learning rate: `eta` throughout (the
    course's), or with `schedule` one_cycle, `kcourse.schedules.OneCycle` peaking at
    `eta` over the `updates` of the training (a rise over the first quarter from
    eta / 10, then a linear fall to 0)."""
    eta = config["eta"]
    if config.get("schedule", "constant") == "one_cycle":
        eta = OneCycle(eta, updates)
    if config["optimizer"] == "sgd":
        return keras.optimizers.SGD(eta)
    return keras.optimizers.Adam(eta)


def examples(contexts, labels):
    return InMemory(tf.constant(contexts), tf.constant(labels))


def train_sample(num_train, size=TRAIN_EVAL_SIZE):
    """The training windows on which the training metrics are measured: a fixed sample
    of `size` of them, in order."""
    if num_train <= size:
        return np.arange(num_train)
    return np.sort(np.random.default_rng(0).choice(num_train, size, replace=False))


def train_model(config, splits, data, loss, row_dir, seed, verbose, callbacks=None,
                model=None):
    """Train the row's CBoW (or `model`, any network of the windows) with `fit`,
    measuring the loss and the accuracy on the validation windows (and a fixed sample
    of training ones) at every epoch end, and keep the weights of the best validation
    accuracy. Returns `(model, history)`."""
    keras.utils.set_random_seed(seed)
    if model is None:
        model = build_model(config, len(splits.vocab), seed)
    (x, y), val = data["train"], data["validation"]
    pick = train_sample(len(y))
    train = InMemoryBatches(examples(x, y), config["batch_size"], seed)
    history = fit(model, loss, train, batched(examples(*val), EVAL_BATCH),
                  optimizer=optimizer_for(config, train.steps_per_epoch * config["epochs"]),
                  epochs=config["epochs"],
                  train_eval=batched(examples(x[pick], y[pick]), EVAL_BATCH),
                  metrics=accuracy_metric(), keep_best=("val_accuracy", "max"),
                  out_dir=row_dir, callbacks=callbacks, verbose=verbose)
    if history.best_weights is not None:  # the kept and reported model: the best one
        model.set_weights(history.best_weights)
    return model, history


def evaluate_windows(model, loss, contexts, labels):
    """Weighted loss and plain accuracy of `model` on windows."""
    evaluator = make_evaluator(model, loss, accuracy_metric())
    return evaluator(batched(examples(contexts, labels), EVAL_BATCH))


def train_row(row):
    """Train and evaluate one row (a `kcourse.runs.RowContext`): the model of the best
    validation accuracy is kept, then measured once on the validation and test windows;
    save it (model.keras, vocabulary.json, embedding.json), the neighbours of the query
    words, the projector's TSV files and the figures. The conjugation and generator
    rows are `kcourse.tracks.words.sequence`'s."""
    if row.spec.get("task", TASK) != TASK:
        from kcourse.tracks.words import sequence

        return sequence.train_row(row)
    config, tag = row.config, row.tag
    title = tag.split("_", 1)[1] if "_" in tag else tag
    splits = data_for(config, row.data_dir)
    vocab = splits.vocab
    data = {split: windows(splits, split, config["limit"])
            for split in ("train", "validation", "test")}
    empty = [split for split, (_, y) in data.items() if not len(y)]
    if empty:
        raise SettingError(f"the books give no {' and no '.join(empty)} windows (a word "
                           "with 2 words each side, at most 2 of them unknown); give more "
                           "text or a lower min_freq")
    weights = class_weights(config["class_weights"], splits.ids("train"),
                            data["train"][1], len(vocab))
    loss = SoftmaxCrossEntropy(class_weights=weights.tolist())
    model, history = train_model(config, splits, data, loss, row.row_dir, row.seed,
                                 row.verbose)
    result = {"parameters": int(model.count_params()), "vocabulary": len(vocab),
              "train_windows": len(data["train"][1])}
    for split, prefix in (("validation", "val_"), ("test", "test_")):
        measured = evaluate_windows(model, loss, *data[split])
        result.update({prefix + "loss": measured["loss"],
                       prefix + "accuracy": measured["accuracy"]})
    best = next((r for r in history.rows if r["step"] == history.best_step), {})
    num_train, updates = len(data["train"][1]), int(history.last.get("step", 0))
    result.update(train_accuracy=best.get("train_accuracy"),
                  best_epoch=best.get("epoch"), updates=updates,
                  diverged=bool(history.diverged), train_seconds=history.seconds,
                  windows_per_second=(min(updates * config["batch_size"],
                                          config["epochs"] * num_train)
                                      / history.seconds if history.seconds else 0.0))
    save_model(model, os.path.join(row.row_dir, "model.keras"))
    write_text(os.path.join(row.row_dir, "vocabulary.json"), vocab.to_json())
    write_json(os.path.join(row.row_dir, "embedding.json"),
               {"embedding_dim": config["embedding_dim"], "combine": config["combine"],
                "hidden": config.get("hidden", 0),
                "context": CONTEXT, "class_weights": config["class_weights"],
                "weights": {"min": float(weights[data["train"][1]].min()),
                            "max": float(weights[data["train"][1]].max())}})
    vectors = word_vectors(model)
    table = neighbour_table(vectors, vocab, QUERY_WORDS, config["neighbours"])
    write_json(os.path.join(row.row_dir, "neighbours.json"), table)
    write_text(os.path.join(row.row_dir, "neighbours.txt"), neighbours_text(table))
    tsv, metadata = projector_tsv(vectors, vocab.words)
    write_text(os.path.join(row.row_dir, "vectors.tsv"), tsv)
    write_text(os.path.join(row.row_dir, "metadata.tsv"), metadata)
    for metric in ("loss", "accuracy"):
        plots.plot_curves(history.rows, metric,
                          os.path.join(row.figures, f"{tag}_{metric}.png"),
                          title=f"{metric}: {title}")
    plot_projection(vectors, vocab, os.path.join(row.figures, f"{tag}_projection.png"),
                    title=f"word vectors, first two principal components: {title}")
    return result, history.rows


# ----------------------------------------------------------------------------- serving

class WordLookup(tf.Module):
    """Words -> vocabulary ids in a TensorFlow graph: invalid UTF-8 bytes replaced,
    surrounding spaces stripped, lower-cased (`tf.strings.lower(encoding="utf-8")`, as
    the course's tokenizer lower-cases), looked up in a word -> id table; a word not in
    the vocabulary gives 0 (`<unk>`). The table is built on the first call (outside any
    trace) and tracked by this module, so it saves inside a SavedModel."""

    def __init__(self, words, name="word_lookup"):
        super().__init__(name=name)
        self._words = list(words)
        self._table = None

    @property
    def table(self):
        if self._table is None:
            self._table = static_table(self._words, default_value=0)
        return self._table

    def __call__(self, strings):
        clean = tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace")
        lower = tf.strings.lower(tf.strings.strip(clean), encoding="utf-8")
        return tf.cast(self.table.lookup(lower), tf.int32)


def word_archive(model, words, top=TOP, context=CONTEXT, labels=None, lookup=None):
    """An `ExportArchive` serving a network of context words (the CBoW, the conjugation
    and generator networks) on words.

    `serving_default`: `contexts` string `(batch, context)`, the words around (or
    before) the missing one, one word per element (looked up as `WordLookup` does:
    unknown words are `<unk>`; the CBoW's: the 2 words before and the 2 after).
    `ids`: `contexts` int32 `(batch, context)`, vocabulary ids. Both return `words`
    string `(batch, top)` and `word_probabilities` float32 `(batch, top)`, the `top`
    likeliest classes (`labels`, default the words), likeliest first; `word_ids` int32
    `(batch, top)`, their indices; `probabilities` float32 `(batch, classes)` (softmax
    of the scores, in class order); `context_ids` int32 `(batch, context)`, the ids
    looked up. `lookup`: the `WordLookup` of `words` to use (default: a new one)."""
    names = tf.constant(list(labels if labels is not None else words))
    lookup = lookup or WordLookup(words)
    vocab_size = len(words)
    top = min(int(top), len(labels if labels is not None else words))
    context = int(context)

    def from_ids(ids):
        ids = checked(ids, [context], f"contexts must be int32 (batch, {context}): "
                                      f"vocabulary ids in 0..{vocab_size - 1}",
                      lambda x: tf.reduce_all((x >= 0) & (x < vocab_size)))
        probabilities = tf.nn.softmax(tf.cast(model(ids, training=False), tf.float32))
        best = tf.math.top_k(probabilities, k=top)
        return {"words": tf.gather(names, best.indices), "word_probabilities": best.values,
                "word_ids": best.indices, "probabilities": probabilities,
                "context_ids": ids}

    def from_words(contexts):
        contexts = checked(contexts, [context], f"contexts must be a string tensor (batch, "
                                                f"{context}): the words of the context, one "
                                                "per element")
        return from_ids(lookup(contexts))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(lookup)
    archive.add_endpoint("serving_default", from_words,
                         [tf.TensorSpec((None, context), tf.string, name="contexts")])
    archive.add_endpoint("ids", from_ids,
                         [tf.TensorSpec((None, context), tf.int32, name="contexts")])
    return archive


def load_row(row_dir):
    """The model and the vocabulary (`WordVocabulary`) of a row directory."""
    model = keras.saving.load_model(os.path.join(row_dir, "model.keras"), safe_mode=True)
    return model, WordVocabulary.load(os.path.join(row_dir, "vocabulary.json"))


def archive(row_dir, info):
    from kcourse.tracks.words import sequence

    task = sequence.row_task(row_dir)
    if task is not None:
        return sequence.archive(row_dir, task)
    model, vocab = load_row(row_dir)
    return word_archive(model, vocab.words)


def predict_inputs(inputs):
    """`kcourse predict`'s inputs: each one a context, the words around the missing
    one separated by spaces, the missing one written `_` or left out: the CBoW's 2
    before and 2 after (`"the old _ was here"` or `"the old was here"`), the
    conjugation's 4 and 4, the generator's 6 before (`"... _"`). A string tensor `(n,
    k)`; the served graph says when k is not the model's."""
    contexts = []
    for given in inputs:
        words = str(given).split()
        if words.count("_") == 1:
            words.remove("_")
        if not words or "_" in words:
            raise SettingError(f"{given!r}: give the words around the missing one, with "
                               "at most one _ where it is, e.g. \"the old _ was here\"")
        contexts.append(words)
    if len({len(c) for c in contexts}) > 1:
        raise SettingError("every input must give the same number of words (the model's "
                           "context)")
    return tf.constant(contexts, tf.string)


def class_names(row_dir):
    """The served classes: the vocabulary's words in id order (`<unk>` first), or the
    12 be / have forms of a conjugation row."""
    from kcourse.tracks.words import sequence

    task = sequence.row_task(row_dir)
    if task is not None and task.get("labels"):
        return list(task["labels"])
    return list(WordVocabulary.load(os.path.join(row_dir, "vocabulary.json")).words)

