"""What `fit` prints: one progress bar over all its updates; plain lines into files."""

import importlib
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.data import batched
from kcourse.losses import SoftmaxCrossEntropy
from kcourse.tracks.cifar_mlp.models import linear_classifier
from kcourse.training import fit

fit_module = importlib.import_module("kcourse.training.fit")  # not the function


@pytest.fixture
def not_a_terminal(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)


def train(epochs=3, verbose=1, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 200)]
    data = batched(tf.data.Dataset.from_tensor_slices((x, y)), 50)
    return fit(linear_classifier(input_dim=8, num_classes=3, seed=0), SoftmaxCrossEntropy(),
               data, data, optimizer=keras.optimizers.SGD(0.1), epochs=epochs,
               verbose=verbose, **kwargs)


def test_output_that_is_not_a_terminal_gets_plain_lines(capsys, not_a_terminal):
    train(epochs=3)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "\x1b[" not in out and "\b" not in out and "\r" not in out
    assert "Epoch" not in out
    assert len(lines) == 3  # one per evaluation point
    assert lines[-1].startswith("12/12 - ")
    assert all(" - loss: " in line and " - lr: 0.1000" in line and " - val_accuracy: " in line
               and " - val_loss: " in line for line in lines)


def test_a_terminal_gets_one_bar_over_all_the_updates(capsys, monkeypatch):
    monkeypatch.setattr(fit_module, "_dynamic_display", lambda: True)
    train(epochs=3)
    out = capsys.readouterr().out
    assert "Epoch" not in out and "/12" in out and "/4" not in out
    assert out.count("\n") == 1 and out.endswith("\n")  # one line, redrawn in place
    assert "val_accuracy" in out


def test_verbose_2_prints_plain_lines_and_0_nothing(capsys, monkeypatch):
    monkeypatch.setattr(fit_module, "_dynamic_display", lambda: True)
    train(epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 2 and "\x1b[" not in out
    train(epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_time_limit_and_resume_messages_stay(capsys, not_a_terminal, tmp_path):
    history = train(epochs=50, time_limit=1e-9, out_dir=str(tmp_path))
    out = capsys.readouterr().out
    assert history.stopped in out and out.count("\n") == 2  # the last line, the message
    train(epochs=50, time_limit=1e-9, out_dir=str(tmp_path))
    assert "Resumed from" in capsys.readouterr().out


def test_a_long_run_into_a_file_prints_about_ten_lines(capsys, not_a_terminal):
    train(epochs=40)  # 40 evaluation points, 160 updates
    lines = capsys.readouterr().out.splitlines()
    assert 9 <= len(lines) <= 11 and lines[-1].startswith("160/160 - ")
