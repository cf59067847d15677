"""Compare the results of two trees of run directories, experiment by experiment.

    python benchmarks/compare_runs.py BEFORE_DIR AFTER_DIR [EXPERIMENT ...]

Each `BEFORE_DIR/<experiment>` and `AFTER_DIR/<experiment>` holds a `kcourse run` (its
metrics.json) or a `kcourse tune` (its results.json). Wall-clock fields are ignored.
Prints "identical" or the values that differ; exits 1 when any differ. This is how a
change that must not move results (a refactoring) is checked.
"""

import json
import os
import sys

WALL_CLOCK = ("_seconds", "_per_second", "seconds")


def load(directory):
    for name in ("metrics.json", "results.json"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    return None


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if not k.endswith(WALL_CLOCK)}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def differences(a, b):
    rows_a, rows_b = a.get("rows", a.get("trials", [])), b.get("rows", b.get("trials", []))
    for i, (x, y) in enumerate(zip(rows_a, rows_b)):
        for key in sorted(set(x) | set(y)):
            if x.get(key) != y.get(key):
                yield f"row {i} {key}: {x.get(key)} -> {y.get(key)}"
    if len(rows_a) != len(rows_b):
        yield f"{len(rows_a)} rows -> {len(rows_b)}"
    for key in sorted(set(a) | set(b)):
        if key not in ("rows", "trials") and a.get(key) != b.get(key):
            yield f"{key}: {a.get(key)} -> {b.get(key)}"


def main(argv):
    before, after, *names = argv
    names = names or sorted(os.listdir(before))
    different = 0
    for name in names:
        a, b = load(os.path.join(before, name)), load(os.path.join(after, name))
        if a is None or b is None:
            print(f"{name}: missing in {before if a is None else after}")
            different += 1
            continue
        found = list(differences(strip(a), strip(b)))
        print(f"{name}: {'DIFFERENT' if found else 'identical'}")
        for line in found:
            print("   " + line)
        different += bool(found)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
