"""Damaged run directories: the newest intact checkpoint is used, finished rows are kept,
what cannot be recovered gets one clear message with the way out; a diverged run keeps
its last finite weights, says so with exit code 3 and is not exported unless asked."""

import json
import os
import subprocess
import sys

import pytest

BOOK = "It was the best of times, it was the worst of times.\n" * 40


def kcourse(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kcourse", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def char_run(cwd, out="run", *extra):
    return kcourse("run", "a4", "--quick", "--quiet", "--text", "book.txt", "--set",
                   "units=8", "--set", "seq_length=10", "--set", "updates=300", *extra,
                   "--out", out, cwd=cwd)


@pytest.fixture
def finished(tmp_path):
    (tmp_path / "book.txt").write_text(BOOK)
    done = char_run(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp_path


def row_dir(root, out="run"):
    (row,) = json.loads((root / out / "metrics.json").read_text())["rows"]
    return root / out / "rows" / row["tag"]


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(finished):
    reference = (finished / "run" / "metrics.json").read_bytes()
    checkpoints = row_dir(finished) / "checkpoints"
    os.remove(row_dir(finished) / "result.json")  # the row is unfinished again
    os.remove(finished / "run" / "metrics.json")
    latest = max(checkpoints.glob("ckpt-*.index"), key=lambda p: int(p.name[5:-6]))
    for data in checkpoints.glob(latest.name[:-6] + ".data-*"):
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # truncated
    again = char_run(finished)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{latest.name[:-6]} cannot be read" in again.stdout + again.stderr
    assert (finished / "run" / "metrics.json").read_bytes() == reference


def test_a_truncated_metrics_json_is_rebuilt_from_the_finished_rows(finished):
    reference = (finished / "run" / "metrics.json").read_bytes()
    (finished / "run" / "metrics.json").write_text('{"experiment": "a4", "ro')
    again = char_run(finished)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (finished / "run" / "metrics.json").read_bytes() == reference


def test_an_unreadable_history_names_the_file_and_fresh_row_trains_it_again(finished):
    reference = (finished / "run" / "metrics.json").read_bytes()
    history = row_dir(finished) / "checkpoints" / "history.json"
    history.write_text("{")
    refused = char_run(finished)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert str(history.relative_to(finished)) in refused.stderr
    assert "--fresh-row 0" in refused.stderr
    again = char_run(finished, "run", "--fresh-row", "0")
    assert again.returncode == 0, again.stderr[-2000:]
    assert (finished / "run" / "metrics.json").read_bytes() == reference


def test_a_truncated_model_is_not_exported_and_the_message_says_what_to_do(finished):
    model = row_dir(finished) / "model.keras"
    model.write_bytes(model.read_bytes()[:100])
    refused = kcourse("export", "run", "export", cwd=finished)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "cannot be loaded" in refused.stderr and "--fresh-row 0" in refused.stderr
    assert not (finished / "export").exists()  # a failed export leaves nothing behind


def test_a_diverged_run_keeps_finite_weights_exits_3_and_is_not_exported(tmp_path):
    (tmp_path / "book.txt").write_text(BOOK)
    diverged = char_run(tmp_path, "run", "--set", "eta=1e30", "--set", "clip=1e30")
    assert diverged.returncode == 3, diverged.stderr[-2000:]
    assert "diverged" in diverged.stderr and "Traceback" not in diverged.stderr
    (row,) = json.loads((tmp_path / "run" / "metrics.json").read_text())["rows"]
    assert row["diverged"] is True and row["test_loss_per_char"] < 100
    refused = kcourse("export", "run", "export", cwd=tmp_path)
    assert refused.returncode == 2 and "--allow-diverged" in refused.stderr
    allowed = kcourse("export", "run", "export", "--allow-diverged", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr[-2000:]


def test_concurrent_exports_claim_different_versions(finished):
    exports = [subprocess.Popen([sys.executable, "-m", "kcourse", "export", "run", "export"],
                                cwd=finished, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
               for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in exports]
    assert all(p.returncode == 0 for p in exports), outputs
    assert sorted(os.listdir(finished / "export" / "a4")) == ["1", "2"]
    assert sorted(o[0].split("Exported to ")[1].split()[0][-1] for o in outputs) == ["1", "2"]
