"""Nothing is lost when a process is killed: runs SIGKILLed again and again (often while
they save) and restarted each time end with the metrics.json, byte for byte, of an
uninterrupted run with the same seed."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

KILLS = 5  # per run: each kill costs a process start (TensorFlow's import, tracing)
BOOK = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
        "it was the age of foolishness.\n") * 40


def command(experiment, out, *settings, text=None):
    args = [sys.executable, "-m", "kcourse", "run", experiment, "--quick", "--quiet",
            "--out", str(out)]
    for setting in settings:
        args += ["--set", setting]
    return args + (["--text", str(text)] if text else [])


def progress(out):
    """The checkpoint and history files of the run so far (they change at every save)."""
    return {str(p) for p in Path(out).rglob("*") if p.name.startswith(("ckpt-", "history-",
                                                                       "result"))}


def storm(args, out, kills, rng):
    """Run `args` to the end, SIGKILLing it `kills` times: each time once the process
    has saved something new, after a random delay (often in the middle of a save)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    killed = 0
    while True:
        before = progress(out)
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while process.poll() is None and killed < kills and time.monotonic() < deadline:
            if progress(out) - before:  # this process has saved: kill it soon after
                time.sleep(rng.uniform(0, 0.15))
                process.send_signal(signal.SIGKILL)
                process.wait()
                killed += 1
                break
            time.sleep(0.005)
        if process.wait() == 0:
            return killed
        assert process.returncode == -signal.SIGKILL, process.stderr.read()[-3000:]


def test_killed_and_resumed_runs_end_as_an_uninterrupted_one(real_data_dir, tmp_path):
    rng = random.Random(0)
    (tmp_path / "book.txt").write_text(BOOK)
    runs = {  # a classifier checkpointing every epoch of 10 updates, and a char model
              # checkpointing every 20 updates (with samples every 40)
        "classifier": ("a2-1cycle", ["n_s=200", "cycles=2"], None),
        "char": ("a4", ["updates=2000", "log_every=10", "eval_every=20", "sample_every=40",
                        "units=16", "seq_length=10"], tmp_path / "book.txt"),
    }
    for name, (experiment, settings, text) in runs.items():
        straight = tmp_path / f"{name}-straight"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KCOURSE_DATA_DIR": real_data_dir}
        done = subprocess.run(command(experiment, straight, *settings, text=text), env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        stormy = tmp_path / f"{name}-killed"
        killed = storm(command(experiment, stormy, *settings, text=text), stormy, KILLS, rng)
        assert killed == KILLS, f"{name}: the run ended after {killed} kills"
        assert (stormy / "metrics.json").read_bytes() == (straight / "metrics.json").read_bytes()
