"""Scaling of a distributed KerasTuner search on this machine: the same 8-trial quick
search run by one process and by a chief with 2 worker processes.

  1 worker   kcourse tune a2-lambda --quick --threads 1 (the search in the process)
  2 workers  kcourse tune a2-lambda --quick --threads 1 --workers 2 (KerasTuner's
             distributed mode: a chief in the command, two worker processes)

The quick a2-lambda search is 8 trials: 3 lambdas x 2 step sizes (coarse), then 2 fine
ones, each on 1,000 training images. Every process runs TensorFlow on one thread
(`--threads 1`: intra- and inter-op), so two workers use two cores. `--set cycles=N`
sets a trial's length (default 20 cycles, 800 or 2,000 updates, so that training, not
TensorFlow's start, dominates).

Trials per minute, two ways: (1) 8 trials over the command's wall clock, from start to
end: TensorFlow's import, the data, the final evaluation of the best model and (2
workers) the workers' start are included; (2) 8 trials over the search itself, from the
start of the first trial to the end of the last (the wait between the two stages
included), timed from the line the command prints per finished trial (the time it
prints that line, less the trial's own seconds, is the trial's start). The load average
of the machine is printed with the results: other jobs on the same cores lower both
figures and the ratio.

Usage: python benchmarks/bench_tune_scaling.py [--search a2-lambda] [--workers 1 2]
           [--set KEY=VALUE ...] [--data-dir PATH] [--json FILE]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

TRIAL_LINE = re.compile(r"^\[\w+ \d+/\d+\] trial .* \((\d+(?:\.\d+)?) s\)$")


def run(search, workers, sets, data_dir, out):
    command = [sys.executable, "-m", "kcourse", "tune", search, "--quick", "--quiet",
               "--fresh", "--threads", "1", "--out", out]
    if workers > 1:
        command += ["--workers", str(workers)]
    for setting in sets:
        command += ["--set", setting]
    if data_dir:
        command += ["--data-dir", data_dir]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    lines, starts, ends = [], [], []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        for line in process.stdout:  # e.g. "[coarse 2/6] trial 1 by ...: ... (12.3 s)"
            now = time.perf_counter() - start
            lines.append(line)
            trial = TRIAL_LINE.match(line)
            if trial:
                starts.append(now - float(trial.group(1)))
                ends.append(now)
    seconds = time.perf_counter() - start
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{''.join(lines)[-4000:]}")
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        results = json.load(f)
    trials = len(results["trials"])
    if len(ends) != trials:
        sys.exit(f"{trials} trials in results.json but {len(ends)} trial lines printed")
    search_seconds = max(ends) - min(starts)
    return {"workers": workers, "trials": trials, "seconds": round(seconds, 1),
            "trials_per_minute": round(60 * trials / seconds, 2),
            "search_seconds": round(search_seconds, 1),
            "search_trials_per_minute": round(60 * trials / search_seconds, 2),
            "load_average": load,
            "best": {k: results["best"][k] for k in ("lambda", "val_accuracy")
                     if k in results["best"]},
            "command": "kcourse " + " ".join(command[3:-2])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", default="a2-lambda")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                        help="settings of the search (default: cycles=20)")
    parser.add_argument("--data-dir", default=os.environ.get("KCOURSE_DATA_DIR"))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    sets = ["cycles=20"] if args.set is None else args.set
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            rows.append(run(args.search, workers, sets, args.data_dir,
                            os.path.join(tmp, f"w{workers}")))
            row = rows[-1]
            print(f"{workers} worker{'s' if workers > 1 else ''}: {row['trials']} trials in "
                  f"{row['seconds']:.1f} s = {row['trials_per_minute']:.2f} trials/min; "
                  f"the search alone {row['search_seconds']:.1f} s = "
                  f"{row['search_trials_per_minute']:.2f} trials/min (load average "
                  f"{row['load_average']:.2f} at the start; best {row['best']})", flush=True)
    for row in rows[1:]:
        row["ratio"] = round(row["trials_per_minute"] / rows[0]["trials_per_minute"], 2)
        row["search_ratio"] = round(row["search_trials_per_minute"]
                                    / rows[0]["search_trials_per_minute"], 2)
        print(f"{row['workers']} workers / {rows[0]['workers']}: {row['ratio']:.2f}x over "
              f"the command, {row['search_ratio']:.2f}x over the search")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"search": args.search, "set": sets, "runs": rows}, f, indent=2)


if __name__ == "__main__":
    main()
