"""`kcourse report`: run directories made by hand (no data, no training) become one
Markdown and one HTML page with the rows' tables, the reference, the commands and the
figures; the a1 templates of every row side by side (the track's hook)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from kcourse import experiments, plots
from kcourse.errors import SettingError
from kcourse.runs.layout import read_json, row_tag, write_history_csv, write_json
from kcourse.runs.report import (find_run_dirs, reproduce_command, row_seconds,
                                 write_report)

A1_ROWS = [({"loss": "cross_entropy", "lambda": 0.0, "eta": 0.1}, 0.2987, 0.3008),
           ({"loss": "cross_entropy", "lambda": 0.0, "eta": 0.001}, 0.3871, 0.3882),
           ({"loss": "svm", "lambda": 0.1, "eta": 0.001}, 0.3544, 0.36)]


def fake_run(path, experiment="a1", rows=A1_ROWS, seed=3, overrides=None, figures=True,
             timing=True):
    """A finished run directory as `kcourse run` leaves it (without the models)."""
    spec = experiments.get(experiment)
    overrides = overrides if overrides is not None else {"epochs": 5}
    configs = [{**spec["defaults"], **row, **overrides} for row, _, _ in rows]
    write_json(os.path.join(path, "config.json"),
               {"experiment": experiment, "seed": seed, "quick": False,
                "overrides": overrides, "rows": configs, "data_dir": None})
    metrics, histories, times = [], [], {}
    for i, ((row, val, test), config) in enumerate(zip(rows, configs)):
        tag = row_tag(i, row)
        metrics.append({"tag": tag, **config, "train_cost": 1.5 + i, "val_accuracy": val,
                        "test_accuracy": test, "diverged": False})
        history = [{"epoch": e, "step": 10 * e, "val_accuracy": val * e / 4,
                    "train_loss": 2.0 - e / 4, "seconds": 1.5 * e} for e in range(5)]
        histories.append((tag, history))
        times[tag] = {"row_seconds": 61.0 + i}
        if figures:
            plots.plot_curves(history, "loss", os.path.join(path, "figures",
                                                            f"{tag}_loss.png"))
    write_json(os.path.join(path, "metrics.json"),
               {"experiment": experiment, "reference": spec["reference"], "rows": metrics})
    if timing:
        write_json(os.path.join(path, "timing.json"), times)
    write_history_csv(path, histories)
    return path


def links(text, pattern):
    return re.findall(pattern, text)


def test_report_holds_the_table_reference_commands_and_figures(tmp_path):
    run = fake_run(str(tmp_path / "runs" / "a1"), overrides={"epochs": 5, "eta": 0.002})
    out = str(tmp_path / "report")
    md_path, html_path = write_report([run], out=out)
    md = open(md_path, encoding="utf-8").read()
    assert experiments.get("a1")["reference"] in md
    for _, val, test in A1_ROWS:  # accuracies as percentages
        assert f"{100 * val:.2f}%" in md and f"{100 * test:.2f}%" in md
    assert "| loss | lambda | eta |" in md.replace("  ", " ")
    assert "| 1 min 1 s |" in md  # timing.json's row_seconds
    command = f"kcourse run a1 --seed 3 --set epochs=5 --set eta=0.002 --out {run}"
    assert command in md
    assert f"{command} --fresh-row 2" in md
    assert "**38.71%**" in md  # the best row, by validation accuracy
    figures = links(md, r"!\[[^\]]*\]\(([^)]+)\)")
    assert any(p.endswith("rows_compared.png") for p in figures)
    assert len([p for p in figures if p.endswith("_loss.png")]) == 3
    for path in figures:  # copied: the report folder stands alone
        assert os.path.isfile(os.path.join(out, path)) and not path.startswith("..")
    page = open(html_path, encoding="utf-8").read()
    assert "<table>" in page and "38.71%" in page and command in page
    sources = links(page, r'<img src="([^"]+)"')
    assert sorted(sources) == sorted(figures)


def test_linked_figures_and_a_rewritten_report(tmp_path):
    run = fake_run(str(tmp_path / "runs" / "a1"))
    out = str(tmp_path / "report")
    write_report([run], out=out)
    md_path, _ = write_report([run], out=out, copy_figures=False)  # again: replaced
    md = open(md_path, encoding="utf-8").read()
    figures = links(md, r"!\[[^\]]*\]\(([^)]+)\)")
    assert any(p.startswith("../runs/a1/figures/") for p in figures)
    for path in figures:
        assert os.path.isfile(os.path.join(out, path))
    assert not os.path.exists(os.path.join(out, "a1", "figures"))  # the old copies went


def test_every_run_under_root_by_default_and_non_runs_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_run("runs/a1", figures=False)
    fake_run("runs/more/a2", "a2-1cycle", rows=[({}, 0.4615, 0.4601)], overrides={},
             timing=False)
    os.makedirs("runs/empty")
    write_json("runs/unfinished/config.json", {"experiment": "a1"})
    assert find_run_dirs("runs") == ["runs/a1", "runs/more/a2", "runs/unfinished"]
    notes = []
    md_path, html_path = write_report(say=notes.append)
    assert notes == ["kcourse report: skipping runs/unfinished: no metrics.json or "
                     "results.json: not a finished kcourse run"]
    assert md_path == os.path.join("runs", "report", "report.md")
    md = open(md_path, encoding="utf-8").read()
    assert "46.15%" in md and "kcourse run a2-1cycle --seed 3 --out runs/more/a2" in md
    assert "| 6.0 s |" in md  # no timing.json: the history's last `seconds`
    assert md.index("## a1") < md.index("## a2-1cycle")  # the course's order
    write_report(say=notes.append)  # the report folder under runs/ is no run
    notes.clear()
    md_path, _ = write_report(["runs/a1", "runs/empty", "nowhere"], out="r",
                              say=notes.append)
    assert notes == ["kcourse report: skipping runs/empty: no metrics.json or "
                     "results.json: not a finished kcourse run",
                     "kcourse report: skipping nowhere: no such directory"]
    assert "Skipped: `runs/empty`" in open(md_path, encoding="utf-8").read()


def test_an_empty_selection_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingError, match="no runs/ folder here.*kcourse run"):
        write_report()
    os.makedirs("runs/x")
    with pytest.raises(SettingError, match="no finished kcourse run in runs/"):
        write_report(say=lambda m: None)
    with pytest.raises(SettingError, match="no finished kcourse run in the given"):
        write_report(["runs/x"], say=lambda m: None)
    fake_run("runs/a1", figures=False)
    with pytest.raises(SettingError, match="inside the run directory"):
        write_report(["runs/a1"], out="runs/a1/report")
    os.makedirs("notes/a1")
    open("notes/a1/thesis.tex", "w").close()
    with pytest.raises(SettingError, match="not written by kcourse report"):
        write_report(["runs/a1"], out="notes")
    assert os.path.exists("notes/a1/thesis.tex")


def test_a_search_directory_reports_its_trials_and_the_tune_command(tmp_path):
    path = str(tmp_path / "runs" / "search")
    trials = [{"stage": "random", "trial": "00", "k1": 3, "eta": 0.0171017,
               "val_accuracy": 0.55},
              {"stage": "random", "trial": "01", "k1": 5, "eta": 0.002032,
               "val_accuracy": 0.6}]
    write_json(os.path.join(path, "config.json"),
               {"experiment": "a3-surnames-search", "seed": 0, "quick": True,
                "overrides": {}, "rows": [{}], "data_dir": None})
    write_json(os.path.join(path, "results.json"),
               {"experiment": "a3-surnames-search", "reference": "course says 48.0%",
                "trials": trials, "best": trials[1], "best_test_accuracy": 0.5556})
    plots.plot_curves([{"epoch": 0, "val_loss": 1.0}], "loss",
                      os.path.join(path, "figures", "search.png"))
    md_path, html_path = write_report([path], out=str(tmp_path / "report"))
    md = open(md_path, encoding="utf-8").read()
    assert f"kcourse tune a3-surnames-search --quick --out {path}" in md
    assert "| **random** | **01** | **5** | **0.002032** | **60.00%** |" in md
    assert "55.56%" in md and "course says 48.0%" in md
    assert "search.png" in open(html_path, encoding="utf-8").read()


def test_a_character_run_compares_smooth_and_validation_losses(tmp_path, monkeypatch):
    path = str(tmp_path / "a4")
    rows = [({"units": 50}, 0.0, 0.0), ({"units": 100}, 0.0, 0.0)]
    fake_run(path, "char-lstm", rows=rows, overrides={}, figures=False)
    write_history_csv(path, [(row_tag(i, {"units": u}), [
        {"step": s, "smooth_loss": 80.0 - s / 10 - i, "val_loss_per_char": 3.0 - s / 1000}
        for s in (100, 200, 300)]) for i, u in enumerate((50, 100))])
    drawn = {}

    def draw(curves, metrics, path, x, title):
        drawn.update(metrics=metrics, x=x, rows=[tag for tag, _ in curves])
        return path

    monkeypatch.setattr(plots, "plot_row_curves", draw)
    write_report([path], out=str(tmp_path / "report"))
    assert drawn == {"metrics": ["smooth_loss", "val_loss_per_char"], "x": "step",
                     "rows": ["00_units50", "01_units100"]}


def test_the_report_loads_no_tensorflow_for_a_run_that_does_not_ask(tmp_path):
    run = fake_run(str(tmp_path / "a2"), "a2-1cycle", rows=[({}, 0.46, 0.45)] * 2,
                   overrides={})
    code = ("import sys; from kcourse.runs.report import write_report; "
            f"write_report([{run!r}], out={str(tmp_path / 'r')!r}); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert os.path.isfile(tmp_path / "r" / "a2" / "rows_compared.png")


def test_commands_and_times():
    config = {"experiment": "a4", "seed": 0, "quick": True, "data_dir": "/data x",
              "overrides": {"hidden": [50, 30], "batch_norm": True, "eta": 1e-05,
                            "text": "/home/me/my book.txt"}}
    assert reproduce_command(config, "runs/a4 q", fresh_row=1) == (
        "kcourse run a4 --quick --set hidden=50,30 --set batch_norm=true --set eta=1e-05 "
        "--set 'text=/home/me/my book.txt' --data-dir '/data x' --out 'runs/a4 q' "
        "--fresh-row 1")
    run = {"timing": {"00": {"train_seconds": 5.0, "chars_per_second": 9.0}}, "history": {}}
    assert row_seconds(run, "00") == 5.0 and row_seconds(run, "01") is None


def test_template_grid_draws_every_row(tmp_path):
    rng = np.random.default_rng(0)
    kernels = {"00_cross_entropy": rng.normal(size=(3072, 10)),
               "01_svm\ntest 35.00%": rng.normal(size=(3072, 10))}
    path = plots.plot_template_grid(kernels, [f"c{i}" for i in range(10)],
                                    str(tmp_path / "t.png"), title="a1")
    from matplotlib.image import imread

    height, width, _ = imread(path).shape
    assert width > 4 * height > 0


def test_a1_report_has_the_templates_of_every_row(tmp_path):
    """The cifar_mlp hook: the rows' model.keras (one-layer classifiers) drawn side by
    side (TensorFlow: a few seconds)."""
    from kcourse.tracks.cifar_mlp.track import build_model
    from kcourse.training.checkpoints import save_model

    run = fake_run(str(tmp_path / "a1"), rows=A1_ROWS[:2], figures=False)
    for i, row in enumerate(read_json(os.path.join(run, "metrics.json"))["rows"]):
        model = build_model({**experiments.get("a1")["defaults"], "task": "linear"}, i)
        os.makedirs(os.path.join(run, "rows", row["tag"]))
        save_model(model, os.path.join(run, "rows", row["tag"], "model.keras"))
    md_path, _ = write_report([run], out=str(tmp_path / "report"))
    md = open(md_path, encoding="utf-8").read()
    assert "![templates](a1/templates.png)" in md
    assert os.path.isfile(tmp_path / "report" / "a1" / "templates.png")
