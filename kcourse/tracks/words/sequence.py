"""The words track's conjugation and generator rows: word vectors taken from a CBoW
(trained first, or an `inf265-embeddings` row), frozen; the row's network trained with
kcourse's `fit` on the plain cross-entropy, the model of the best validation accuracy
kept; its served graph; for the generator, samples decoded by beam search.

DIR/embedding/dim<d>/ holds the CBoW trained when `embedding=train` (model.keras,
vocabulary.json, its checkpoints), shared by the rows. DIR/rows/<tag>/ holds the row's
checkpoints, model.keras, vocabulary.json and task.json (the task, its context and
labels); a generator row also samples.json and samples.txt (the prompts' beam-search
continuations).
"""

import os

import keras
import numpy as np

from kcourse import plots
from kcourse.data.books import CONJUGATIONS, TASKS, UNK_ID
from kcourse.errors import SettingError
from kcourse.losses import SoftmaxCrossEntropy
from kcourse.runs.layout import read_json, write_json, write_text
from kcourse.training.checkpoints import save_model
from kcourse.tracks.words import experiments, track
from kcourse.tracks.words.model import conjugation_net, generator_net, word_vectors


def _context(task):
    setting = TASKS[task]
    return setting.before, setting.after


def embedding_vectors(row, splits):
    """The frozen word vectors `(V, d)` of a row, and where they come from."""
    config = row.config
    source = config["embedding"]
    if source != "train":
        row_dir = embedding_row(source, config["embedding_dim"])
        model, vocab = track.load_row(row_dir)
        if list(vocab.words) != list(splits.vocab.words):
            raise SettingError(f"embedding={source}: its vocabulary ({len(vocab)} words) is "
                               f"not these books' ({len(splits.vocab)} words); train the "
                               "embedding on the same books and min_freq")
        return word_vectors(model), row_dir
    out = os.path.join(row.out, "embedding", f"dim{config['embedding_dim']}")
    path = os.path.join(out, "model.keras")
    if not os.path.exists(path):
        cbow = {**experiments.DEFAULTS, "books": config["books"],
                "min_freq": config["min_freq"], "embedding_dim": config["embedding_dim"],
                "epochs": config["embedding_epochs"], "limit": config["limit"]}
        data = {split: track.windows(splits, split, config["limit"])
                for split in ("train", "validation")}
        weights = track.class_weights(cbow["class_weights"], splits.ids("train"),
                                      data["train"][1], len(splits.vocab))
        if row.verbose:
            print(f"the word vectors: the course's CBoW, dim {cbow['embedding_dim']}, "
                  f"{cbow['epochs']} epochs, into {out}")
        model, _ = track.train_model(cbow, splits, data,
                                     SoftmaxCrossEntropy(class_weights=weights.tolist()),
                                     out, row.seed, row.verbose)
        save_model(model, path)
        write_text(os.path.join(out, "vocabulary.json"), splits.vocab.to_json())
        return word_vectors(model), out
    model, _ = track.load_row(out)
    return word_vectors(model), out


def embedding_row(source, dim):
    """The row directory of the word vectors: `source` itself (a row directory, holding
    model.keras), or the row of the run directory `source` whose vectors have `dim`
    numbers."""
    source = os.path.abspath(os.path.expanduser(source))
    if os.path.isfile(os.path.join(source, "model.keras")):
        return source
    rows = os.path.join(source, "rows")
    found = []
    for tag in sorted(os.listdir(rows)) if os.path.isdir(rows) else []:
        info = os.path.join(rows, tag, "embedding.json")
        if os.path.isfile(info) and os.path.isfile(os.path.join(rows, tag, "model.keras")):
            if read_json(info).get("embedding_dim") == dim:
                found.append(os.path.join(rows, tag))
    if not found:
        raise SettingError(f"embedding={source}: no row of that inf265-embeddings run has "
                           f"word vectors of dim {dim}; run it with that embedding_dim or "
                           "set embedding=train")
    return found[0]


def build_model(task, config, vectors, seed=None):
    before, after = _context(task)
    if task == "conjugation":
        return conjugation_net(config["model"], vectors, len(CONJUGATIONS), before, after,
                               config["units"], config["heads"], config["key_dim"],
                               config["dropout"], seed=seed,
                               layers=config.get("layers", 1))
    return generator_net(vectors, before + after, config["units"], config["layers"],
                         config["dropout"], seed=seed)


def unknown_before(model, contexts, labels):
    """How a conjugation model does where the word just before the gap is `<unk>` (the
    course's vocabulary leaves out every word written with a capital, so "I" is
    `<unk>`): the share of such windows, and the accuracy on them and on the others
    (None where there are none)."""
    before = _context("conjugation")[0]
    right = np.asarray(model.predict(contexts, batch_size=1024, verbose=0)).argmax(-1) \
        == np.asarray(labels)
    unknown = np.asarray(contexts)[:, before - 1] == UNK_ID
    share = lambda mask: float(right[mask].mean()) if mask.any() else None  # noqa: E731
    return {"unk_before_share": float(unknown.mean()),
            "accuracy_unk_before": share(unknown), "accuracy_known_before": share(~unknown)}


