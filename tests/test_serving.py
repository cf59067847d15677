"""Export for serving: SavedModels that serve without kcourse, ONNX, safe `.keras` files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.data import CLASS_NAMES, cifar10_builder, load_cifar10
from kcourse.data.text import Vocabulary
from kcourse.errors import SettingError
from kcourse.layers import VanillaRNN
from kcourse.optimizers import AdaGrad
from kcourse.runs import run_experiment, run_row
from kcourse.serving import export
from kcourse.tracks.char_rnn.generation import MAX_LENGTH, generate
from kcourse.tracks.char_rnn.model import CharModel
from kcourse.tracks.char_rnn.track import text_archive
from kcourse.tracks.cifar_mlp.models import mlp

HERE = Path(__file__).resolve().parent
N_IMAGES = 500


def serve(*args):
    """Run serve_without_kcourse.py in a fresh process."""
    result = subprocess.run([sys.executable, str(HERE / "serve_without_kcourse.py"), *args],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]


def kcourse_cli(*args):
    return subprocess.run([sys.executable, "-m", "kcourse", *args], capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A quick a3-3layer run on real CIFAR-10 (row 1 has batch norm), exported as a
    SavedModel and as ONNX by the command line, and the first test images."""
    from conftest import shared_data_dir

    data_dir = shared_data_dir()
    if data_dir is None:
        pytest.skip("real CIFAR-10 not found: set KCOURSE_DATA_DIR or put shared/data "
                    "beside the repository")
    root = tmp_path_factory.mktemp("serving")
    run = root / "run"
    run_experiment("a3-3layer", out=str(run), data_dir=data_dir, quick=True, verbose=0)
    for fmt in ("saved_model", "onnx"):
        result = kcourse_cli("export", str(run), str(root / "export"), "--row", "1",
                             "--format", fmt)
        assert result.returncode == 0, result.stderr[-3000:]
    images, labels = next(iter(cifar10_builder(data_dir).as_dataset(
        split=f"test_batch[:{N_IMAGES}]", as_supervised=True, shuffle_files=False)
        .batch(N_IMAGES).as_numpy_iterator()))
    info, row_dir = run_row(str(run), 1)
    features, _ = load_cifar10(info["data"], data_dir, limit=info.get("limit", 1000)) \
        .numpy("test")
    model = keras.saving.load_model(os.path.join(row_dir, "model.keras"))
    return {"root": root, "run": run, "row_dir": row_dir, "images": images,
            "labels": labels, "features": features[:N_IMAGES], "model": model,
            "saved_model": root / "export" / "a3-3layer" / "1",
            "onnx": root / "export" / "a3-3layer-onnx" / "1" / "model.onnx"}


def test_classifier_serves_without_kcourse_like_the_keras_model(classifier):
    """serving_default on raw uint8 test images, in a process that cannot import
    kcourse, and onnxruntime on the ONNX file, agree with kcourse's own pipeline
    (standardised vectors) and model."""
    root = classifier["root"]
    np.save(root / "images.npy", classifier["images"])
    serve("classify", str(classifier["saved_model"]), str(root / "images.npy"),
          str(root / "served.npz"), str(classifier["onnx"]))
    served = np.load(root / "served.npz")
    want = tf.nn.softmax(classifier["model"](classifier["features"], training=False)).numpy()
    assert want.shape == (N_IMAGES, 10)
    for prefix in ("", "onnx_"):
        np.testing.assert_allclose(served[prefix + "probabilities"], want, atol=1e-5)
        np.testing.assert_array_equal(served[prefix + "class_id"], want.argmax(1))
        assert list(served[prefix + "class_name"]) == [CLASS_NAMES[i] for i in want.argmax(1)]
    accuracy = (want.argmax(1) == classifier["labels"]).mean()
    assert accuracy > 0.2  # trained on 1,000 images: well above chance, and the labels align


