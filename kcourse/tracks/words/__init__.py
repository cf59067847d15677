"""Word models on Project Gutenberg books (UiB INF265 project 3): CBoW word embeddings
trained by predicting a word from the 2 words on each side, as the course does; their
nearest neighbours, the vectors for the TensorBoard Embedding Projector, a 2-D
projection; served on words (strings in, the 5 likeliest missing words out).

TensorFlow-free: the experiments are plain data (`experiments.py`); the training,
figures and exports are in `track.py`, imported when a command needs them.
"""

from kcourse.tracks import Track
from kcourse.tracks.words.experiments import CHECKS, EXPERIMENTS, SETTINGS, run_name

TRACK = Track(
    name="words",
    title="word models on Project Gutenberg books (INF265 project 3)",
    experiments=EXPERIMENTS,
    settings=SETTINGS,
    checks=CHECKS,
    impl="kcourse.tracks.words.track",
    columns=("embedding_dim", "combine", "model", "units", "val_loss", "val_accuracy", "test_loss",
             "test_accuracy"),
    legend="accuracy: windows whose missing word (or form, or next word) is the likeliest "
           "one (plain, over windows); loss: the training loss (embeddings: the "
           "cross-entropy weighted by the target word, class_weights)",
    best=("val_accuracy", "max"),
    order=6,
    formats=("saved_model",),
    commands="kcourse.tracks.words.commands",
    run_name=run_name,
)
