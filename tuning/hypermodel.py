"""A KerasTuner HyperModel for any kcourse track, trained by the track's own code."""

import keras_tuner


class TrackHyperModel(keras_tuner.HyperModel):
    """Tunes one setting of a track's experiment on a log scale (`log_<param>`),
    optionally with choices of other hyperparameters.

    `build(hp)` makes the track's model for the trial's configuration:
    `param = 10 ** log_<param>`, where `log_<param>` is a choice among `log_values` (a
    grid, for `GridSearch`) or a float in `log_range` (for `RandomSearch`); every
    `choices` entry is a `Choice` the track turns into settings
    (`apply_hyperparameters`). `fit` trains the model with the track's `train_trial`
    and returns its objective values; it passes the tuner's callbacks to the trainer,
    which calls `set_model`, `on_epoch_end` (with `val_accuracy`) and
    `on_train_batch_end`, so the tuner saves the best epoch and
    `tuner.get_best_models()` works.

    Args:
        impl: the track's TensorFlow side (`Track.module()`): `build_model(config,
            seed)`, `apply_hyperparameters(config, values, data)` and
            `train_trial(config, data, model, seed, callbacks, verbose)`.
        config: a resolved row configuration of the experiment.
        param: the setting searched on a log scale (e.g. `"lambda"`).
        log_values: grid of log10 values, or
        log_range: `(low, high)` of log10 values.
        choices: `{name: [values]}` of other hyperparameters (None: none).
        seed: seed of the initialisation and the shuffling (the same for every trial,
            so trials differ only by their hyperparameters).
    """

    def __init__(self, impl, config, param, log_values=None, log_range=None, choices=None,
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        if (log_values is None) == (log_range is None):
            raise ValueError("Give exactly one of log_values (a grid) and log_range.")
        self.impl, self.config, self.param = impl, dict(config), param
        self.log_values = None if log_values is None else [float(v) for v in log_values]
        self.log_range = None if log_range is None else tuple(map(float, log_range))
        self.choices = dict(choices or {})
        for name, values in self.choices.items():
            if not values:
                raise ValueError(f"choices[{name!r}] is empty.")
        self.seed = seed

    def values(self, hp):
        """The trial's hyperparameters: `{param: 10 ** log, choice: value, ...}`."""
        name = "log_" + self.param
        if self.log_values is not None:
            log = hp.Choice(name, self.log_values, ordered=True)
        else:
            log = hp.Float(name, *self.log_range)
        values = {self.param: 10.0 ** log}
        for choice, options in self.choices.items():
            values[choice] = hp.Choice(choice, options, ordered=True)
        return values

    def build(self, hp):
        return self.impl.build_model({**self.config, self.param: self.values(hp)[self.param]},
                                     self.seed)

    def fit(self, hp, model, data=None, callbacks=None, verbose=0, splits=None, **kwargs):
        """Train `model` on the search's `data` (the track's `search_data`; `splits` is
        its old name)."""
        data = splits if data is None else data
        config = self.impl.apply_hyperparameters(self.config, self.values(hp), data)
        return self.impl.train_trial(config, data, model, self.seed, callbacks, verbose)


def CourseHyperModel(config, log_values=None, log_range=None, n_s_epochs=None, seed=0,
                     **kwargs):
    """The lambda search of the course's k-layer nets (its old name): a
    `TrackHyperModel` of the `cifar_mlp` track over lambda, with the step size in
    epochs per half cycle (`n_s_epochs`) as a choice when given."""
    from kcourse.tracks.cifar_mlp import track

    if n_s_epochs is not None and (not n_s_epochs or min(n_s_epochs) < 1):
        raise ValueError(f"n_s_epochs must be a list of whole epochs >= 1, got {n_s_epochs}")
    choices = None if n_s_epochs is None else {"n_s_epochs": [int(e) for e in n_s_epochs]}
    return TrackHyperModel(track, config, "lambda", log_values, log_range, choices, seed,
                           **kwargs)


class SpaceHyperModel(keras_tuner.HyperModel):
    """Tunes several settings of a track's experiment, declared as data.

    `space` maps a setting to a list of values (a KerasTuner `Choice`) or to
    `{"log": [low, high]}` (a `Float` sampled on a log scale) or `{"range": [low,
    high]}` (a linear `Float`). `build(hp)` makes the track's model for the trial's
    configuration (`apply_hyperparameters(config, values, data)` then
    `build_model(config, seed)`); `fit` trains it with the track's `train_trial`.

    Args:
        impl: the track's TensorFlow side (`Track.module()`).
        config: a resolved row configuration of the experiment.
        space: `{setting: [values] | {"log": [low, high]} | {"range": [low, high]}}`.
        data: the search's data (`impl.search_data`), which the model may depend on.
        seed: seed of the initialisation and the shuffling (the same for every trial).
    """

    def __init__(self, impl, config, space, data, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.impl, self.config, self.data, self.seed = impl, dict(config), data, seed
        self.space = dict(space)
        for name, values in self.space.items():
            if isinstance(values, dict):
                kind, bounds = next(iter(values.items())) if len(values) == 1 else (None, ())
                if kind not in ("log", "range") or len(bounds) != 2 or not (
                        bounds[0] < bounds[1]) or (kind == "log" and bounds[0] <= 0):
                    raise ValueError(f"space[{name!r}] = {values}: give {{'log': [low, "
                                     "high]}} (0 < low < high) or {'range': [low, high]}.")
            elif not values:
                raise ValueError(f"space[{name!r}] is empty.")

    def values(self, hp):
        """The trial's settings."""
        values = {}
        for name, options in self.space.items():
            if isinstance(options, dict):
                (kind, (low, high)), = options.items()
                values[name] = hp.Float(name, low, high,
                                        sampling="log" if kind == "log" else "linear")
            else:
                values[name] = hp.Choice(name, list(options),
                                         ordered=all(isinstance(v, (int, float))
                                                     for v in options))
        return values

    def configuration(self, hp):
        return self.impl.apply_hyperparameters(self.config, self.values(hp), self.data)

    def build(self, hp):
        return self.impl.build_model(self.configuration(hp), self.seed)

    def fit(self, hp, model, data=None, callbacks=None, verbose=0, **kwargs):
        data = self.data if data is None else data
        return self.impl.train_trial(self.configuration(hp), data, model, self.seed,
                                     callbacks, verbose)
