"""The localization track end to end on tiny generated MNIST files: quick runs of
localization and detection, their files and figures, the exported SavedModel against
the Keras model (in process, and in a process without kcourse), the course's LeNet5Conv
shapes, and the decoding of boxes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kcourse.data.mnist_canvas import CELL, GRID, HEIGHT, MNIST_FILES, WIDTH
from kcourse.runs import run_experiment
from kcourse.serving import export

EXPERIMENTS = ("inf265-localization", "inf265-detection")

SERVE_WITHOUT_KCOURSE = """
import sys
sys.modules["kcourse"] = None  # any `import kcourse` now fails
import numpy as np
import tensorflow as tf
saved_model, images_path, out_path = sys.argv[1:]
loaded = tf.saved_model.load(saved_model)
images = tf.constant(np.load(images_path))
outputs = {k: v.numpy() for k, v in loaded.signatures["serving_default"](images=images).items()}
low = loaded.signatures["with_threshold"](images=images, threshold=tf.constant(0.01))
outputs["low_detected"] = low["detected"].numpy()
np.savez(out_path, **{k: v.astype(str) if v.dtype == object else v for k, v in outputs.items()})
assert not any(name == "kcourse" or name.startswith("kcourse.") for name in sys.modules
               if sys.modules[name] is not None)
