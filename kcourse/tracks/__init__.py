"""Tracks: one package per course task.

A track is a module whose top level is TensorFlow-free and defines `TRACK`, a `Track`:
its experiments as plain data, the checks of their settings, and the dotted name of
the module that does the TensorFlow work (imported only when a command needs it).
The built-in tracks are the packages in this folder; more come from the modules named
in `$KCOURSE_TRACKS` (comma-separated) or from the `kcourse.tracks` entry-point group,
so a new track is a new package, with no edit of the CLI, the run directory, serving
or tuning.

The TensorFlow side (`Track.module()`) provides:

    train_row(row: RowContext) -> (result dict, history rows)      required
    archive(row_dir, info) -> keras.export.ExportArchive            for `kcourse export`
    gradcheck(spec, data_dir, seed) -> (threshold, results)         for `kcourse gradcheck`
    predict_inputs(inputs[, row_dir]) -> the served graph's input /
    class_names(row_dir) -> [names]                                 for `kcourse predict`
        (`row_dir` is passed when the function takes it: the row's input shape)
    search_data(config, data_dir) / build_model(config, seed) /
    apply_hyperparameters(config, values, data) -> config /
    train_trial(config, data, model, seed, callbacks, verbose) -> {objective: value} /
    evaluate_test(config, data, model) -> {metric: value}           for `kcourse tune`

`tests/toy_track/` is a complete small example.
"""

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil

from kcourse.errors import SettingError

ENV_VAR = "KCOURSE_TRACKS"


@dataclasses.dataclass(frozen=True)
class Track:
    """What the generic commands need to know of a track, without TensorFlow.

    Args:
        name: the track's name (its package's name for the built-in ones).
        title: one line for `kcourse list`.
        experiments: `{name: spec}`; a spec has `description`, `reference`,
            `defaults` (every setting and its default), `rows` (each a dict of the
            settings that differ from the defaults), optional `quick` (what `--quick`
            changes; `rows` keeps the first rows), optional `search` (a tuning search:
            see `tuning.search`) and optional `gradcheck`.
        checks: `{setting: (test, message)}` for the values a user may `--set`.
        impl: dotted name of the module doing the TensorFlow work (see above).
        columns: the summary table's columns, those present in the rows.
        best: `(metric, "max" | "min")`: the rule that picks a run's best row.
        commands: optional dotted name of a TensorFlow-free module with
            `add_commands(subparsers)` returning `{command: handler(args)}`.
        formats: the export formats the track serves.
        order: where the track comes in listings (the course's order).
        rules: `(test(config), message)` pairs over several settings of a row (e.g.
            eta_min <= eta_max).
        settings: `{setting: meaning}`, one line each, for `kcourse list EXP`.
        legend: optional line printed under the summary table (what its columns are).
        run_name: optional `run_name(experiment, config) -> str`, the default run
            directory's name when it should say more than the experiment (a4 on a
            user's text: `a4-alice`).
    """

    name: str
    title: str
    experiments: dict
    checks: dict
    impl: str
    columns: tuple = ("val_accuracy", "test_accuracy")
    best: tuple = ("val_accuracy", "max")
    commands: str = None
    formats: tuple = ("saved_model",)
    order: int = 100
    rules: tuple = ()
    settings: dict = dataclasses.field(default_factory=dict)
    legend: str = ""
    run_name: object = None

    def module(self):
        """The track's TensorFlow side."""
        import kcourse

        kcourse.register_components()
        return importlib.import_module(self.impl)


def _modules():
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
        if info.ispkg:
            yield info.name
    for name in os.environ.get(ENV_VAR, "").split(","):
        if name.strip():
            if importlib.util.find_spec(name.strip()) is None:
                raise SettingError(f"{ENV_VAR} names {name.strip()!r}, which cannot be "
                                   "imported; check the name and PYTHONPATH")
            yield name.strip()
    for entry in importlib.metadata.entry_points(group="kcourse.tracks"):
        yield entry.value


_TRACKS = None


def tracks():
    """`{name: Track}` of every track found (built-in first)."""
    global _TRACKS
    key = os.environ.get(ENV_VAR, "")
    if _TRACKS is None or _TRACKS[0] != key:
        found = {}
        for name in _modules():
            track = importlib.import_module(name).TRACK
            found.setdefault(track.name, track)
        _TRACKS = (key, dict(sorted(found.items(), key=lambda t: (t[1].order, t[0]))))
    return _TRACKS[1]
