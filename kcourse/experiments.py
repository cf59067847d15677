"""The registry of experiments: every track's plain-data experiments (no TensorFlow).

`get(name)` gives an experiment's spec, `track_of(name)` its track, `resolve` the
configurations of its rows, `parse_sets` the `--set key=value` overrides, checked
against the track's rules. The experiments themselves live in their tracks
(`kcourse/tracks/<track>/experiments.py`): adding one is adding an entry there.
"""

import math

from kcourse.errors import SettingError  # noqa: F401  (kcourse.experiments.SettingError)
from kcourse.tracks import tracks


# rules for the `checks` of a track: (test, message) pairs
def positive():
    return (lambda v: v > 0, "must be positive")


def non_negative(note=""):
    return (lambda v: v >= 0, "must be non-negative" + note)


def at_least(low):
    return (lambda v: v >= low, f"must be at least {low}")


def one_of(*choices):
    return (lambda v: v in choices, "must be " + ", ".join(choices[:-1]) + " or " + choices[-1])


def experiments():
    """`{name: spec}` of every track, in track order."""
    found = {}
    for track in tracks().values():
        for name, spec in track.experiments.items():
            found[name] = {**spec, "track": track.name}
    return found


def __getattr__(name):
    if name == "EXPERIMENTS":  # the registry as the dict it used to be
        return experiments()
    raise AttributeError(f"module 'kcourse.experiments' has no attribute {name!r}")


def get(name):
    found = experiments()
    if name not in found:
        raise SettingError(f"unknown experiment {name!r}; `kcourse list` shows the "
                           f"experiments: {', '.join(found)}")
    return found[name]


def track_of(name):
    """The `Track` of experiment `name`."""
    return tracks()[get(name)["track"]]


def parse_value(key, text, default):
    """Parse `text` to the type of `default` (bool, int, float, list of int or str)."""
    try:
        if isinstance(default, list):
            return [int(v) for v in text.split(",")]
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            value = float(text)
            if not math.isfinite(value):
                raise SettingError(f"--set {key}={text}: must be a finite number")
            return value
        return text
    except SettingError:
        raise
    except ValueError:
        kind = ("comma-separated integers" if isinstance(default, list)
                else "a " + type(default).__name__)
        raise SettingError(f"--set {key}={text}: expected {kind}") from None


def check(name, key, value):
    """Check one setting of experiment `name` against its track's rules."""
    test, message = track_of(name).checks.get(key, (lambda v: True, ""))
    if not test(value):
        raise SettingError(f"{key}={value} {message}")


def parse_sets(name, sets):
    """Parse `key=value` strings against the experiment's defaults."""
    defaults = get(name)["defaults"]
    overrides = {}
    for item in sets or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SettingError(f"--set {item!r}: expected key=value")
        if key not in defaults:
            raise SettingError(f"--set {key}: unknown key for {name}; known keys: "
                               f"{', '.join(sorted(defaults))}")
        overrides[key] = parse_value(key, text.strip(), defaults[key])
        check(name, key, overrides[key])
    return overrides


def resolve(name, overrides=None, quick=False):
    """The list of full row configurations to train, in order."""
    spec = get(name)
    rows = spec["rows"]
    extra = {}
    if quick:
        q = {k: v for k, v in spec.get("quick", {}).items()
             if k not in spec.get("search", {})}
        rows = rows[: q.pop("rows", len(rows))]
        extra = q
    configs = [{**spec["defaults"], **row, **extra, **(overrides or {})} for row in rows]
    for config in configs:
        for key, value in config.items():
            check(name, key, value)
        for test, message in track_of(name).rules:
            if not test(config):
                raise SettingError(message.format(**config))
    return configs
