"""The character track's TensorFlow side: one row of an experiment, its figures, the
exported text generator and the gradient check.

DIR/rows/<tag>/ holds vocab.json, model.keras (the best model: lowest smooth loss as
the course keeps it, or lowest validation loss, by the setting `select`), samples.txt
(the samples printed during training), final_sample.txt (1,000 characters of the best
model) and the checkpoints; DIR/figures/<tag>_losses.png the loss curves. The row's
`val_loss_per_char` and `test_loss_per_char` are the best model's; the final model's
validation loss is `final_val_loss_per_char`.
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from kcourse import plots
from kcourse.data.text import Vocabulary, load_text
from kcourse.errors import SettingError
from kcourse.optimizers import AdaGrad
from kcourse.runs.layout import write_text
from kcourse.tracks.char_rnn.generation import MAX_LENGTH, TextGenerator, generate
from kcourse.tracks.char_rnn.model import CharModel
from kcourse.tracks.char_rnn.train import fit_chars, loss_per_char, sequence_loss
from kcourse.training.checkpoints import save_model
from kcourse.training.gradcheck import check_gradients
from kcourse.training.threads import set_threads


# training has diverged when the loss of a sequence exceeds this many times that of a
# uniform guess over the vocabulary (T ln V), or is NaN
DIVERGED = 10


def build_char_model(config, vocab_size, seed, dtype=None):
    model = CharModel(vocab_size, config["cell"], config["units"], config["layers"],
                      config["embedding_dim"], config["dropout"], config["sigma"], seed=seed,
                      dtype=dtype)
    model.build()
    return model


def build_optimizer(config):
    """The row's optimizer, clipping as `clip_mode` says."""
    clip = ({"clipvalue": config["clip"]} if config["clip_mode"] == "value"
            else {"global_clipnorm": config["clip"]})
    if config["optimizer"] == "adagrad":
        return AdaGrad(config["eta"], **clip)
    if config["optimizer"] == "rmsprop":
        return AdaGrad(config["eta"], rho=0.9, **clip)
    return keras.optimizers.Adam(config["eta"], **clip)


def eval_every(config):
    """Updates between validation losses: the setting, or (0) a tenth of the updates."""
    return config["eval_every"] or max(1, config["updates"] // 10)


def train_row(row):
    """Train one character model (a `kcourse.runs.RowContext`); return its metrics
    row and history rows."""
    config, row_dir, seed, verbose = row.config, row.row_dir, row.seed, row.verbose
    if not set_threads(config["threads"]) and verbose:
        print(f"Note: threads={config['threads']} not applied, TensorFlow is already "
              "running (it applies when the run is the process's first TensorFlow work).")
    texts = load_text(config["text"], row.data_dir)
    per_stream = len(texts.train) // config["batch_size"]
    if per_stream < config["seq_length"] + 1:
        raise SettingError(f"{config['text']} has {len(texts.train):,} training characters: "
                           f"{config['batch_size']} streams of {per_stream} are shorter than "
                           f"seq_length + 1 = {config['seq_length'] + 1}; lower batch_size "
                           "or seq_length")
    vocab = texts.vocab
    os.makedirs(row_dir, exist_ok=True)
    write_text(os.path.join(row_dir, "vocab.json"), vocab.to_json())
    val_ids = vocab.encode(texts.validation[:config["val_chars"] or None])
    test_ids = vocab.encode(texts.test[:config["val_chars"] or None])
    keras.utils.set_random_seed(seed)
    model = build_char_model(config, len(vocab), seed)
    train_ids = vocab.encode(texts.train)
    run = fit_chars(model, build_optimizer(config), train_ids, updates=config["updates"],
                    seq_length=config["seq_length"], batch_size=config["batch_size"],
                    val_ids=val_ids, vocab=vocab,
                    log_every=config["log_every"], eval_every=eval_every(config),
                    sample_every=config["sample_every"] or eval_every(config),
                    sample_length=config["sample_length"],
                    time_limit=config["minutes"] * 60 or None, select=config["select"],
                    max_loss=DIVERGED * config["seq_length"] * math.log(len(vocab)),
                    out_dir=row_dir, seed=seed, verbose=verbose)
    rows, last = run.rows, run.rows[-1]
    if run.best_weights is not None:  # the saved and reported model: the best one
        model.set_weights(run.best_weights)
    save_model(model, os.path.join(row_dir, "model.keras"))
    chars = last["step"] * config["seq_length"] * config["batch_size"]
    result = {"updates": last["step"], "epochs": chars / len(train_ids),
              "smooth_loss": last["smooth_loss"], "final_smooth_loss": last["smooth_loss"],
              "final_val_loss_per_char":
              last["val_loss_per_char"], "best_updates": run.best_step,
              f"best_{config['select']}": run.best_score,
              "val_loss_per_char": (last["val_loss_per_char"]
                                    if run.best_step == last["step"]
                                    else loss_per_char(model, val_ids)),
              "test_loss_per_char": loss_per_char(model, test_ids),
              "train_seconds": run.seconds, "chars_per_second": chars / run.seconds,
              "updates_per_second": last["step"] / run.seconds,
              "vocab_size": len(vocab), "diverged": run.diverged}
    write_text(os.path.join(row_dir, "samples.txt"), "".join(
        f"--- after {updates} updates ---\n{text}\n\n" for updates, text in run.samples))
    sample = generate(model, vocab, "\n", config["final_sample_length"],
                      config["temperature"], config["top_p"], seed)
    write_text(os.path.join(row_dir, "final_sample.txt"), sample)
    if verbose:
        chosen = (f"the best model ({config['select']} {run.best_score:.3f} after "
                  f"{run.best_step} updates)" if run.best_weights is not None else
                  "the last finite model")
        print(f"\n--- {config['final_sample_length']} characters from {chosen} ---\n"
              f"{sample}\n")
    plots.plot_char_losses(rows, os.path.join(row.figures, f"{row.tag}_losses.png"),
                           title=f"{os.path.basename(config['text'])}: {config['cell']} RNN, "
                                 f"{config['units']} units ({row.tag})")
    return result, rows


def load_row(row_dir):
    """The trained model and vocabulary of a run's row."""
    model = keras.saving.load_model(os.path.join(row_dir, "model.keras"), safe_mode=True)
    return model, Vocabulary.load(os.path.join(row_dir, "vocab.json"))


def text_archive(model, vocab, max_length=MAX_LENGTH):
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


def archive(row_dir, info):
    """The `ExportArchive` of a run's row: text generation in the graph."""
    return text_archive(*load_row(row_dir))


def gradcheck(spec, data_dir=None, seed=0):
    """Gradient check of the experiment's character model (float64, small hidden size)
    on the first characters of its training text. Returns `(threshold, [(setting,
    {variable: max relative error})])`."""
    check = spec["gradcheck"]
    texts = load_text(spec["defaults"]["text"], data_dir)
    ids = texts.vocab.encode(texts.train[:check["chars"] + 1])[None]
    x, y = ids[:, :-1], ids[:, 1:]
    results = []
    for setting in check["rows"]:
        config = {**spec["defaults"], "units": check["units"], **setting}
        keras.utils.set_random_seed(seed)
        model = build_char_model(config, len(texts.vocab), seed, dtype="float64")
        h0 = tf.constant(np.random.default_rng(seed).normal(0, 0.1, (1, config["units"])))

        def cost():
            return sequence_loss(model(x, [h0])[0], y)

        results.append((setting, check_gradients(cost, model.trainable_variables,
                                                  h=check["h"])))
    return check["threshold"], results
