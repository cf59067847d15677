"""The word-model experiments of UiB INF265 project 3 ("Sequence data"), as plain data.

The data are the course's 15 Project Gutenberg books (`kcourse.data.books`): 13 books
for training, one for validation (A Study in Scarlet), one for testing (Twenty Thousand
Leagues under the Sea); the vocabulary is the 1,878 words seen at least 100 times in the
training books (no digit, no ASCII capital) plus `<unk>`, 1,879 ids. A folder of the
user's UTF-8 `.txt` files can replace them (`--set books=PATH`, every book cut 90/5/5
by lines).

`inf265-embeddings` reproduces the course's solution (`code_solutions/cbow.py`,
`seq02-embedding.ipynb`): every word that is not `<unk>` is predicted from the 2 words
before and the 2 after it (at most 2 of the 4 `<unk>`: 2,189,031 training windows, 40,333
validation, 94,891 test); the 4 context words are embedded, the 4 embeddings put side by
side (not averaged: the course's `CBoW` flattens them), passed through a ReLU, and one
dense layer gives the scores of the 1,879 words. The loss is the cross-entropy weighted
per target word with the course's weights `1 - f_k / N` (see `SETTINGS["class_weights"]`).
Rows are compared, and the model of the best validation accuracy kept, on the validation
windows; the test windows are measured once, at the end of each row.

`inf265-conjugation` (the course's `seq03-predictor.ipynb`): the missing be / have form
(12 classes, `kcourse.data.books.CONJUGATIONS`) from the 4 words before and the 4 after
it (at most 4 of the 8 `<unk>`: 123,650 training windows, 2,584 validation, 4,735
test), the word vectors frozen; an MLP, an RNN (an LSTM on each side) and self-attention
(hand-written `MultiHeadSelfAttention` with positions), plain cross-entropy.

`inf265-generator` (`seq04-generator.ipynb`): the next word from the 6 before it (at
most 3 `<unk>`, never , . ! ? as targets: 1,888,292 training windows), an LSTM over the
frozen word vectors, then text decoded by beam search.

Both take their word vectors from `embedding`: `train` (default) trains the course's
CBoW first (`inf265-embeddings`' network and loss, `embedding_dim` numbers,
`embedding_epochs` epochs) into DIR/embedding/, shared by the rows; or the row
directory of an `inf265-embeddings` run (`--set
embedding=runs/inf265-embeddings`: its row of `embedding_dim` numbers).
"""

import os
import re

from kcourse.experiments import at_least, one_of, positive

COMBINES = ("concat", "mean", "sum")
CLASS_WEIGHTS = ("course", "inverse", "none")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "one_cycle")
BOOKS = "inf265"  # the course's folders under the data directory

# the course's query words (seq02-embedding.ipynb), their neighbours listed after a row
QUERY_WORDS = ("the", "table", "man", "little", "big", "always", "mind", "black", "white",
               "child", "children", "yes", "out", "me", "have", "be")

DEFAULTS = {
    "books": BOOKS,           # inf265: the course's books | a folder of UTF-8 .txt files
    "min_freq": 100,          # fewest occurrences of a vocabulary word in the training books
    "embedding_dim": 12,      # numbers per word vector
    "combine": "concat",      # concat (the course's) | mean | sum of the 4 context vectors
    "class_weights": "course",  # course: 1 - f_k/N | inverse: 1/n_k | none (all normalised)
    "optimizer": "adam",      # adam (the course's) | sgd
    "eta": 0.001,             # learning rate
    "epochs": 30,
    "batch_size": 2048,       # the course's final run (its script: 1024)
    "limit": 0,               # keep only the first `limit` windows of every split (0: all)
    "neighbours": 10,         # nearest words listed per query word
}

# the course's run (seq02-embedding.ipynb): context 2, dim 12, its weights, Adam 0.001,
# 30 epochs, batch 2048; its second saved model had dim 16; and a larger embedding
ROWS = [{"embedding_dim": 12}, {"embedding_dim": 16}, {"embedding_dim": 64}]

QUICK = {"limit": 20_000, "epochs": 2, "rows": 2}

EXPERIMENTS = {
    "inf265-embeddings": {
        "description": "CBoW word embeddings on 15 Project Gutenberg books: predict a word "
                       "from the 2 words before and the 2 after it; the course's network "
                       "(4 embeddings side by side, ReLU, one dense layer to the 1,879 "
                       "words), its weighted cross-entropy, Adam 0.001, 30 epochs; "
                       "embedding dims 12 (the course's), 16 and 64. Writes the nearest "
                       "neighbours of the course's 16 query words, the vectors as TSV "
                       "for the TensorBoard projector and a 2-D projection",
        "reference": "course solution (dim 12, 30 epochs): accuracy training .2361, "
                     "validation .2342, test .2461",
        "defaults": DEFAULTS,
        "rows": ROWS,
        "quick": QUICK,
    },
}

