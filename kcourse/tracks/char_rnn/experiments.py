"""The character-level experiments of DD2424 Assignment 4, as plain data (no TensorFlow).

The models read the text in order (truncated back-propagation through time); `text` is
TFDS's `tiny_shakespeare` or the path of a UTF-8 text file (`--text`).
"""

import os
import re

from kcourse.experiments import at_least, non_negative, one_of, positive

CHAR_DEFAULTS = {
    "text": "tiny_shakespeare",  # TFDS dataset, or the path of a UTF-8 text file (--text)
    "cell": "vanilla",       # vanilla (hand-written, course) | lstm | gru
    "units": 100,            # m, size of the hidden state(s)
    "layers": 1,
    "embedding_dim": 0,      # 0: one-hot inputs (vanilla) / units (lstm, gru)
    "dropout": 0.0,
    "sigma": 0.01,           # init std of the vanilla RNN's weights
    "seq_length": 25,        # characters per update (truncated BPTT)
    "batch_size": 1,         # parallel contiguous streams of the text
    "optimizer": "adagrad",  # adagrad (hand-written) | rmsprop (its variant) | adam
    "eta": 0.1,
    "clip": 5.0,             # gradient clipping threshold ...
    "clip_mode": "value",    # ... element-wise (course) or by global norm
    "updates": 100000,
    "minutes": 0.0,          # stop after this much training time (0: no limit)
    "log_every": 100,        # smooth loss every ... updates
    "eval_every": 0,         # validation loss and checkpoint every ... updates
                             # (0: a tenth of the updates)
    "sample_every": 0,       # a printed sample every ... updates (0: eval_every)
    "sample_length": 200,
    "final_sample_length": 1000,  # sampled from the model with the best smooth loss
    "temperature": 1.0,
    "top_p": 1.0,
    "val_chars": 0,          # evaluate on the first ... validation characters (0: all)
    "select": "smooth_loss",  # the kept model: lowest smooth_loss (course) or val_loss
    "threads": 1,            # TensorFlow threads (0: its default); the course's batch of
                             # one runs ~1.5x faster on one thread (benchmarks/bench_rnn.py)
}
CHAR_QUICK = {"updates": 300, "eval_every": 100, "sample_every": 100, "sample_length": 40,
              "final_sample_length": 100, "val_chars": 5000}

EXPERIMENTS = {
    "a4": {
        "description": "Vanilla RNN (m=100) on tiny_shakespeare, hand-written AdaGrad, "
                       "clip 5, 100,000 updates",
        "reference": "DD2424 A4: smooth loss ~47.6 after 30k updates on its book; a NumPy "
                     "twin reaches 49.3 after 100k on tiny_shakespeare",
        "task": "char",
        "defaults": CHAR_DEFAULTS,
        "rows": [{}],
        "quick": CHAR_QUICK,
        # m=5, 25 characters. At the course's sigma .01 the gradients of W are ~1e-8
        # and float64 round-off alone gives relative errors of 1e-5 (growing as h
        # shrinks), so the check runs at sigma .1 with h 1e-4 (errors ~1e-7)
        "gradcheck": {"rows": [{"sigma": 0.1}], "units": 5, "chars": 25, "threshold": 1e-6,
                      "h": 1e-4},
    },
    "a4-long": {
        "description": "The a4 vanilla RNN for 300,000 updates (~7 epochs), best model's "
                       "1,000-character sample",
        "reference": "DD2424 A4: ~39.5 after ~360k updates on its book; NumPy twin 47.55 "
                     "on tiny_shakespeare",
        "task": "char",
        "defaults": {**CHAR_DEFAULTS, "updates": 300000, "eval_every": 10000},
        "rows": [{}],
        "quick": CHAR_QUICK,
    },
    "char-lstm": {
        "description": "LSTM language model: mini-batches of parallel streams, dropout, "
                       "Adam, 1,600 updates (~20 minutes of CPU training)",
        "reference": "beyond the course: a small GPT on CPU reaches 1.88 nats/char "
                     "validation (nanoGPT's shakespeare_char)",
        "task": "char",
        "defaults": {**CHAR_DEFAULTS, "cell": "lstm", "units": 384, "layers": 2,
                     "embedding_dim": 64, "dropout": 0.25, "seq_length": 100,
                     "batch_size": 64, "optimizer": "adam", "eta": 2e-3, "clip": 50.0,
                     # budgeted in updates (what 20 minutes gave on an idle 2-core
                     # machine), so that the result does not depend on the load
                     "clip_mode": "norm", "updates": 1600, "threads": 0,
                     "select": "val_loss", "eval_every": 200, "sample_every": 2000},
        "rows": [{}],
        "quick": {**CHAR_QUICK, "units": 32, "batch_size": 8, "seq_length": 25,
                  "minutes": 0.0},
    },
}

