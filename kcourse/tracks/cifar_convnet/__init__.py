"""ConvNets on CIFAR-10 and transfer learning: the TensorFlow tutorial's network, a
fast residual ConvNet trained in 30 minutes on a CPU, and transfer from other classes
of CIFAR-10 and MNIST (from scratch, frozen body, fine-tuning).

TensorFlow-free: the experiments are plain data (`experiments.py`); the training,
figures and exports are in `track.py`, imported when a command needs them.
"""

from kcourse.tracks import Track
from kcourse.tracks.cifar_convnet.experiments import CHECKS, EXPERIMENTS, RULES, SETTINGS

TRACK = Track(
    name="cifar_convnet",
    title="ConvNets on CIFAR-10 and transfer learning (CIFAR-10, MNIST)",
    experiments=EXPERIMENTS,
    settings=SETTINGS,
    checks=CHECKS,
    rules=RULES,
    impl="kcourse.tracks.cifar_convnet.track",
    columns=("val_accuracy", "test_accuracy", "test_accuracy_no_tta"),
    legend="accuracy over the row's classes; test_accuracy with flip test-time "
           "augmentation where tta is on",
    best=("val_accuracy", "max"),
    order=2,
    formats=("saved_model",),
)
