"""One row of a character-level experiment (`task: "char"`), and its gradient check.

DIR/rows/<tag>/ holds vocab.json, model.keras (the best model: lowest smooth loss as
the course keeps it, or lowest validation loss, by the setting `select`), samples.txt
(the samples printed during training), final_sample.txt (1,000 characters of the best
model) and the checkpoints; DIR/figures/<tag>_losses.png the loss curves. The row's
`val_loss_per_char` and `test_loss_per_char` are the best model's; the final model's
validation loss is `final_val_loss_per_char`.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kcourse import plots
from kcourse.char_model import CharModel
from kcourse.char_train import fit_chars, loss_per_char, sequence_loss, set_threads
from kcourse.data.text import load_text
from kcourse.gradcheck import check_gradients
from kcourse.optimizers import AdaGrad
from kcourse.sampling import generate


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


def char_row(spec, config, out, tag, row_dir, data_dir, seed, verbose):
    """Train one character model; return its metrics row and history rows."""
    if not set_threads(config["threads"]) and verbose:
        print(f"Note: threads={config['threads']} not applied, TensorFlow is already "
              "running (it applies when the run is the process's first TensorFlow work).")
    texts = load_text(config["text"], data_dir)
    vocab = texts.vocab
    os.makedirs(row_dir, exist_ok=True)
    vocab.save(os.path.join(row_dir, "vocab.json"))
    val_ids = vocab.encode(texts.validation[:config["val_chars"] or None])
    test_ids = vocab.encode(texts.test[:config["val_chars"] or None])
    keras.utils.set_random_seed(seed)
    model = build_char_model(config, len(vocab), seed)
    train_ids = vocab.encode(texts.train)
    run = fit_chars(model, build_optimizer(config), train_ids, updates=config["updates"],
                    seq_length=config["seq_length"], batch_size=config["batch_size"],
                    val_ids=val_ids, vocab=vocab,
                    log_every=config["log_every"], eval_every=config["eval_every"],
                    sample_every=config["sample_every"],
                    sample_length=config["sample_length"],
                    time_limit=config["minutes"] * 60 or None, select=config["select"],
                    out_dir=row_dir, seed=seed, verbose=verbose)
    rows, last = run["rows"], run["rows"][-1]
    if run["best_weights"] is not None:  # the saved and reported model: the best one
        model.set_weights(run["best_weights"])
    model.save(os.path.join(row_dir, "model.keras"))
    chars = last["updates"] * config["seq_length"] * config["batch_size"]
    result = {"updates": last["updates"], "epochs": chars / len(train_ids),
              "smooth_loss": last["smooth_loss"], "final_val_loss_per_char":
              last["val_loss_per_char"], "best_updates": run["best_updates"],
              f"best_{config['select']}": run["best_score"],
              "val_loss_per_char": (last["val_loss_per_char"]
                                    if run["best_updates"] == last["updates"]
                                    else loss_per_char(model, val_ids)),
              "test_loss_per_char": loss_per_char(model, test_ids),
              "train_seconds": run["seconds"], "chars_per_second": chars / run["seconds"],
              "updates_per_second": last["updates"] / run["seconds"],
              "vocab_size": len(vocab), "diverged": run["diverged"]}
    with open(os.path.join(row_dir, "samples.txt"), "w", encoding="utf-8") as f:
        for updates, text in run["samples"]:
            f.write(f"--- after {updates} updates ---\n{text}\n\n")
    sample = generate(model, vocab, "\n", config["final_sample_length"],
                      config["temperature"], config["top_p"], seed)
    with open(os.path.join(row_dir, "final_sample.txt"), "w", encoding="utf-8") as f:
        f.write(sample)
    if verbose:
        print(f"\n--- {config['final_sample_length']} characters from the best model "
              f"({config['select']} {run['best_score']:.3f} after {run['best_updates']} "
              f"updates) ---\n{sample}\n")
    plots.plot_char_losses(rows, os.path.join(out, "figures", f"{tag}_losses.png"),
                           title=f"{config['cell']} RNN, {config['units']} units: {tag}")
    return result, rows


def char_gradcheck(spec, data_dir=None, seed=0):
    """Gradient check of the experiment's character model (float64, small hidden size)
    on the first characters of its training text. Returns like `gradcheck_experiment`."""
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
