"""Object localization and detection on MNIST canvases (UiB INF265 project 2): the
course's LeNet5Conv and variants of it, trained on the composite loss (BCE of the
presence, MSE of the box, CE of the class), scored by the course's accuracy, IoU and
score; served on raw uint8 canvases, boxes in pixels out.

TensorFlow-free: the experiments are plain data (`experiments.py`); the training,
figures and exports are in `track.py`, imported when a command needs them.
"""

from kcourse.tracks import Track
from kcourse.tracks.localization.experiments import CHECKS, EXPERIMENTS, SETTINGS

TRACK = Track(
    name="localization",
    title="object localization and detection on MNIST canvases (INF265 project 2)",
    experiments=EXPERIMENTS,
    settings=SETTINGS,
    checks=CHECKS,
    impl="kcourse.tracks.localization.track",
    columns=("arch", "val_iou", "val_accuracy", "val_score", "test_iou", "test_accuracy",
             "test_score"),
    legend="accuracy: objects detected (p_c > 0.5) with the right class; iou: mean IoU "
           "of the boxes (0 where missed); score: their mean; over the canvases "
           "(localization) or grid cells (detection) holding an object",
    best=("val_score", "max"),
    order=5,
    formats=("saved_model",),
)