def train_row(row):
    """Train and evaluate one conjugation or generator row (see the module)."""
    task, config, tag = row.spec["task"], row.config, row.tag
    title = tag.split("_", 1)[1] if "_" in tag else tag
    splits = track.data_for(config, row.data_dir)
    vocab = splits.vocab
    data = {split: track.windows(splits, split, config["limit"], task)
            for split in ("train", "validation", "test")}
    empty = [split for split, (_, y) in data.items() if not len(y)]
    if empty:
        raise SettingError(f"the books give no {' and no '.join(empty)} windows for the "
                           f"{task} task; give more text or a lower min_freq")
    vectors, source = embedding_vectors(row, splits)
    keras.utils.set_random_seed(row.seed)
    model = build_model(task, config, vectors, row.seed)
    loss = SoftmaxCrossEntropy()
    model, history = track.train_model(config, splits, data, loss, row.row_dir, row.seed,
                                       row.verbose, model=model)
    result = {"parameters": int(model.count_params()),
              "trainable_parameters": int(sum(np.prod(w.shape)
                                              for w in model.trainable_weights)),
              "train_windows": len(data["train"][1])}
    for split, prefix in (("validation", "val_"), ("test", "test_")):
        measured = track.evaluate_windows(model, loss, *data[split])
        result.update({prefix + "loss": measured["loss"],
                       prefix + "accuracy": measured["accuracy"]})
        if task == "conjugation":
            result.update({prefix + k: v for k, v in unknown_before(model, *data[split])
                           .items()})
    best = next((r for r in history.rows if r["step"] == history.best_step), {})
    result.update(train_accuracy=best.get("train_accuracy"), best_epoch=best.get("epoch"),
                  diverged=bool(history.diverged), train_seconds=history.seconds)
    save_model(model, os.path.join(row.row_dir, "model.keras"))
    write_text(os.path.join(row.row_dir, "vocabulary.json"), vocab.to_json())
    before, after = _context(task)
    write_json(os.path.join(row.row_dir, "task.json"),
               {"task": task, "before": before, "after": after,
                "labels": list(CONJUGATIONS) if task == "conjugation" else None,
                "embedding": source, "embedding_dim": int(vectors.shape[1])})
    if task == "generator":
        result["samples"] = write_samples(model, vocab, row.row_dir, config)
    for metric in ("loss", "accuracy"):
        plots.plot_curves(history.rows, metric,
                          os.path.join(row.figures, f"{tag}_{metric}.png"),
                          title=f"{task} {metric}: {title}")
    return result, history.rows


def write_samples(model, vocab, row_dir, config):
    """The beam-search continuations of `experiments.PROMPTS`, saved as samples.json and
    samples.txt; returns the best one of each prompt."""
    from kcourse.tracks.words.generation import MAX_WIDTH, generate_beam

    generator = beam_generator(model, vocab.words, sum(_context("generator")))
    width = min(config["beam_width"], MAX_WIDTH)
    samples = {p: generate_beam(generator, p, width, config["sample_length"])
               for p in experiments.PROMPTS}
    write_json(os.path.join(row_dir, "samples.json"),
               {p: [[t, round(s, 4)] for t, s in found] for p, found in samples.items()})
    write_text(os.path.join(row_dir, "samples.txt"), "".join(
        f"{p!r}, beam width {width}:\n" + "".join(f"  {s:9.3f}  {t}\n" for t, s in found)
        for p, found in samples.items()))
    return {p: found[0][0] for p, found in samples.items()}


def beam_generator(model, words, context, lookup=None):
    from kcourse.tracks.words.generation import BeamGenerator

    return BeamGenerator(model, words, context, lookup or track.WordLookup(words))


def row_task(row_dir):
    """task.json of a conjugation / generator row, None for a CBoW row."""
    path = os.path.join(row_dir, "task.json")
    return read_json(path) if os.path.exists(path) else None


def archive(row_dir, task):
    """The row's served graph: `serving_default` and `ids` as the CBoW's (the context
    words in, the likeliest classes out), and for the generator `generate_beam`."""
    model, vocab = track.load_row(row_dir)
    context = task["before"] + task["after"]
    labels = task["labels"] or list(vocab.words)
    lookup = track.WordLookup(vocab.words)  # one table for both signatures
    archive = track.word_archive(model, vocab.words, context=context, labels=labels,
                                 lookup=lookup)
    if task["task"] == "generator":
        generator = beam_generator(model, vocab.words, context, lookup)
        archive.track(generator)
        archive.add_endpoint("generate_beam", generator.generate_beam)
    return archive


def load_generator(row_dir):
    """The `BeamGenerator` of a generator row."""
    task = row_task(row_dir)
    if not task or task["task"] != "generator":
        raise SettingError(f"{row_dir} is not a row of a next-word generator; give the "
                           "directory of `kcourse run inf265-generator`")
    model, vocab = track.load_row(row_dir)
    return beam_generator(model, vocab.words, task["before"] + task["after"])

