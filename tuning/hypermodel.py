"""A KerasTuner HyperModel for the course's k-layer networks, trained by kcourse."""

import keras_tuner

from kcourse.runner import build_model, train_mlp


class CourseHyperModel(keras_tuner.HyperModel):
    """Tunes lambda of a k-layer network (`kcourse.models.mlp`) on a log scale, and
    optionally the step size of its cyclical learning rate.

    `build(hp)` makes the network of `config` with `lambda = 10 ** log_lambda`, where
    `log_lambda` is a choice among `log_values` (a grid, for `GridSearch`) or a float
    in `log_range` (for `RandomSearch`). With `n_s_epochs`, the step size is a choice
    too: `n_s = n_s_epochs * floor(n / batch_size)` updates (the course's A2 uses 2
    epochs per half cycle, A3 5). `fit` trains the network with the kcourse trainer and
    the config's cyclical learning rate and returns the final validation accuracy. It
    passes the tuner's callbacks to the trainer, which calls `set_model`,
    `on_epoch_end` (with `val_accuracy`) and `on_train_batch_end`, so the tuner saves
    the best epoch and `tuner.get_best_models()` works.

    Args:
        config: a resolved row configuration of an `mlp` experiment
            (`kcourse.experiments.resolve`).
        log_values: grid of log10(lambda) values, or
        log_range: `(low, high)` of log10(lambda).
        n_s_epochs: step sizes to choose from, in epochs per half cycle; None keeps
            the config's `n_s`.
        seed: seed of the initialisation and the shuffling (the same for every trial,
            so trials differ only by their hyperparameters).
    """

    def __init__(self, config, log_values=None, log_range=None, n_s_epochs=None, seed=0,
                 **kwargs):
        super().__init__(**kwargs)
        if (log_values is None) == (log_range is None):
            raise ValueError("Give exactly one of log_values (a grid) and log_range.")
        self.config = dict(config)
        self.log_values = None if log_values is None else [float(v) for v in log_values]
        self.log_range = None if log_range is None else tuple(map(float, log_range))
        self.n_s_epochs = None if n_s_epochs is None else [int(e) for e in n_s_epochs]
        if self.n_s_epochs is not None and (not self.n_s_epochs or min(self.n_s_epochs) < 1):
            raise ValueError(f"n_s_epochs must be a list of whole epochs >= 1, got {n_s_epochs}")
        self.seed = seed

    def _config(self, hp):
        if self.log_values is not None:
            log_lambda = hp.Choice("log_lambda", self.log_values, ordered=True)
        else:
            log_lambda = hp.Float("log_lambda", *self.log_range)
        if self.n_s_epochs is not None:
            hp.Choice("n_s_epochs", self.n_s_epochs, ordered=True)
        return {**self.config, "lambda": 10.0 ** log_lambda}

    def build(self, hp):
        return build_model("mlp", self._config(hp), self.seed)

    def fit(self, hp, model, splits, callbacks=None, verbose=0, **kwargs):
        """Train `model` on `splits` (a `kcourse.data.Cifar10Splits`)."""
        config = self._config(hp)
        if self.n_s_epochs is not None:
            batches = int(splits.train.cardinality()) // config["batch_size"]
            config["n_s"] = hp.get("n_s_epochs") * batches
        _, _, history, _ = train_mlp(config, splits, None, self.seed, verbose,
                                     callbacks=callbacks, model=model)
        return {"val_accuracy": history.last["val_accuracy"]}