# dim 12 beyond the course (chosen on the validation book, 30 epochs, best validation
# accuracy). The course's network is at its limit: constant rate .001 (its) 23.74%, .01
# 23.46%, one cycle peaking at .01 23.64% (kcourse.schedules.OneCycle); a hidden layer
# between the vectors and the scores lets the context words act together: 64 units,
# 26.40% (test 27.33%, measured once)
EXPERIMENTS["inf265-embeddings-best"] = {
    "task": "embedding",
    "description": "CBoW at the course's dim 12 with a hidden ReLU layer of 64 units "
                   "between the 4 context vectors and the scores (the course's network "
                   "has none), its weighted cross-entropy, Adam .001, 30 epochs",
    "reference": "course solution (dim 12, 30 epochs, no hidden layer): accuracy "
                 "training .2361, validation .2342, test .2461",
    "defaults": {**DEFAULTS, "hidden": 64, "schedule": "constant"},
    "rows": [{"embedding_dim": 12}],
    "quick": {**QUICK, "rows": 1},
}


CONJUGATION_MODELS = ("mlp", "rnn", "attention")

SEQUENCE_DEFAULTS = {
    "books": BOOKS,
    "min_freq": 100,
    "embedding": "train",     # train: the course's CBoW first | an inf265-embeddings row
    "embedding_dim": 16,      # numbers per word vector when trained here (course: 16)
    "embedding_epochs": 30,   # epochs of that CBoW
    "optimizer": "adam",
    "eta": 0.001,
    "limit": 0,
}

CONJUGATION_DEFAULTS = {
    **SEQUENCE_DEFAULTS,
    "model": "mlp",           # mlp | rnn | attention
    "units": 128,             # hidden units (MLP, attention) / LSTM units per side (RNN)
    "heads": 4,               # attention heads
    "key_dim": 16,            # numbers per head's query / key / value
    "dropout": 0.0,           # before the scores layer
    "epochs": 20,
    "batch_size": 256,
}

# the course's three networks on its 16-number vectors, then the same on 64 numbers, then
# a wider RNN with dropout (chosen on the validation book: .659 against .654 for 128 units)
CONJUGATION_ROWS = [{"model": "mlp"}, {"model": "rnn"}, {"model": "attention"},
                    {"model": "mlp", "embedding_dim": 64}, {"model": "rnn", "embedding_dim": 64},
                    {"model": "attention", "embedding_dim": 64},
                    {"model": "rnn", "embedding_dim": 64, "units": 256, "dropout": 0.3}]

GENERATOR_DEFAULTS = {
    **SEQUENCE_DEFAULTS,
    "units": 256,             # LSTM units
    "layers": 1,              # stacked LSTMs
    "dropout": 0.0,
    "epochs": 5,
    "batch_size": 1024,
    "beam_width": 3,          # the course's width for the samples written after a row
    "sample_length": 20,      # words per sample
}

GENERATOR_ROWS = [{"embedding_dim": 16}, {"embedding_dim": 64}]

# the prompts of the samples written after a generator row (the course's first one, and
# prompts of its test book's kind)
PROMPTS = ("i am a", "the captain said that", "we were in the middle of the",
           "it was a dark and")

EXPERIMENTS["inf265-conjugation"] = {
    "task": "conjugation",
    "description": "The missing be / have form (12 classes: was, were, be, is, are, am, "
                   "been, being, have, has, had, having) from the 4 words before and the "
                   "4 after it, the word vectors frozen: an MLP, an RNN (an LSTM reading "
                   "each side towards the gap) and hand-written multi-head self-attention "
                   "with positional encoding",
    "reference": "course solution (dim 16): test accuracy MLP .506, RNN .561, "
                 "attention .49-.52",
    "defaults": CONJUGATION_DEFAULTS,
    "rows": CONJUGATION_ROWS,
    "quick": {"limit": 4_000, "epochs": 2, "embedding_epochs": 1, "units": 16,
              "key_dim": 4, "heads": 2, "rows": 3},
}

# beyond the course: the two sides read in the light of each other (a bidirectional LSTM
# over all 8 words under the RNN's two readers), on the 64-number vectors
EXPERIMENTS["inf265-conjugation-stacked"] = {
    "task": "conjugation",
    "description": "The missing be / have form from the 4 words before and the 4 after "
                   "it, the 64-number word vectors frozen: the RNN over a bidirectional "
                   "LSTM that reads all 8 words, so that each side is read in the light "
                   "of the other",
    "reference": "course solution (dim 16): test accuracy RNN .561; kcourse's RNN on "
                 "64-number vectors: .5930, with 256 units and dropout .3: .5956",
    # layers: the RNN's, 1 + the bidirectional LSTMs under its two readers (only here, so
    # that run directories of inf265-conjugation made before it still resume)
    "defaults": {**CONJUGATION_DEFAULTS, "model": "rnn", "embedding_dim": 64, "layers": 2},
    "rows": [{"dropout": 0.3}],
    "quick": {"limit": 4_000, "epochs": 2, "embedding_epochs": 1, "units": 8, "rows": 1},
}

