"""`kcourse tune --workers N`: KerasTuner's distributed mode in separate processes on
127.0.0.1 (a chief and worker processes), on the 6 short trials of `tune_track`'s
toy-dist search; every test is bounded by timeouts."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TIMEOUT = 120  # seconds; a search takes about 20 s here


def environment(tmp_path, **extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KCOURSE_TRACKS": "tune_track",
            "TUNE_TRACK_LOG": str(tmp_path / "trained.txt"),
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent),
                                           os.environ.get("PYTHONPATH", "")]),
            **extra}


@contextlib.contextmanager
def tune(tmp_path, *args, **extra):
    """`kcourse tune toy-dist ARGS` in its own process group, which is killed on the way
    out whatever happens (no worker outlives a test)."""
    proc = subprocess.Popen([sys.executable, "-m", "kcourse", "tune", "toy-dist",
                             "--out", str(tmp_path / "search"), "--threads", "1", *args],
                            env=environment(tmp_path, **extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def finish(proc):
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    return out


def trained(tmp_path):
    """The lambda of every training that ran to its end, in order."""
    path = tmp_path / "trained.txt"
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def check_results(tmp_path, printed):
    """Six trials, each trained exactly once, the best one reported."""
    results = json.loads((tmp_path / "search" / "results.json").read_text())
    trials = results["trials"]
    assert sorted((t["stage"], t["trial"]) for t in trials) == [
        ("coarse", "0"), ("coarse", "1"), ("coarse", "2"), ("coarse", "3"),
        ("fine", "0"), ("fine", "1")]
    assert sorted(trained(tmp_path)) == pytest.approx(sorted(t["lambda"] for t in trials))
    assert results["best"]["val_accuracy"] == max(t["val_accuracy"] for t in trials)
    assert "<- best" in printed and "Best lambda" in printed
    return results


def test_chief_and_two_workers_run_every_trial_once(tmp_path):
    with tune(tmp_path, "--workers", "2") as proc:
        printed = finish(proc)
    results = check_results(tmp_path, printed)
    progress = [line for line in printed.splitlines() if line.startswith("[")]
    assert len(progress) == 6  # one line per finished trial: stage, id, worker, values
    assert all(" by worker-" in line and "log_lambda" in line and "val_accuracy" in line
               for line in progress)
    report = subprocess.run([sys.executable, "-m", "kcourse", "tune", "toy-dist", "--report",
                             "--out", str(tmp_path / "search")], env=environment(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    assert "6 trials" in report.stdout and "(6 completed)" in report.stdout
    best = report.stdout.split("val_accuracy\n")[1].splitlines()[1]  # under the rule
    assert float(best.split()[-1]) == results["best"]["val_accuracy"]
    assert (tmp_path / "search" / "figures" / "trials.png").stat().st_size > 0
    runs = sorted(p.name for p in (tmp_path / "search" / "hparams").iterdir())
    assert runs == ["coarse-0", "coarse-1", "coarse-2", "coarse-3", "fine-0", "fine-1"]


def test_a_worker_killed_mid_trial_is_restarted_and_its_trial_handed_back(tmp_path):
    killed = tmp_path / "killed"
    with tune(tmp_path, "--workers", "2", TUNE_TRACK_KILL_ONCE=str(killed)) as proc:
        printed = finish(proc)
    victim = killed.read_text()  # the tuner id of the worker that died mid-trial
    assert f"worker {victim} was killed (SIGKILL)" in printed
    check_results(tmp_path, printed)


def test_a_trial_that_raises_is_marked_failed_and_the_search_ends(tmp_path):
    """KerasTuner marks a trial whose training raises FAILED (after
    `max_retries_per_trial`, 0 here); the search goes on with the other trials, every
    one is accounted for, and the command ends (the chief does not wait for it)."""
    failed = tmp_path / "failed"
    with tune(tmp_path, "--workers", "2", TUNE_TRACK_FAIL_ONCE=str(failed)) as proc:
        out, err = proc.communicate(timeout=TIMEOUT)
    assert failed.exists(), out[-2000:] + err[-2000:]
    statuses = {}
    for stage in ("coarse", "fine"):
        for path in (tmp_path / "search" / stage).glob("trial_*/trial.json"):
            trial = json.loads(path.read_text())
            statuses[(stage, trial["trial_id"])] = trial["status"]
    assert sorted(statuses.values()).count("FAILED") == 1, statuses
    assert sorted(statuses.values()).count("COMPLETED") == len(statuses) - 1 >= 5, statuses
    lam = float(failed.read_text())
    assert all(abs(r - lam) > 1e-15 for r in trained(tmp_path))  # it never finished
    assert len(trained(tmp_path)) == len(statuses) - 1  # the others ran once each
    assert proc.returncode == 0, out[-3000:] + err[-3000:]


def completed(out):
    """The (stage, trial id) of the finished trials (KerasTuner writes trial.json in
    place: one being written is skipped)."""
    found = set()
    for stage in ("coarse", "fine"):
        for path in (out / stage).glob("trial_*/trial.json"):
            try:
                trial = json.loads(path.read_text())
            except ValueError:
                continue
            if trial["status"] == "COMPLETED":
                found.add((stage, trial["trial_id"]))
    return found


def test_a_killed_chief_rerun_resumes_without_repeating_a_finished_trial(tmp_path):
    out = tmp_path / "search"
    with tune(tmp_path, "--workers", "2") as proc:
        deadline = time.monotonic() + TIMEOUT
        while len(completed(out)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.kill()  # the chief (the command itself)
        proc.wait()
        deadline = time.monotonic() + 15
        with pytest.raises(ProcessLookupError):  # its workers end with it
            while time.monotonic() < deadline:
                os.killpg(proc.pid, 0)
                time.sleep(0.2)
    finished = completed(out)
    lambdas = {key: json.loads((out / key[0] / f"trial_{key[1]}" / "trial.json").read_text())
               ["hyperparameters"]["values"]["log_lambda"] for key in finished}
    with tune(tmp_path, "--workers", "2") as proc:
        printed = finish(proc)
    check_results(tmp_path, printed)
    runs = trained(tmp_path)
    for log_lambda in lambdas.values():  # a trial finished before the kill ran once
        assert sum(abs(r - 10 ** log_lambda) < 1e-12 for r in runs) == 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_error(tmp_path, *args):
    result = subprocess.run([sys.executable, "-m", "kcourse", "tune", "toy-dist", *args],
                            env=environment(tmp_path), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kcourse: error: "), result.stderr
    return lines[0]


def test_start_up_errors_are_one_line(tmp_path):
    with socket.socket() as taken:  # a port in use
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(tmp_path, "--workers", "2", "--listen", f"127.0.0.1:{port}",
                              "--out", str(tmp_path / "a"))
        assert f"cannot listen on 127.0.0.1:{port}" in line and "--listen" in line
    line = one_line_error(tmp_path, "--chief", f"127.0.0.1:{free_port()}", "--wait", "1",
                          "--out", str(tmp_path / "b"))
    assert "did not answer within 1 s" in line  # no chief there
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"experiment": "toy-search", "seed": 0}))
    line = one_line_error(tmp_path, "--workers", "2", "--out", str(other))
    assert "holds a run of another configuration" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
