"""Serve an exported model the way a server would: TensorFlow (and onnxruntime), no kcourse.

    python serve_without_kcourse.py classify SAVED_MODEL IMAGES.npy OUT.npz [MODEL.onnx]
    python serve_without_kcourse.py generate SAVED_MODEL CALLS.json OUT.json
    python serve_without_kcourse.py names SAVED_MODEL NAMES.json OUT.npz
    python serve_without_kcourse.py words SAVED_MODEL REQUESTS.json OUT.json

The tests run it in a separate process and compare its answers with kcourse's own.
"""

import json
import sys

sys.modules["kcourse"] = None  # any `import kcourse` now fails

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def classify(saved_model, images_path, out_path, onnx_path=None):
    images = np.load(images_path)
    served = tf.saved_model.load(saved_model).signatures["serving_default"]
    outputs = {k: v.numpy() for k, v in served(images=tf.constant(images)).items()}
    if onnx_path:
        import onnxruntime

        session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        for name, value in zip(names, session.run(None, {"images": images})):
            outputs["onnx_" + name] = value
    np.savez(out_path, **{k: v.astype(str) if v.dtype == object else v  # names: bytes
                          for k, v in outputs.items()})


def generate(saved_model, calls_path, out_path):
    served = tf.saved_model.load(saved_model).signatures["generate"]
    with open(calls_path, encoding="utf-8") as f:
        calls = json.load(f)
    texts = [served(prompt=tf.constant(c["prompt"]), length=tf.constant(c["length"]),
                    temperature=tf.constant(c["temperature"], tf.float32),
                    seed=tf.constant(c["seed"], tf.int64))["text"].numpy().decode("utf-8")
             for c in calls]
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(texts, f)


def names(saved_model, names_path, out_path):
    with open(names_path, encoding="utf-8") as f:
        given = json.load(f)
    served = tf.saved_model.load(saved_model).signatures["serving_default"]
    outputs = {k: v.numpy() for k, v in served(names=tf.constant(given)).items()}
    np.savez(out_path, **{k: v.astype(str) if v.dtype == object else v
                          for k, v in outputs.items()})


def words(saved_model, requests_path, out_path):
    """REQUESTS.json: {"contexts": [[word, ...], ...], "beams": [{"prompt", "width",
    "length"}, ...]}: the served words of the contexts, and generate_beam's answers."""
    with open(requests_path, encoding="utf-8") as f:
        requests = json.load(f)
    loaded = tf.saved_model.load(saved_model)
    served = loaded.signatures["serving_default"](contexts=tf.constant(requests["contexts"]))
    answer = {"words": served["words"].numpy().astype(str).tolist(),
              "word_probabilities": served["word_probabilities"].numpy().tolist(),
              "beams": []}
    for call in requests.get("beams", []):
        out = loaded.signatures["generate_beam"](
            prompt=tf.constant(call["prompt"]), width=tf.constant(call["width"]),
            length=tf.constant(call["length"]))
        answer["beams"].append({"texts": out["texts"].numpy().astype(str).tolist(),
                                "scores": out["scores"].numpy().tolist(),
                                "ids": out["ids"].numpy().tolist()})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(answer, f)


if __name__ == "__main__":
    {"classify": classify, "generate": generate, "names": names, "words": words}[sys.argv[1]](*sys.argv[2:])
    assert sys.modules["kcourse"] is None and not any(
        name.startswith("kcourse.") for name in sys.modules)
