"""Every class of bad input gets one clear line and its exit code, never a traceback, and
a refused command leaves the user's directory as it was. Exit codes: 2 for a bad
command-line value or setting, 1 for missing or unreadable data."""

import concurrent.futures
import os
import pickle
import subprocess
import sys

import pytest

BOOK = "It was the best of times, it was the worst of times.\n" * 20  # 1,060 characters


def kcourse(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kcourse", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                               "KCOURSE_OFFLINE": "1"})


def snapshot(root):
    return sorted((os.path.relpath(os.path.join(d, f), root), os.path.getsize(os.path.join(d, f)))
                  for d, _, files in os.walk(root) for f in files)


@pytest.fixture
def workspace(tmp_path):
    """A user's project directory: notes, a file named like a directory, a small book, a
    data directory whose CIFAR-10 batch is truncated and one whose labels are out of
    range, and a character run (`run`) trained quickly on the book."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("my notes")
    (tmp_path / "afile").write_text("not a directory")
    (tmp_path / "book.txt").write_text(BOOK)
    from conftest import write_fake_cifar

    for name in ("truncated", "labels"):
        write_fake_cifar(tmp_path / name)
    batch = tmp_path / "truncated" / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:500])
    with open(tmp_path / "labels" / "cifar-10-batches-py" / "data_batch_3", "rb") as f:
        data = pickle.load(f)
    data[b"labels"][0] = 12
    with open(tmp_path / "labels" / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump(data, f)
    done = kcourse("run", "a4", "--quick", "--quiet", "--text", "book.txt", "--set",
                   "updates=20", "--set", "units=8", "--set", "seq_length=10", "--out",
                   "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp_path


CASES = [  # (arguments, exit code, part of the message)
    (["run", "a2-1cycle", "--set", "eta_min=1", "--set", "eta_max=0.001"], 2,
     "eta_min=1.0 is above eta_max=0.001"),
    (["run", "a1", "--set", "lambda=inf"], 2, "must be a finite number"),
    (["run", "a1", "--set", "eta=nan"], 2, "must be a finite number"),
    (["run", "a4", "--set", "temperature=-inf"], 2, "must be a finite number"),
    (["run", "a1", "--seed", "-1"], 2, "--seed: must be in [0, 2**32)"),
    (["run", "a1", "--seed", "99999999999"], 2, "--seed: must be in [0, 2**32)"),
    (["tune", "a2-lambda", "--seed", "-1"], 2, "--seed: must be in [0, 2**32)"),
    (["run", "a1", "--seed", "x"], 2, "expected an integer"),
    (["sample", "run", "--seed", str(2 ** 64)], 2, "--seed: must be in [0, 2**32)"),
    (["sample", "run", "--temperature", "nan"], 2, "must be a finite number"),
    (["lr-range", "a2-1cycle", "--eta-max", "inf"], 2, "must be a finite number"),
    (["lr-range", "a2-1cycle", "--eta-min", "1", "--eta-max", "0.1"], 2,
     "need 0 < --eta-min < --eta-max"),
    (["run", "a1", "--quick", "--out", "afile"], 2, "afile is a file, not a directory"),
    (["run", "a1", "--quick", "--fresh", "--out", "notes"], 2,
     "not a run directory of a1"),
    (["tune", "a2-lambda", "--quick", "--fresh", "--out", "notes"], 2,
     "not a run directory of a2-lambda"),
    (["run", "a4", "--quick", "--text", "book.txt", "--set", "batch_size=100", "--out",
      "r1"], 2, "lower batch_size or seq_length"),
    (["run", "a4", "--quick", "--text", "book.txt", "--set", "seq_length=5000", "--out",
      "r2"], 2, "lower batch_size or seq_length"),
    (["run", "a1", "--quick", "--data-dir", "no/such/dir", "--out", "r3"], 1,
     "does not exist"),
    (["run", "a1", "--quick", "--data-dir", "afile", "--out", "r4"], 1, "is a file"),
    (["run", "a1", "--quick", "--data-dir", "truncated", "--tfds-dir", "tfds1", "--out",
      "r5"], 1, "cannot be read"),
    (["run", "a1", "--quick", "--data-dir", "labels", "--tfds-dir", "tfds2", "--out",
      "r6"], 1, "labels 0..12"),
    (["export", "run", "out", "--name", "../../x"], 2, "a plain name"),
    (["export", "run", "afile"], 2, "afile is a file"),
    (["export", "run", "out", "--format", "onnx"], 2, "a4 exports as saved_model, not onnx"),
    (["run", "a4", "--quick", "--fresh-row", "3", "--out", "run"], 2, "has rows 0 to 0"),
]


def test_bad_inputs_get_one_line_their_exit_code_and_change_nothing(workspace):
    """The commands run two at a time (each is mostly a process start); the directory is
    compared before and after all of them."""
    before = snapshot(workspace)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda case: kcourse(*case[0], cwd=workspace), CASES))
    for (args, code, message), result in zip(CASES, results):
        what = " ".join(args)
        assert result.returncode == code, f"{what}: {result.returncode} {result.stderr[-2000:]}"
        lines = [line for line in result.stderr.splitlines() if line.startswith("kcourse")]
        assert len(lines) == 1 and message in lines[0], f"{what}: {result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr + result.stdout, what
    after = [f for f in snapshot(workspace) if not f[0].startswith(("tfds1", "tfds2"))]
    assert after == before, f"changed the directory: {sorted(set(after) ^ set(before))}"