# the rules of the settings a user may change with --set
CHECKS = {
    "cell": one_of("vanilla", "lstm", "gru"),
    "units": at_least(1),
    "layers": at_least(1),
    "embedding_dim": non_negative(" (0: one-hot)"),
    "dropout": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "sigma": positive(),
    "seq_length": at_least(1),
    "batch_size": at_least(1),
    "optimizer": one_of("adagrad", "rmsprop", "adam"),
    "eta": positive(),
    "clip": positive(),
    "clip_mode": one_of("value", "norm"),
    "updates": at_least(1),
    "minutes": non_negative(" (0: no limit)"),
    "log_every": at_least(1),
    "eval_every": non_negative(" (0: a tenth of the updates)"),
    "sample_every": non_negative(" (0: eval_every)"),
    "sample_length": at_least(1),
    "final_sample_length": at_least(1),
    "temperature": non_negative(" (0: greedy)"),
    "top_p": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "val_chars": non_negative(" (0: all)"),
    "select": one_of("smooth_loss", "val_loss"),
    "threads": non_negative(" (0: TensorFlow's default)"),
}

# what each setting means (`kcourse list EXP`)
SETTINGS = {
    "text": "tiny_shakespeare (TFDS) or the path of a UTF-8 text file (--text)",
    "cell": "vanilla (hand-written, the course's) | lstm | gru",
    "units": "m, the size of the hidden state(s)",
    "layers": "stacked recurrent layers",
    "embedding_dim": "0: one-hot inputs (vanilla) / units (lstm, gru); else an embedding "
                     "of this size",
    "dropout": "dropout rate between layers",
    "sigma": "std of the vanilla RNN's initial weights",
    "seq_length": "characters per update (truncated back-propagation through time)",
    "batch_size": "parallel contiguous streams of the text",
    "optimizer": "adagrad (hand-written, the course's) | rmsprop (its variant) | adam",
    "eta": "learning rate",
    "clip": "gradient clipping threshold ...",
    "clip_mode": "... element-wise (value, the course's) or by global norm (norm)",
    "updates": "number of updates",
    "minutes": "stop after this much training time (0: no limit)",
    "log_every": "updates between smooth-loss history rows",
    "eval_every": "updates between validation losses and checkpoints (0: a tenth of the "
                  "updates)",
    "sample_every": "updates between printed samples (0: as eval_every)",
    "sample_length": "characters of each printed sample",
    "final_sample_length": "characters sampled from the kept model at the end",
    "temperature": "sampling temperature (0: greedy)",
    "top_p": "nucleus sampling mass in (0, 1] (1: no cut)",
    "val_chars": "evaluate on the first this many validation characters (0: all)",
    "select": "the kept model: lowest smooth_loss (the course's) or val_loss",
    "threads": "TensorFlow threads (0: its default); the batch of one runs faster on one",
}


def run_name(experiment, config):
    """The default run directory's name: the experiment's, plus the text's file name
    when the text is a user's file (`kcourse run a4 --text alice.txt` -> `a4-alice`)."""
    text = config["text"]
    if text == CHAR_DEFAULTS["text"]:
        return experiment
    stem = os.path.splitext(os.path.basename(text.rstrip("/\\")))[0]
    return f"{experiment}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', stem).strip('-.') or 'text'}"