EXPERIMENTS["inf265-generator"] = {
    "task": "generator",
    "description": "The next word from the 6 words before it (an LSTM over the frozen "
                   "word vectors), then text by in-graph beam search: `kcourse generate "
                   "RUN_DIR --prompt ... --beam 5`",
    "reference": "course solution: test accuracy .179; its samples decoded by beam search "
                 "of width 3",
    "defaults": GENERATOR_DEFAULTS,
    "rows": GENERATOR_ROWS,
    "quick": {"limit": 4_000, "epochs": 1, "embedding_epochs": 1, "units": 16,
              "sample_length": 5, "rows": 1},
}

EXPERIMENTS["inf265-embeddings"]["task"] = "embedding"


def _embedding(value):
    path = os.path.expanduser(str(value))
    return value == "train" or os.path.isfile(os.path.join(path, "model.keras")) or \
        os.path.isdir(os.path.join(path, "rows"))


def _books(value):
    return value == BOOKS or os.path.isdir(os.path.expanduser(value))


CHECKS = {
    "books": (_books, "must be inf265 (the course's books) or an existing folder of UTF-8 "
                      ".txt files"),
    "min_freq": at_least(1),
    "embedding_dim": at_least(1),
    "combine": one_of(*COMBINES),
    "class_weights": one_of(*CLASS_WEIGHTS),
    "optimizer": one_of(*OPTIMIZERS),
    "eta": positive(),
    "schedule": one_of(*SCHEDULES),
    "hidden": (lambda v: v >= 0, "must be >= 0 (0: no hidden layer, the course's)"),
    "epochs": at_least(1),
    "batch_size": at_least(1),
    "limit": (lambda v: v >= 0, "must be non-negative (0: all windows)"),
    "neighbours": at_least(1),
    "embedding": (_embedding, "must be train, or the directory of an inf265-embeddings "
                              "run or of one of its rows"),
    "embedding_epochs": at_least(1),
    "model": one_of(*CONJUGATION_MODELS),
    "units": at_least(1),
    "heads": at_least(1),
    "key_dim": at_least(1),
    "layers": at_least(1),
    "dropout": ((lambda v: 0 <= v < 1), "must be in [0, 1)"),
    "beam_width": at_least(1),
    "sample_length": at_least(1),
}

# what each setting means (`kcourse list EXP`)
SETTINGS = {
    "books": "inf265: the course's 15 books (books/inf265/ under the data directory) | the "
             "path of a folder of UTF-8 .txt files, every book cut 90/5/5 by lines into "
             "train / validation / test",
    "min_freq": "fewest occurrences of a vocabulary word in the training books (100: the "
                "course's 1,879 words with <unk>)",
    "embedding_dim": "numbers per word vector (the course's: 12)",
    "combine": "concat: the course's CBoW, the 4 context vectors side by side, ReLU, dense "
               "layer | mean: their average, dense layer (word2vec's CBoW) | sum: their "
               "sum, dense layer",
    "class_weights": "weight of a window's loss by its target word k, normalised to "
                     "average 1 over the training windows: course: 1 - f_k/N (f_k the "
                     "occurrences of k among the N training tokens; all near 1) | "
                     "inverse: 1/n_k (n_k the training windows of target k) | none",
    "optimizer": "adam: Adam (the course's) | sgd: plain SGD",
    "eta": "learning rate (with schedule one_cycle: its peak)",
    "hidden": "ReLU units between the context vectors and the scores (0: none, the "
              "course's network)",
    "schedule": "constant: eta throughout (the course's) | one_cycle: kcourse.schedules."
                "OneCycle, from eta/10 up to eta over the first quarter of the updates, "
                "then down to 0",
    "epochs": "passes over the training windows",
    "batch_size": "windows per update",
    "limit": "only the first `limit` windows of every split (0: all; quick runs)",
    "neighbours": "nearest words (cosine similarity of the vectors) listed per query word",
    "embedding": "train: train the course's CBoW first (embedding_dim, embedding_epochs), "
                 "kept in DIR/embedding/ | the directory of an inf265-embeddings run (its "
                 "row of vectors of embedding_dim numbers is used) | one of its rows",
    "embedding_epochs": "epochs of the CBoW trained when embedding=train",
    "model": "mlp: vectors side by side, ReLU layer | rnn: an LSTM per side, read towards "
             "the gap (over layers - 1 bidirectional LSTMs) | attention: positions, "
             "multi-head self-attention, residual, layer norm, ReLU layer",
    "units": "hidden units (MLP, attention), LSTM units (RNN: per side and direction; "
             "generator)",
    "heads": "attention heads",
    "key_dim": "numbers per attention head's queries, keys and values",
    "layers": "stacked LSTMs of the generator; the RNN's layers: layers - 1 "
              "bidirectional LSTMs over all 8 words under its two readers",
    "dropout": "dropout rate before the scores layer (0: none)",
    "beam_width": "beams of the samples written after a generator row",
    "sample_length": "words per sample written after a generator row",
}


def run_name(experiment, config):
    """The default run directory's name: the experiment's, plus the folder's name when
    the books are a user's folder (`--set books=~/texts` -> `inf265-embeddings-texts`)."""
    books = config["books"]
    if books == BOOKS:
        return experiment
    stem = os.path.basename(os.path.normpath(os.path.expanduser(books)))
    return f"{experiment}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', stem).strip('-.') or 'books'}"