"""


# ----------------------------------------------------------------------------- fake MNIST

def write_fake_mnist(root, num_train=200, num_test=60, seed=0):
    """Tiny MNIST files: 'digits' are filled rectangles (255) of random size and place
    on 28x28 images, labelled 0, 1, 2, 0, 1, ... (detection keeps the 0s and 1s)."""
    from conftest import write_idx

    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", num_train), ("test", num_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        for image in images:
            h, w = rng.integers(8, 21, 2)
            top, left = rng.integers(2, 27 - h), rng.integers(2, 27 - w)
            image[top:top + h, left:left + w] = 255
        write_idx(root / MNIST_FILES[split][0], images)
        write_idx(root / MNIST_FILES[split][1], np.arange(n) % 3)


@pytest.fixture(scope="module")
def canvas_env(tmp_path_factory):
    from conftest import tfds_data_dir

    root = tmp_path_factory.mktemp("canvases")
    write_fake_mnist(root / "manual")
    with tfds_data_dir(root / "tfds"):
        yield {"manual": str(root / "manual"), "root": root}


@pytest.fixture(scope="module")
def quick_runs(canvas_env):
    runs = {}
    for name in EXPERIMENTS:
        out = str(canvas_env["root"] / "runs" / name)
        # 2 epochs of 64-canvas batches over at most 180 training canvases
        runs[name] = out, run_experiment(name, out=out, data_dir=canvas_env["manual"],
                                         quick=True, overrides={"limit": 180}, verbose=0)
    return runs


# ----------------------------------------------------------------------------- the runs

@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_run_trains_every_row_and_writes_its_files(quick_runs, name):
    out, metrics = quick_runs[name]
    rows = metrics["rows"]
    assert [r["arch"] for r in rows] == ["lenet", "lenet_bn", "deep"]
    assert metrics["reference"].startswith("course solution (validation): IoU")
    timing = json.load(open(os.path.join(out, "timing.json")))
    for row in rows:
        for prefix in ("val_", "test_"):
            for key in ("iou", "accuracy", "score", "false_alarm_rate"):
                assert 0 <= row[prefix + key] <= 1, (prefix + key, row[prefix + key])
            assert np.isclose(row[prefix + "score"],
                              (row[prefix + "iou"] + row[prefix + "accuracy"]) / 2)
            assert np.isfinite(row[prefix + "loss"])
        assert row["updates"] == 2 * 3 and not row["diverged"]  # 2 epochs of 3 batches
        assert row["task"] == name.split("-")[1] and row["parameters"] > 0
        assert timing[row["tag"]]["train_seconds"] > 0
        assert timing[row["tag"]]["images_per_second"] > 0
        row_dir = os.path.join(out, "rows", row["tag"])
        for file in ("model.keras", "canvas.json", "result.json"):
            assert os.path.exists(os.path.join(row_dir, file))
        for suffix in ("loss", "score", "boxes", "worst"):
            path = os.path.join(out, "figures", f"{row['tag']}_{suffix}.png")
            assert os.path.getsize(path) > 1000
    history = open(os.path.join(out, "history.csv")).readline()
    assert "val_score" in history and "train_iou" in history


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_reported_scores_are_those_of_the_saved_model(quick_runs, name, canvas_env):
    """The row's validation and test scores are the saved (best) model's, as the
    NumPy scores compute them on its predictions."""
    from kcourse.metrics import localization_scores
    from kcourse.tracks.localization import track

    out, metrics = quick_runs[name]
    row = metrics["rows"][0]
    model, canvas = track.load_row(os.path.join(out, "rows", row["tag"]))
    splits = track.data_for(row, canvas_env["manual"])
    for split, prefix in (("validation", "val_"), ("test", "test_")):
        scores = localization_scores(splits.y[split], track.predict(model, splits.x[split]))
        for key in ("iou", "accuracy", "score"):
            assert np.isclose(scores[key], row[prefix + key], atol=1e-6)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_export_serves_raw_canvases_as_the_model_predicts(quick_runs, name, canvas_env,
                                                          tmp_path):
    import tensorflow as tf

    from kcourse.tracks.localization import track

    out, metrics = quick_runs[name]
    path = export(out, str(tmp_path / "export"))
    info_row = max(metrics["rows"], key=lambda r: r["val_score"])
    model, canvas = track.load_row(os.path.join(out, "rows", info_row["tag"]))
    splits = track.data_for(info_row, canvas_env["manual"])
    images = np.rint(splits.x["test"][:17] * 255).astype(np.uint8)
    expected = track.decode(track.predict(model, images.astype(np.float32) / 255.0),
                            canvas["task"])
    cells = () if canvas["task"] == "localization" else (GRID[0] * GRID[1],)
    k = len(canvas["class_names"])
    # in process
    loaded = tf.saved_model.load(path)
    served = {k_: v.numpy() for k_, v in
              loaded.signatures["serving_default"](images=tf.constant(images)).items()}
    assert served["boxes"].shape == (17, *cells, 4)
    assert served["probabilities"].shape == (17, *cells, k)
    for key in ("boxes", "confidence", "probabilities"):
        np.testing.assert_allclose(served[key], expected[key], atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(served["class_id"], expected["class_id"])
    np.testing.assert_array_equal(served["detected"], expected["detected"])
    assert [c.decode() for c in served["class_name"].ravel()] == [
        canvas["class_names"][i] for i in expected["class_id"].ravel()]
    # in a process without kcourse, with the threshold given too
    np.save(tmp_path / "images.npy", images)
    subprocess.run([sys.executable, "-c", SERVE_WITHOUT_KCOURSE, path,
                    str(tmp_path / "images.npy"), str(tmp_path / "served.npz")],
                   check=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    apart = np.load(tmp_path / "served.npz")
    for key in ("boxes", "confidence", "probabilities"):
        np.testing.assert_allclose(apart[key], served[key], atol=1e-5)
    np.testing.assert_array_equal(apart["class_id"], served["class_id"])
    np.testing.assert_array_equal(apart["low_detected"], expected["confidence"] > 0.01)
    # a canvas of the wrong shape is refused with a message
    with pytest.raises(tf.errors.InvalidArgumentError, match="uint8 \\(batch, 48, 60, 1\\)"):
        loaded.signatures["serving_default"](images=tf.zeros((2, 60, 48, 1), tf.uint8))


def test_predict_inputs_reads_canvas_pngs_and_describes_them(quick_runs, tmp_path):
    import tensorflow as tf

    from kcourse.errors import SettingError
    from kcourse.tracks.localization import track

    rng = np.random.default_rng(0)
    canvases = rng.integers(0, 256, (2, HEIGHT, WIDTH, 1), dtype=np.uint8)
    paths = []
    for i, canvas in enumerate(canvases):
        paths.append(str(tmp_path / f"c{i}.png"))
        tf.io.write_file(paths[-1], tf.io.encode_png(canvas))
    batch = track.predict_inputs(paths)
    assert batch.dtype == tf.uint8 and batch.shape == (2, HEIGHT, WIDTH, 1)
    np.testing.assert_array_equal(batch.numpy(), canvases)
    tf.io.write_file(str(tmp_path / "small.png"), tf.io.encode_png(canvases[0][:40]))
    with pytest.raises(SettingError, match="60x48 gray canvases"):
        track.predict_inputs([str(tmp_path / "small.png")])
    out, _ = quick_runs["inf265-detection"]
    from kcourse.runs.layout import run_row

    row_dir = run_row(out)[1]
    assert track.class_names(row_dir) == ["0", "1"]
    outputs = {"boxes": np.array([[[0, 0, 10, 10]] * 6]),
               "confidence": np.array([[.9, .1, .2, .6, 0, 0]]),
               "class_id": np.array([[1, 0, 0, 0, 0, 0]]),
               "detected": np.array([[True, False, False, True, False, False]])}
    described = track.describe(outputs, ["0", "1"])
    assert [d["class"] for d in described[0]] == ["1", "0"]
    drawn = track.draw(canvases[:1], described[:1], [str(tmp_path / "drawn.png")])
    assert os.path.getsize(drawn[0]) > 1000


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_kcourse_predict_prints_the_objects_and_draws_them(quick_runs, name, tmp_path):
    """`kcourse predict RUN canvas.png --draw DIR`: per canvas the served model's objects
    (class, confidence, box in pixels), the same as `kcourse.serving.predict` gives, and
    the canvases drawn."""
    import tensorflow as tf

    from kcourse.serving import predict

    out, _ = quick_runs[name]
    canvases = np.random.default_rng(1).integers(0, 60, (2, HEIGHT, WIDTH, 1), np.uint8)
    paths = [str(tmp_path / f"canvas{i}.png") for i in range(2)]
    for canvas, path in zip(canvases, paths):
        tf.io.write_file(path, tf.io.encode_png(canvas))
    found = predict(str(out), paths)
    assert [given for given, _ in found] == paths
    result = subprocess.run([sys.executable, "-m", "kcourse", "predict", str(out), *paths,
                             "--draw", str(tmp_path / "drawn")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for (given, objects), line in zip(found, lines):
        assert line.startswith(f"{given}: ")
        if objects:
            assert all(f"{o['class']} {o['confidence']:.3f} at [" in line for o in objects)
        else:
            assert line.endswith("nothing found")
    assert sorted(os.listdir(tmp_path / "drawn")) == ["canvas0_boxes.png", "canvas1_boxes.png"]


# ----------------------------------------------------------------------------- the model

def test_lenet5conv_is_the_course_network():
    from kcourse.tracks.localization.model import localization_net

    model = localization_net("localization", "lenet", seed=0)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv_1"] == (44, 56, 6) and shapes["pool_1"] == (22, 28, 6)
    assert shapes["conv_2"] == (18, 24, 16) and shapes["pool_2"] == (9, 12, 16)
    assert shapes["conv_3"] == (1, 1, 120) and shapes["head"] == (1, 1, 15)
    assert model.output_shape == (None, 15)
    # 6*(25+1) + 16*(150+1) + 120*(16*9*12+1) + 15*(120+1)
    assert model.count_params() == 156 + 2416 + 207480 + 1815
    detector = localization_net("detection", "lenet", seed=0)
    assert detector.get_layer("conv_3").output.shape[1:] == (2, 3, 120)
    assert detector.get_layer("conv_3").kernel.shape == (5, 4, 16, 120)  # stride 4
    assert detector.output_shape == (None, 2, 3, 7)
    for arch in ("lenet_bn", "wide", "deep"):
        assert localization_net("localization", arch).output_shape == (None, 15)
        assert localization_net("detection", arch).output_shape == (None, 2, 3, 7)


def test_decoding_puts_boxes_in_pixels_of_their_cells():
    from kcourse.tracks.localization import track

    out = np.zeros((1, 2, 3, 7))
    out[0, 1, 2] = [3.0, 0.5, 0.25, 1.0, 0.5, -1.0, 2.0]  # cell (1, 2), class 1
    decoded = track.decode(out, "detection")
    cx, cy, w, h = (2 + 0.5) * CELL[1], (1 + 0.25) * CELL[0], CELL[1], 0.5 * CELL[0]
    np.testing.assert_allclose(decoded["boxes"][0, 5], [cx - w / 2, cy - h / 2, cx + w / 2,
                                                        cy + h / 2])
    assert decoded["detected"][0].tolist() == [False] * 5 + [True]
    assert decoded["class_id"][0, 5] == 1
    loc = track.decode(np.array([[0.0, 0.5, 0.5, 0.2, 0.25] + [0.0] * 10]), "localization")
    np.testing.assert_allclose(loc["boxes"][0], [24, 18, 36, 30])
    assert not loc["detected"][0]  # confidence exactly 0.5: not above the threshold
    # labels drawn where the label's box is
    labels = np.zeros((1, 2, 3, 6))
    labels[0, 0, 1] = [1, 0.5, 0.5, 0.5, 0.5, 0]
    assert track.true_boxes(labels, ["0", "1"], "detection") == [[(25.0, 6.0, 35.0, 18.0,
                                                                   "0")]]


# ----------------------------------------------------------------------------- the search

def test_quick_architecture_search_scores_trials_and_tests_the_best_once(canvas_env,
                                                                          tmp_path):
    from tuning.search import run_search, search_summary

    out = str(tmp_path / "search")
    results = run_search("inf265-localization-search", out=out,
                         data_dir=canvas_env["manual"], quick=True, verbose=0,
                         overrides={"limit": 180})
    trials = results["trials"]
    assert len(trials) == 2 and set(results["space"]) == {"arch", "eta", "schedule",
                                                          "box_weight"}
    assert all(t["arch"] in ("lenet", "lenet_bn") and 0.003 <= t["eta"] <= 0.1
               for t in trials)
    assert results["best"]["val_score"] == max(t["val_score"] for t in trials)
    # the model measured at the end is the one the best score belongs to
    assert results["best_model_val_score"] == pytest.approx(results["best"]["val_score"],
                                                            abs=1e-6)
    assert set(results["best_test"]) >= {"score", "iou", "accuracy"}
    assert os.path.exists(os.path.join(out, "figures", "search.png"))
    assert "<- best" in search_summary(results, out)
