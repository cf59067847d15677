"""The cifar_convnet track end to end on tiny generated CIFAR-10 and MNIST files: quick
runs of every experiment and their files, the reported accuracies recomputed from the
saved models, transfer (the frozen body stays, the source is not changed, a run as the
source), the exported SavedModel against the Keras model (in process and in a process
without kcourse), `kcourse predict`, the model builders and the class selection."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kcourse.runs import run_experiment
from kcourse.serving import export

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SERVE = os.path.join(REPO, "tests", "serve_without_kcourse.py")
EXPERIMENTS = ("cnn-tutorial", "cnn-fast", "transfer-cifar", "transfer-mnist")


@pytest.fixture(scope="module")
def data_env(tmp_path_factory):
    from conftest import tfds_data_dir, write_fake_cifar, write_random_mnist

    root = tmp_path_factory.mktemp("convnet")
    write_fake_cifar(root / "manual", per_batch=60)
    write_random_mnist(root / "manual", 300, 80, labels="cycle")  # every digit
    with tfds_data_dir(root / "tfds"):
        yield {"manual": str(root / "manual"), "root": root}


@pytest.fixture(scope="module")
def quick_runs(data_env):
    runs = {}
    for name in EXPERIMENTS:
        out = str(data_env["root"] / "runs" / name)
        runs[name] = out, run_experiment(name, out=out, data_dir=data_env["manual"],
                                         quick=True, verbose=0)
    return runs


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_run_trains_every_row_and_writes_its_files(quick_runs, name):
    out, metrics = quick_runs[name]
    rows = metrics["rows"]
    assert len(rows) == (3 if name.startswith("transfer") else 1)
    timing = json.load(open(os.path.join(out, "timing.json")))
    for row in rows:
        for key in ("val_accuracy", "test_accuracy"):
            assert 0 <= row[key] <= 1
        assert row["updates_done"] > 0 and not row["diverged"]
        assert row["updates"] == 0 or name.startswith("transfer")  # the setting, kept
        assert timing[row["tag"]]["train_seconds"] > 0
        row_dir = os.path.join(out, "rows", row["tag"])
        for file in ("model.keras", "preprocessing.npz", "classes.json", "result.json"):
            assert os.path.exists(os.path.join(row_dir, file)), file
        for suffix in ("loss", "accuracy", "confusion"):
            assert os.path.getsize(os.path.join(out, "figures",
                                                f"{row['tag']}_{suffix}.png")) > 1000
    if name.startswith("transfer"):
        assert [r["mode"] for r in rows] == ["scratch", "frozen", "finetune"]
        assert os.path.exists(os.path.join(out, "source", "model.keras"))
        assert os.path.getsize(os.path.join(out, "figures", "transfer.png")) > 1000
        names = json.load(open(os.path.join(out, "rows", rows[0]["tag"], "classes.json")))
        expected = (["dog", "frog", "horse", "ship", "truck"] if name == "transfer-cifar"
                    else ["5", "6", "7", "8", "9"])
        assert names["class_names"] == expected
    else:
        assert not os.path.exists(os.path.join(out, "source"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_reported_accuracies_are_those_of_the_saved_model(quick_runs, name, data_env):
    from kcourse.tracks.cifar_convnet import track

    out, metrics = quick_runs[name]
    for row in metrics["rows"]:
        model, classes = track.load_row(os.path.join(out, "rows", row["tag"]))
        data = track.data_for(row, data_env["manual"])
        splits = track.select(data, track.CLASS_SETS[row["classes"]], row["fraction"])
        assert row["train_images"] == len(splits["train"][1])
        for split, prefix in (("validation", "val_"), ("test", "test_")):
            x, y = splits[split]
            p = model.predict(x, verbose=0)
            if row["tta"]:
                p = (softmax(p) + softmax(model.predict(x[:, :, ::-1], verbose=0))) / 2
            assert np.isclose((p.argmax(1) == y).mean(), row[prefix + "accuracy"])


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_frozen_body_keeps_the_source_weights_finetune_changes_them(quick_runs):
    import keras

    from kcourse.tracks.cifar_convnet import track
    from kcourse.tracks.cifar_convnet.model import body_of

    out, metrics = quick_runs["transfer-cifar"]
    source = keras.saving.load_model(os.path.join(out, "source", "model.keras"))
    source_body = body_of(source).get_weights()
    by_mode = {}
    for row in metrics["rows"]:
        model, _ = track.load_row(os.path.join(out, "rows", row["tag"]))
        by_mode[row["mode"]] = model
    frozen = by_mode["frozen"].get_layer("body").get_weights()
    finetuned = by_mode["finetune"].get_layer("body").get_weights()
    assert len(frozen) == len(source_body)
    for a, b in zip(frozen, source_body):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(finetuned, source_body))
    # the head is new: 5 classes
    assert by_mode["frozen"].output_shape == (None, 5)


def test_transfer_from_a_run_directory_and_bad_sources(quick_runs, data_env, tmp_path):
    from kcourse.errors import SettingError

    source_run, _ = quick_runs["cnn-fast"]  # trained on all 10 classes
    out = str(tmp_path / "from_run")
    metrics = run_experiment("transfer-cifar", out=out, data_dir=data_env["manual"],
                             quick=True, overrides={"source": source_run,
                                                    "classes": "5-9"}, verbose=0)
    rows = metrics["rows"]
    assert [r["mode"] for r in rows] == ["scratch", "frozen", "finetune"]
    assert rows[1]["source_dir"] == os.path.abspath(os.path.join(source_run, "rows", "00"))
    assert rows[1]["source"] == source_run  # the setting, as given
    assert not os.path.exists(os.path.join(out, "source"))
    transferred = os.path.join(quick_runs["transfer-cifar"][0], "rows", "02_finetune_fraction0.1")
    with pytest.raises(SettingError, match="itself a transferred network"):
        run_experiment("transfer-cifar", out=str(tmp_path / "twice"),
                       data_dir=data_env["manual"], quick=True,
                       overrides={"source": transferred}, verbose=0)
    with pytest.raises(SettingError, match="Adam's steps ignore a scaled gradient"):
        run_experiment("transfer-cifar", out=str(tmp_path / "adam"),
                       data_dir=data_env["manual"], quick=True,
                       overrides={"optimizer": "adam"}, verbose=0)
    with pytest.raises(SettingError, match="same kind of images"):  # CIFAR -> MNIST
        run_experiment("transfer-mnist", out=str(tmp_path / "mnist"),
                       data_dir=data_env["manual"], quick=True,
                       overrides={"source": source_run}, verbose=0)
    with pytest.raises(SettingError, match="nor a finished run"):
        run_experiment("transfer-cifar", out=str(tmp_path / "bad"),
                       data_dir=data_env["manual"], quick=True,
                       overrides={"source": str(tmp_path)}, verbose=0)


@pytest.mark.parametrize("name", ["cnn-fast", "transfer-mnist"])
def test_export_serves_raw_images_as_the_model_predicts(quick_runs, name, data_env,
                                                        tmp_path):
    import tensorflow as tf

    from kcourse.tracks.cifar_convnet import track

    out, metrics = quick_runs[name]
    path = export(out, str(tmp_path / "export"))
    best = max(metrics["rows"], key=lambda r: r["val_accuracy"])
    model, classes = track.load_row(os.path.join(out, "rows", best["tag"]))
    shape = tuple(classes["image_shape"])
    images = np.random.default_rng(0).integers(0, 256, (9, *shape), dtype=np.uint8)
    stats = np.load(os.path.join(out, "rows", best["tag"], "preprocessing.npz"))
    x = ((images / 255.0 - stats["mean"]) / stats["std"]).astype(np.float32)
    expected = softmax(model.predict(x, verbose=0))
    if classes["tta"]:
        expected = (expected + softmax(model.predict(x[:, :, ::-1], verbose=0))) / 2
    loaded = tf.saved_model.load(path)
    served = {k: v.numpy() for k, v in
              loaded.signatures["serving_default"](images=tf.constant(images)).items()}
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert [n.decode() for n in served["class_name"]] == [
        classes["class_names"][i] for i in expected.argmax(1)]
    np.save(tmp_path / "images.npy", images)
    subprocess.run([sys.executable, SERVE, "classify", path, str(tmp_path / "images.npy"),
                    str(tmp_path / "served.npz")], check=True, timeout=300,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    apart = np.load(tmp_path / "served.npz")
    np.testing.assert_allclose(apart["probabilities"], served["probabilities"], atol=1e-6)
    text = "32, 32, 3" if shape == (32, 32, 3) else "28, 28, 1"
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"uint8 \\(batch, {text}\\)"):
        loaded.signatures["serving_default"](images=tf.zeros((2, 30, 30, shape[-1]), tf.uint8))


def test_kcourse_predict_prints_the_classes_of_image_files(quick_runs, tmp_path):
    import tensorflow as tf

    from kcourse.serving import predict

    out, _ = quick_runs["transfer-mnist"]
    digits = np.random.default_rng(2).integers(0, 256, (2, 28, 28, 1), np.uint8)
    paths = [str(tmp_path / f"digit{i}.png") for i in range(2)]
    for digit, path in zip(digits, paths):
        tf.io.write_file(path, tf.io.encode_png(digit))
    found = predict(out, paths)
    assert [given for given, _ in found] == paths
    result = subprocess.run([sys.executable, "-m", "kcourse", "predict", out, *paths],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for given in paths:
        assert given in result.stdout
    # a CIFAR-sized image is refused by an MNIST row, with the size it wants
    tf.io.write_file(str(tmp_path / "rgb.png"), tf.io.encode_png(
        np.zeros((32, 32, 3), np.uint8)))
    result = subprocess.run([sys.executable, "-m", "kcourse", "predict", out,
                             str(tmp_path / "rgb.png")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0 and "28x28" in result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- builders

def test_model_builders():
    from kcourse.tracks.cifar_convnet.model import body_of, convnet, fast_net, tutorial_net

    tutorial = tutorial_net(seed=0)
    # conv 3->32, conv 32->64, conv 64->64, dense 1024->64, dense 64->10 (the tutorial's)
    assert tutorial.count_params() == (896 + 18496 + 36928 + 65600 + 650)
    fast = fast_net(width=32, seed=0)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in fast.layers}
    assert shapes["prep_relu"] == (32, 32, 32)
    assert shapes["stage1_pool"] == (16, 16, 64) and shapes["stage2_pool"] == (8, 8, 128)
    assert shapes["stage3_pool"] == (4, 4, 256) and shapes["features"] == (256,)
    assert fast.output_shape == (None, 10)
    assert body_of(fast).output_shape == (None, 256)
    assert convnet("fast", (28, 28, 1), 5, width=8).output_shape == (None, 5)
    a, b = fast_net(width=8, seed=3), fast_net(width=8, seed=3)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="Unknown arch"):
        convnet("vgg")


def test_select_takes_the_first_fraction_of_each_class():
    from kcourse.tracks.cifar_convnet.track import ImageSplits, select

    y = np.array([0, 5, 6, 5, 6, 5, 1, 6, 5, 9])
    x = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 2, 1))
    data = ImageSplits("t", {"train": x, "test": x}, {"train": y, "test": y},
                       np.zeros((2, 2, 1)), np.ones((2, 2, 1)), tuple("abcdefghij"))
    out = select(data, (5, 6, 9), fraction=0.5)
    xs, ys = out["train"]
    # class 5: 4 images -> first 2 (indices 1, 3); 6: 3 -> 2 (2, 4); 9: 1 -> 1 (9)
    assert xs[:, 0, 0, 0].tolist() == [1, 2, 3, 4, 9]
    assert ys.tolist() == [0, 1, 0, 1, 2]
    assert out["test"][1].tolist() == [0, 1, 0, 1, 0, 1, 0, 2]  # every test image of them


def test_select_rounds_the_fraction_before_its_ceiling():
    from kcourse.tracks.cifar_convnet.track import ImageSplits, select

    y = np.zeros(100, np.int64)
    x = np.zeros((100, 1, 1, 1), np.float32)
    data = ImageSplits("t", {"train": x}, {"train": y}, np.zeros((1, 1, 1)),
                       np.ones((1, 1, 1)), ("a",))
    assert len(select(data, (0,), fraction=0.07)["train"][1]) == 7  # not 8
    assert len(select(data, (0,), fraction=0.071)["train"][1]) == 8


def test_a_fine_tuned_row_serves_images_and_features(quick_runs, tmp_path):
    """The fine-tuned row (a nested body behind `GradientScale`) exported: both
    signatures answer what the Keras model does (features: the standardised images,
    flattened HWC)."""
    import tensorflow as tf

    from kcourse.tracks.cifar_convnet import track

    out, metrics = quick_runs["transfer-cifar"]
    index = [r["mode"] for r in metrics["rows"]].index("finetune")
    path = export(out, str(tmp_path / "export"), row=index)
    model, classes = track.load_row(os.path.join(out, "rows", metrics["rows"][index]["tag"]))
    assert any(layer.name == "body_gradient_scale" for layer in model.layers)
    stats = np.load(os.path.join(out, "rows", metrics["rows"][index]["tag"],
                                 "preprocessing.npz"))
    images = np.random.default_rng(3).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    x = ((images / 255.0 - stats["mean"]) / stats["std"]).astype(np.float32)
    expected = (softmax(model.predict(x, verbose=0))
                + softmax(model.predict(x[:, :, ::-1], verbose=0))) / 2
    loaded = tf.saved_model.load(path)
    by_images = loaded.signatures["serving_default"](images=tf.constant(images))
    by_features = loaded.signatures["features"](features=tf.constant(x.reshape(5, -1)))
    np.testing.assert_allclose(by_images["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(by_features["probabilities"].numpy(), expected, atol=1e-5)
