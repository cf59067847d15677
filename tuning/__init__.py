"""KerasTuner hyperparameter searches for kcourse models (coarse-to-fine, distributed).

The searches arrive with the multi-layer track; the kcourse trainer already drives
the Keras callbacks a `keras_tuner.HyperModel.fit` passes it (`kcourse.train.fit`).
"""
