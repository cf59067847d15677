"""Character-level language models of DD2424 Assignment 4: the course's vanilla RNN
trained with hand-written AdaGrad through the text in order, and LSTM / GRU stacks;
seeded sampling, and in-graph text generation for serving.

TensorFlow-free: the experiments are plain data (`experiments.py`); the training,
figures and exports are in `track.py`, imported when a command needs them.
"""

from kcourse.tracks import Track
from kcourse.tracks.char_rnn.experiments import CHECKS, EXPERIMENTS, SETTINGS, run_name

TRACK = Track(
    name="char_rnn",
    title="character-level language models (DD2424 A4)",
    experiments=EXPERIMENTS,
    checks=CHECKS,
    impl="kcourse.tracks.char_rnn.track",
    columns=("cell", "units", "final_smooth_loss", "best_updates", "val_loss_per_char",
             "test_loss_per_char"),
    legend="final_smooth_loss: at the last update; val_ and test_loss_per_char: the kept "
           "model's (lowest smooth loss or validation loss, by `select`), saved after "
           "best_updates updates",
    best=("val_loss_per_char", "min"),
    commands="kcourse.tracks.char_rnn.commands",
    order=4,
    settings=SETTINGS,
    run_name=run_name,
)