def test_saved_model_cli_shows_and_runs_the_documented_signatures(classifier, tmp_path):
    path = str(classifier["saved_model"])
    shown = subprocess.run(["saved_model_cli", "show", "--dir", path, "--all"],
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    text = shown.stdout
    for signature, inputs in (("serving_default", "images"), ("features", "features")):
        block = text.split(f"signature_def['{signature}']")[1].split("signature_def[")[0]
        assert f"inputs['{inputs}']" in block
        for output in ("probabilities", "class_id", "class_name"):
            assert f"outputs['{output}']" in block
    assert "dtype: DT_UINT8" in text and "shape: (-1, 32, 32, 3)" in text
    np.save(tmp_path / "images.npy", classifier["images"][:20])
    ran = subprocess.run(["saved_model_cli", "run", "--dir", path, "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs",
                          f"images={tmp_path / 'images.npy'}", "--outdir", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    want = classifier["model"](classifier["features"][:20], training=False).numpy().argmax(1)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "class_id.npy"), want)


def test_features_signature_matches_the_model(classifier):
    served = tf.saved_model.load(str(classifier["saved_model"])).signatures["features"]
    x = classifier["features"][:50]
    got = served(features=tf.constant(x))["probabilities"].numpy()
    want = tf.nn.softmax(classifier["model"](x, training=False)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_signature_rejects_wrong_images(classifier):
    served = tf.saved_model.load(str(classifier["saved_model"])).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"uint8 \(batch, 32, 32, 3\)"):
        served(images=tf.zeros((2, 28, 28, 1), tf.uint8))  # MNIST-shaped
    for shape in ((32, 32, 3), (2, 32, 32, 3, 1), (3072,)):  # no batch axis, wrong ranks
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"uint8 \(batch, 32, 32, 3\).*got shape"):
            served(images=tf.zeros(shape, tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8"):
        served(images=tf.zeros((2, 32, 32, 3), tf.float32))  # not raw pixels
    features = tf.saved_model.load(str(classifier["saved_model"])).signatures["features"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"float32 \(batch, 3072\)"):
        features(features=tf.zeros((2, 100)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"float32 \(batch, 3072\)"):
        features(features=tf.zeros((3072,)))  # one vector without its batch axis
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite float32"):
        features(features=tf.fill((2, 3072), float("nan")))
    scaled = classifier["images"][:4].astype(np.float32) / 255.0  # NumPy casts it to 0s
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"not scaled to \[0, 1\]"):
        served(images=scaled)


def test_export_picks_rows_and_versions(classifier, tmp_path):
    run = str(classifier["run"])
    metrics = json.loads((classifier["run"] / "metrics.json").read_text())
    best = max(range(2), key=lambda i: metrics["rows"][i]["val_accuracy"])
    assert run_row(run)[0]["index"] == best
    first = export(run, str(tmp_path), name="m")
    second = export(run, str(tmp_path), row=0, name="m")
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    meta = json.loads(Path(second, "assets.extra", "kcourse_export.json").read_text())
    assert meta["row"] == 0 and meta["experiment"] == "a3-3layer"
    assert sorted(os.listdir(tmp_path / "m")) == ["1", "2"]  # no temporary left behind


@pytest.mark.parametrize("args, message", [
    (["export", "no/such/run", "out"], "holds no finished run"),
    (["export", "RUN", "OUT", "--row", "5"], "has rows 0 to 1, not 5"),
    (["export", "RUN", "OUT", "--version", "1"], "exists already"),
    (["export", "RUN", "OUT", "--version", "0"], "positive integer"),
])
def test_bad_export_arguments_are_clear(classifier, tmp_path, args, message):
    export(str(classifier["run"]), str(tmp_path), version=1)
    args = [str(classifier["run"]) if a == "RUN" else str(tmp_path) if a == "OUT" else a
            for a in args]
    result = kcourse_cli(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr


def _char_model(cell, vocab):
    model = CharModel(len(vocab), cell, 16, 1 if cell == "vanilla" else 2,
                      0 if cell == "vanilla" else 8, seed=0)
    model.build()
    rng = np.random.default_rng(0)
    for w in model.weights:  # peaked predictions, so that a wrong state shows in the text
        w.assign(rng.normal(0, 0.7, w.shape))
    return model


@pytest.mark.parametrize("cell", ["vanilla", "lstm"])
def test_generate_signature_handles_any_prompt_and_rejects_bad_lengths(tmp_path, cell):
    vocab = Vocabulary.from_text("First Citizen:\nBefore we proceed any further, hear me.")
    model = _char_model(cell, vocab)
    text_archive(model, vocab).write_out(str(tmp_path / "m"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "m"))
    assert set(served.signatures) == {"generate", "serving_default"}

    def run(prompt, length, temperature=1.0, seed=0):
        return served.signatures["generate"](
            prompt=tf.constant(prompt), length=tf.constant(length),
            temperature=tf.constant(temperature), seed=tf.constant(seed, tf.int64)
        )["text"].numpy().decode("utf-8")

    for prompt in ("First", "Ünknöwn €", "", "\xff"):  # known, unknown, empty chars
        text = run(prompt, 40, 0.8, 5)
        assert text == generate(model, vocab, prompt, 40, 0.8, seed=5)
        assert len(text) == 40 and set(text) <= set(vocab.chars)  # never out-of-vocabulary
    assert run("First", 30, 1.0, 1) != run("First", 30, 1.0, 2)
    assert run("", 25, 0.0, 9) == run("\n", 25, 0.0, 3)  # empty = newline; greedy ignores seed
    for bad in (0, -3, MAX_LENGTH + 1):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=f"length must be between 1 and {MAX_LENGTH}"):
            run("First", bad)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be"):
            run("First", 10, bad)


def test_every_component_round_trips_through_keras_files_in_safe_mode(tmp_path):
    """Linear, BatchNormalization, Dropout (in an mlp), AdaGrad with clipping and its
    accumulators, VanillaRNN. (Losses, schedules and CharModel: their own tests.)"""
    x = np.random.default_rng(0).normal(size=(6, 20)).astype("float32")
    net = mlp([16, 8], input_dim=20, batch_norm=True, dropout=0.2, lam=1e-3, seed=0)
    net.compile(optimizer=AdaGrad(0.05, rho=0.9, global_clipnorm=5.0),
                loss="categorical_crossentropy")
    net.fit(x, np.eye(10, dtype="float32")[np.arange(6)], epochs=2, verbose=0)
    rnn_in = keras.Input((None,), dtype="int32", name="ids")
    rnn = keras.Model(rnn_in, VanillaRNN(12, 9, embedding_dim=4, seed=0)(rnn_in)[0])
    ids = np.random.default_rng(1).integers(0, 12, (3, 7)).astype("int32")
    loaded = {}
    for name, model, inputs in (("net", net, x), ("rnn", rnn, ids)):
        model.save(tmp_path / f"{name}.keras")
        loaded[name] = keras.saving.load_model(tmp_path / f"{name}.keras", safe_mode=True)
        np.testing.assert_array_equal(loaded[name].predict(inputs, verbose=0),
                                      model.predict(inputs, verbose=0))
    assert isinstance(loaded["rnn"].layers[-1], VanillaRNN)
    optimizer = loaded["net"].optimizer
    assert isinstance(optimizer, AdaGrad)
    assert optimizer.get_config() == net.optimizer.get_config()
    for a, b in zip(optimizer.variables, net.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_char_run_exports_as_saved_model_but_not_onnx(tmp_path):
    vocab = Vocabulary.from_text("to be or not to be")
    row_dir = tmp_path / "run" / "rows" / "00"
    row_dir.mkdir(parents=True)
    _char_model("vanilla", vocab).save(row_dir / "model.keras")
    vocab.save(row_dir / "vocab.json")
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(
        {"experiment": "a4", "rows": [{"tag": "00", "val_loss_per_char": 2.0}]}))
    with pytest.raises(SettingError, match="a4 exports as saved_model, not onnx"):
        export(str(tmp_path / "run"), str(tmp_path / "out"), format="onnx")
    path = export(str(tmp_path / "run"), str(tmp_path / "out"))
    assert path == str(tmp_path / "out" / "a4" / "1")
    served = tf.saved_model.load(path).signatures["serving_default"]
    assert served.structured_outputs.keys() == {"text"}


def test_predict_reads_image_files_and_answers_as_the_served_model(classifier, tmp_path):
    from kcourse.serving import predict

    paths = []
    for i, image in enumerate(classifier["images"][:3]):
        path = tmp_path / f"image{i}.png"
        tf.io.write_file(str(path), tf.io.encode_png(image))
        paths.append(str(path))
    answers = predict(str(classifier["run"]), paths, row=1, top=2)
    want = tf.nn.softmax(classifier["model"](classifier["features"][:3], training=False)).numpy()
    for (given, classes), p in zip(answers, want):
        best = p.argsort()[::-1][:2]
        assert [c for c, _ in classes] == [CLASS_NAMES[i] for i in best]
        np.testing.assert_allclose([q for _, q in classes], p[best], atol=1e-5)
    big = tmp_path / "big.png"
    tf.io.write_file(str(big), tf.io.encode_png(np.zeros((40, 30, 3), np.uint8)))
    with pytest.raises(SettingError, match="30x40 pixels; the model takes 32x32"):
        predict(str(classifier["run"]), [str(big)])
    with pytest.raises(SettingError, match="not a readable image"):
        predict(str(classifier["run"]), [str(tmp_path / "missing.png")])


def test_predict_refuses_a_track_that_is_not_a_classifier(tmp_path):
    from kcourse.serving import predict

    vocab = Vocabulary.from_text("to be or not to be")
    row_dir = tmp_path / "run" / "rows" / "00"
    row_dir.mkdir(parents=True)
    _char_model("vanilla", vocab).save(row_dir / "model.keras")
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(
        {"experiment": "a4", "rows": [{"tag": "00", "val_loss_per_char": 2.0}]}))
    with pytest.raises(SettingError, match="not a classifier that `kcourse predict` serves"):
        predict(str(tmp_path / "run"), ["ROMEO"])


def test_the_readme_onnx_example_runs_as_written(real_data_dir, tmp_path):
    """The README's ONNX example: its shell commands (a quick run instead of the full
    one) and its Python block, as written, in a fresh directory."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- onnx-example:", 1)[1].split("```python\n", 1)[1]
    block = block.split("```", 1)[0]
    run = kcourse_cli("run", "a1", "--quick", "--set", "epochs=10", "--data-dir",
                      real_data_dir, "--out", str(tmp_path / "runs" / "a1-10"))
    assert run.returncode == 0, run.stderr[-2000:]
    export = kcourse_cli("export", str(tmp_path / "runs" / "a1-10"),
                         str(tmp_path / "export"), "--format", "onnx")
    assert export.returncode == 0, export.stderr[-2000:]
    result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300,
                            env={**os.environ, "KCOURSE_DATA_DIR": real_data_dir,
                                 "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("[") == 3  # class names, class ids, labels
