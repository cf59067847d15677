"""The run directory: a lock against a second process, `--fresh` deletes only runs,
atomic files, the determinism of a run."""

import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from kcourse.errors import SettingError
from kcourse.runs.layout import locked, row_tag, start_fresh, write_json


def _hold(out, ready, release):
    with locked(out):
        ready.set()
        release.wait(30)


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path):
    out = str(tmp_path / "run")
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(out, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(SettingError, match=f"in use by kcourse process {holder.pid}"):
            with locked(out):
                pass
    finally:
        release.set()
        holder.join(30)
    with locked(out):  # free again once the holder ends
        pass


def test_fresh_deletes_only_a_run_directory_of_the_experiment(tmp_path):
    notes = tmp_path / "x"
    notes.mkdir()
    (notes / "thesis.tex").write_text("notes")
    with pytest.raises(SettingError, match="not a run directory of a1"):
        start_fresh(str(notes), "a1")
    assert (notes / "thesis.tex").read_text() == "notes"
    run = tmp_path / "run"
    write_json(str(run / "config.json"), {"experiment": "a2-1cycle"})
    with pytest.raises(SettingError, match="not a run directory of a1"):
        start_fresh(str(run), "a1")
    start_fresh(str(run), "a2-1cycle")
    assert not run.exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingError, match="is a file"):
        start_fresh(str(tmp_path / "file"), "a1")


def test_write_json_replaces_atomically_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "m.json"
    write_json(str(path), {"a": 1})
    write_json(str(path), {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2} and os.listdir(tmp_path) == ["m.json"]


def test_row_tags_name_the_settings_of_a_row():
    assert row_tag(3, {"loss": "svm", "lambda": 0.1, "batch_norm": False,
                       "hidden": [50, 30]}) == "03_svm_lambda0.1_no_batch_norm_hidden50-30"


def test_row_tags_name_the_values_the_rows_train_with():
    """A --set of a row's own setting is in the row's directory name (the rows of
    `kcourse run inf265-embeddings --set embedding_dim=64` are not named dim12)."""
    from kcourse import experiments
    from kcourse.runs.experiment import row_tags

    spec = experiments.get("inf265-embeddings")
    assert row_tags(spec, experiments.resolve("inf265-embeddings")) == [
        "00_embedding_dim12", "01_embedding_dim16", "02_embedding_dim64"]
    assert row_tags(spec, experiments.resolve("inf265-embeddings", {"embedding_dim": 64})) \
        == ["00_embedding_dim64", "01_embedding_dim64", "02_embedding_dim64"]


@pytest.mark.parametrize("experiment", ["a2-1cycle", "a4"])
def test_the_same_run_twice_gives_identical_metrics(real_data_dir, tmp_path, experiment):
    """Seeded everything: the same command twice, even at the same time on one
    machine, writes the same metrics.json, byte for byte."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    runs = [subprocess.Popen([sys.executable, "-m", "kcourse", "run", experiment, "--quick",
                              "--quiet", "--data-dir", real_data_dir, "--out",
                              str(tmp_path / str(i))], env=env, stderr=subprocess.PIPE,
                             text=True) for i in range(2)]
    for run in runs:
        assert run.wait(600) == 0, run.stderr.read()[-3000:]
    first, second = (tmp_path / "0" / "metrics.json"), (tmp_path / "1" / "metrics.json")
    assert first.read_bytes() == second.read_bytes()  # wall-clock figures: timing.json
    assert json.loads(first.read_text())["rows"]
