import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kcourse import experiments
from kcourse.experiments import SettingError, parse_sets, resolve
from kcourse.tracks.cifar_mlp.experiments import A1_SETTINGS

REPO = Path(__file__).resolve().parents[1]


def kcourse(*args, env=None, timeout=600, cwd=None):
    return subprocess.run([sys.executable, "-m", "kcourse", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})


def test_help_and_list_do_not_import_tensorflow():
    code = ("import sys, contextlib, io\n"
            "from kcourse.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    main(['list'])\n"
            "assert 'tensorflow' not in sys.modules, 'list imported TensorFlow'\n"
            "assert 'keras' not in sys.modules\n"
            "print(out.getvalue())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name, spec in experiments.EXPERIMENTS.items():
        assert name in result.stdout and spec["reference"] in result.stdout
    help_run = kcourse("run", "--help")
    assert help_run.returncode == 0 and "--set KEY=VALUE" in help_run.stdout
    assert "kcourse list EXPERIMENT" in help_run.stdout
    for name, spec in experiments.EXPERIMENTS.items():  # every runnable experiment named
        assert ("search" in spec) or name in help_run.stdout


def test_list_experiment_shows_every_setting_with_its_default_and_meaning():
    from kcourse.cli import describe
    from kcourse.tracks import tracks

    for track in tracks().values():
        for name, spec in track.experiments.items():
            missing = [k for k in spec["defaults"] if not track.settings.get(k)]
            assert not missing, f"{track.name}: settings without a meaning: {missing}"
            text = describe(name)
            for key, value in spec["defaults"].items():
                line = next(l for l in text.splitlines() if l.split()[:1] == [key])
                assert track.settings[key] in line
    result = kcourse("list", "a3-surnames")
    assert result.returncode == 0 and "compensation  none" in result.stdout
    assert "[rows: none | balanced | weighted]" in result.stdout
    assert kcourse("list", "a9").returncode == 2


def test_default_run_directory_is_named_after_a_users_text(tmp_path):
    from kcourse.cli import build_parser, checked_options

    book = tmp_path / "Alice in Wonderland.txt"
    book.write_text("Alice was beginning to get very tired.\n", encoding="utf-8")
    parse = build_parser().parse_args
    assert checked_options(parse(["run", "a4", "--text", str(book)]))["out"] == \
        os.path.join("runs", "a4-Alice-in-Wonderland")
    assert checked_options(parse(["run", "a4"]))["out"] == os.path.join("runs", "a4")
    assert checked_options(parse(["run", "a4", "--quick", "--set", f"text={book}"]))[
        "out"] == os.path.join("runs", "a4-Alice-in-Wonderland-quick")
    assert checked_options(parse(["run", "a1"]))["out"] == os.path.join("runs", "a1")


def test_lr_range_keeps_its_result_and_measures_again_with_fresh(tmp_path, capsys):
    from kcourse.tracks.cifar_mlp.commands import _measured
    from kcourse.runs.layout import write_json

    out = str(tmp_path / "lr")
    settings = {"experiment": "a2-1cycle", "config": {"eta_min": 1e-5}, "seed": 0,
                "eta_min": 1e-5, "eta_max": 1.0, "epochs": 8}
    assert _measured(out, settings, fresh=False) is None  # nothing there: measure
    write_json(os.path.join(out, "lr_range.json"), {**settings, "suggestion": {"eta_min": 1}})
    assert _measured(out, settings, fresh=False) == {"eta_min": 1}  # same: kept
    assert "--fresh" in capsys.readouterr().out
    with pytest.raises(SettingError, match="range test of other settings"):
        _measured(out, {**settings, "epochs": 2}, fresh=False)
    assert _measured(out, {**settings, "epochs": 2}, fresh=True) is None
    assert not os.path.exists(out)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(SettingError, match="holds no range test"):
        _measured(str(tmp_path / "other"), settings, fresh=True)
    assert (tmp_path / "other" / "notes.txt").exists()


@pytest.mark.parametrize("args, message", [
    (["--set", "eta=-1"], "eta=-1.0 must be positive"),
    (["--set", "batch_size=0"], "batch_size=0 must be at least 1"),
    (["--set", "lambda=-0.5"], "lambda=-0.5 must be non-negative"),
    (["--set", "lambda=abc"], "expected a float"),
    (["--set", "colour=red"], "unknown key"),
    (["--set", "eta"], "expected key=value"),
])
def test_bad_settings_get_one_line_and_exit_code_2(args, message):
    result = kcourse("run", "a1", *args)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_unknown_experiment():
    result = kcourse("run", "a9")
    assert result.returncode == 2 and "kcourse list" in result.stderr


def test_offline_without_data_fails_fast_with_instructions(tmp_path):
    (tmp_path / "empty").mkdir()
    result = kcourse("run", "a1", "--quick", "--data-dir", str(tmp_path / "empty"),
                     "--tfds-dir", str(tmp_path / "tfds"), "--out", str(tmp_path / "run"),
                     env={"KCOURSE_OFFLINE": "1"}, timeout=120)
    assert result.returncode == 1
    assert "KCOURSE_DATA_DIR" in result.stderr and "--data-dir" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # refused before training: nothing left behind


def test_parse_and_resolve_settings():
    assert parse_sets("a1", ["eta=0.01", "flip=true", "epochs=3", "loss=svm"]) == {
        "eta": 0.01, "flip": True, "epochs": 3, "loss": "svm"}
    rows = resolve("a1", {"epochs": 3})
    assert len(rows) == 8 and all(r["epochs"] == 3 for r in rows)
    assert {(r["loss"], r["lambda"], r["eta"]) for r in rows} == {
        (loss, lam, eta) for loss in ("cross_entropy", "svm")
        for lam, eta in A1_SETTINGS}
    quick = resolve("a1", quick=True)
    assert len(quick) == 2 and quick[0]["epochs"] == 2 and quick[0]["limit"] == 1000
    with pytest.raises(SettingError, match="must be one of"):
        parse_sets("a1", ["data=imagenet"])


def test_a_quick_run_prints_a_short_plain_console(real_data_dir, tmp_path):
    """Not a terminal: no TensorFlow / TFDS start-up noise, no ANSI codes, a line per
    finished row, the summary in percent; under 40 lines even when TFDS prepares the
    dataset first (a fresh --tfds-dir)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "kcourse", "run", "a1", "--quick", "--data-dir",
         real_data_dir, "--out", str(tmp_path / "a1"), "--tfds-dir", str(tmp_path / "tfds")],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    console = result.stdout + result.stderr
    lines = console.splitlines()
    assert len(lines) < 40, console
    for noise in ("\x1b[", "oneDNN", "cpu_feature_guard", "absl", "Variant folder",
                  "Downloading and preparing", "Epoch 1/"):
        assert noise not in console, noise
    assert "Preparing the dataset kcourse_cifar10" in console
    assert sum(line.startswith("[a1] row") and "done:" in line for line in lines) == 2
    assert "course: DD2424 A1" in console and "%" in lines[-4]


def test_run_a1_quick_end_to_end_and_resume(real_data_dir, tmp_path):
    out = tmp_path / "a1"
    result = kcourse("run", "a1", "--quick", "--quiet", "--data-dir", real_data_dir,
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "test_accuracy" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["experiment"] == "a1" and len(metrics["rows"]) == 2
    for row in metrics["rows"]:
        assert {"loss", "lambda", "eta", "test_accuracy", "val_accuracy", "train_cost"} <= set(row)
        assert 0.1 < row["test_accuracy"] < 0.5  # learnt something, 1,000 images, 2 epochs
    config = json.loads((out / "config.json").read_text())
    assert config["quick"] is True and config["rows"][0]["epochs"] == 2
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("row,epoch,step") and len(history) == 1 + 2 * 3
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert len(figures) == 12 and any(f.endswith("_templates.png") for f in figures)
    assert (out / "rows" / metrics["rows"][0]["tag"] / "model.keras").exists()

    saved = out / "rows" / metrics["rows"][1]["tag"] / "model.keras"
    stamp = saved.stat().st_mtime_ns
    again = kcourse("run", "a1", "--quick", "--quiet", "--data-dir", real_data_dir,
                    "--out", str(out))
    assert again.returncode == 0
    assert saved.stat().st_mtime_ns == stamp  # finished rows are kept, not retrained
    assert json.loads((out / "metrics.json").read_text())["rows"] == metrics["rows"]

    other = kcourse("run", "a1", "--quick", "--set", "eta=0.5", "--data-dir", real_data_dir,
                    "--out", str(out))
    assert other.returncode == 2 and "--fresh" in other.stderr

    # the run's report: its table (accuracies in percent), its figures, its command
    report = kcourse("report", str(out), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report" / "report.md").read_text()
    for row in metrics["rows"]:
        assert f"{row['test_accuracy']:.2%}" in page
    assert "kcourse run a1 --quick " in page and f"--out {out}" in page
    links = [part.split(")")[0] for part in page.split("](")[1:] if ".png)" in part]
    assert any("templates" in link for link in links) and len(links) >= 12
    assert all((tmp_path / "report" / link).exists() for link in links)
    assert "<table>" in (tmp_path / "report" / "report.html").read_text()


def test_gradcheck_a1_passes_on_real_data(real_data_dir):
    result = kcourse("gradcheck", "a1", "--data-dir", real_data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" ok") == 8 and "PASSED" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["tune", "a1"], "not a search"),
    (["run", "a2-lambda"], "kcourse tune a2-lambda"),
    (["tune", "a3-3layer"], "a2-lambda, a3-lambda"),
    (["lr-range", "a1"], "no cyclical learning rate"),
    (["lr-range", "a2-1cycle", "--eta-min", "0.5", "--eta-max", "0.1"], "--eta-min"),
    (["run", "a3-3layer", "--set", "hidden=50,x"], "comma-separated integers"),
    (["run", "a3-3layer", "--set", "dropout=1.5"], "dropout=1.5 must be in [0, 1)"),
    (["run", "a2-1cycle", "--set", "policy=sine"], "must be triangular"),
])
def test_bad_tune_and_lr_range_arguments(args, message):
    result = kcourse(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_list_settings_parse():
    assert parse_sets("a3-9layer", ["hidden=40,20", "batch_norm=no"]) == {
        "hidden": [40, 20], "batch_norm": False}
    rows = resolve("a3-init")
    assert {(r["sigma"], r["batch_norm"]) for r in rows} == {
        (s, bn) for s in (1e-1, 1e-3, 1e-4) for bn in (False, True)}
    assert all(r["init"] == "gaussian" for r in rows)


@pytest.mark.parametrize("name, rows", [("a2-1cycle", 1), ("a3-3layer", 2)])
def test_run_multilayer_quick_end_to_end(real_data_dir, tmp_path, name, rows):
    out = tmp_path / name
    result = kcourse("run", name, "--quick", "--quiet", "--data-dir", real_data_dir,
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["rows"]) == rows
    for row in metrics["rows"]:
        assert {"test_accuracy", "val_accuracy", "batch_norm", "hidden", "n_s"} <= set(row)
        assert 0.15 < row["test_accuracy"] < 0.6
    if name == "a3-3layer":
        assert [r["batch_norm"] for r in metrics["rows"]] == [False, True]
    history = json.loads((out / "rows" / metrics["rows"][0]["tag"] / "checkpoints" /
                          "history.json").read_text())
    # 10 evaluations per cycle (n_s = 20 in quick mode: every 4 updates), the start and
    # the end of every epoch (10 updates of 100 images)
    total = metrics["rows"][0]["updates"]
    assert total == 40 * metrics["rows"][0]["cycles"]
    steps = [h["step"] for h in history["rows"]]
    assert steps == sorted(set(range(0, total + 1, 4)) | set(range(10, total, 10)))
    lr = {h["step"]: h["learning_rate"] for h in history["rows"]}
    assert lr[0] == pytest.approx(1e-5) and lr[20] == pytest.approx(0.1)
    assert lr[10] == pytest.approx(0.05, rel=1e-3) and max(lr.values()) == lr[20]
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {f"{metrics['rows'][0]['tag']}_{k}.png"
            for k in ("cost", "loss", "accuracy", "learning_rate", "confusion")} <= figures


def test_gradcheck_a3_3layer_with_batch_norm_passes(real_data_dir):
    result = kcourse("gradcheck", "a3-3layer", "--data-dir", real_data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bn_1/gamma" in result.stdout and "PASSED" in result.stdout
    assert "FAIL " not in result.stdout


def test_tune_and_lr_range_quick(real_data_dir, tmp_path):
    result = kcourse("tune", "a2-lambda", "--quick", "--quiet", "--data-dir", real_data_dir,
                     "--out", str(tmp_path / "tune"))
    assert result.returncode == 0, result.stderr
    assert "Best lambda" in result.stdout
    results = json.loads((tmp_path / "tune" / "results.json").read_text())
    # 3 coarse values x 2 step sizes, then 2 fine trials at the best step
    assert len(results["trials"]) == 8 and results["best_test_accuracy"] > 0.15
    assert results["best"]["n_s_epochs"] in (2, 5) and "n_s_epochs" in result.stdout
    result = kcourse("lr-range", "a2-1cycle", "--quick", "--quiet", "--epochs", "2",
                     "--data-dir", real_data_dir, "--out", str(tmp_path / "lr"))
    assert result.returncode == 0, result.stderr
    assert "Suggested cyclical range" in result.stdout
    again = kcourse("lr-range", "a2-1cycle", "--quick", "--quiet", "--epochs", "2",
                    "--data-dir", real_data_dir, "--out", str(tmp_path / "lr"))
    assert again.returncode == 0 and "already holds this range test" in again.stdout
    assert again.stdout.splitlines()[-3:] == result.stdout.splitlines()[-3:]
    saved = json.loads((tmp_path / "lr" / "lr_range.json").read_text())
    assert 1e-5 <= saved["suggestion"]["eta_min"] <= saved["suggestion"]["eta_max"] <= 1.0
    assert (tmp_path / "lr" / "lr_range.png").exists()


@pytest.fixture
def shakespeare_dir():
    from conftest import shared_data_dir

    path = shared_data_dir()
    if path is None or not os.path.isfile(os.path.join(path, "input.txt")):
        pytest.skip("tiny_shakespeare's input.txt not found: set KCOURSE_DATA_DIR or put "
                    "shared/data beside the repository")
    return path


@pytest.mark.parametrize("name", ["a4", "char-lstm"])
def test_char_models_quick_end_to_end(shakespeare_dir, tmp_path, name):
    out = tmp_path / name
    result = kcourse("run", name, "--quick", "--quiet", "--data-dir", shakespeare_dir,
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    (row,) = json.loads((out / "metrics.json").read_text())["rows"]
    assert row["updates"] == 300 and row["vocab_size"] == 66
    assert np.log(66) > row["val_loss_per_char"] > 1.5  # learnt something, not much
    assert row["smooth_loss"] < 25 * np.log(66)
    row_dir = out / "rows" / row["tag"]
    assert {"model.keras", "vocab.json", "samples.txt", "final_sample.txt"} <= \
        {p.name for p in row_dir.iterdir()}
    assert len((row_dir / "final_sample.txt").read_text(encoding="utf-8")) == 100
    assert (out / "figures" / f"{row['tag']}_losses.png").exists()
    history = json.loads((row_dir / "checkpoints" / "history.json").read_text())
    assert [r["step"] for r in history["rows"]] == [100, 200, 300]
    assert all("val_loss_per_char" in r for r in history["rows"])
    sample = kcourse("sample", str(out), "--prompt", "ROMEO:", "--length", "50",
                     "--seed", "3")
    again = kcourse("sample", str(out), "--prompt", "ROMEO:", "--length", "50",
                    "--seed", "3")
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout == again.stdout and sample.stdout.startswith("ROMEO:")
    assert len(sample.stdout) == len("ROMEO:") + 50 + 1
    # exported, its `generate` signature writes the same text without kcourse
    exported = kcourse("export", str(out), str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr
    (tmp_path / "calls.json").write_text(json.dumps(
        [{"prompt": "ROMEO:", "length": 50, "temperature": 1.0, "seed": 3}]))
    served = subprocess.run(
        [sys.executable, str(REPO / "tests" / "serve_without_kcourse.py"), "generate",
         str(tmp_path / "export" / name / "1"), str(tmp_path / "calls.json"),
         str(tmp_path / "texts.json")], capture_output=True, text=True, timeout=600)
    assert served.returncode == 0, served.stderr[-3000:]
    assert json.loads((tmp_path / "texts.json").read_text()) == [sample.stdout[6:-1]]


def test_gradcheck_a4_passes_on_real_text(shakespeare_dir):
    result = kcourse("gradcheck", "a4", "--data-dir", shakespeare_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in "UWbVc":
        assert f"rnn/{name} " in result.stdout
    assert "PASSED" in result.stdout and "FAIL " not in result.stdout


def test_char_model_on_a_users_text_file(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("It was the best of times, it was the worst of times.\n" * 100,
                    encoding="utf-8")
    result = kcourse("run", "a4", "--quick", "--quiet", "--text", str(book), "--set",
                     "updates=200", "--set", "units=20", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    (row,) = json.loads((tmp_path / "run" / "metrics.json").read_text())["rows"]
    assert row["text"] == str(book) and row["vocab_size"] == len(set(book.read_text())) + 1
    assert row["val_loss_per_char"] < 2.0  # a repeated sentence is easy


@pytest.mark.parametrize("args, message", [
    (["run", "a1", "--text", "book.txt"], "--text is for the character models"),
    (["run", "a4", "--text", "no/such/book.txt"], "no such file"),
    (["run", "a4", "--set", "top_p=0"], "top_p=0.0 must be in (0, 1]"),
    (["run", "a4", "--set", "cell=transformer"], "must be vanilla, lstm or gru"),
    (["sample", "no/such/run"], "holds no finished run"),
    (["sample", "runs", "--length", "0"], "--length >= 1"),
    (["export", "no/such/run", "out"], "holds no finished run"),
])
def test_bad_char_arguments(args, message):
    result = kcourse(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
