"""Serving speed: an exported classifier (SavedModel, and ONNX) vs the Keras model.

One process exports a run's classifier (`kcourse.export`, into a temporary directory),
loads it back with `tf.saved_model.load` as a server would, and times, on CIFAR-10
test images (random pixels when the data is absent):

  savedmodel     serving_default on raw uint8 images (standardisation in the graph)
  keras predict  model.predict on the standardised vectors, as a Keras user serves
  keras call     model(x, training=False) on the same vectors (no predict loop)
  onnx           onnxruntime on the converted serving_default (if tf2onnx is installed)

It also classifies all 10,000 raw test images with the SavedModel and the ONNX file and
prints their accuracy beside the run's own test accuracy.

Latency: `--calls` single-image requests, one after another, after a warm-up of 20;
p50 and p99 in milliseconds. Throughput: `--batches` requests of 256 images; images
per second. The Keras ways get their inputs already standardised, so they do less
work than the SavedModel.

Usage: python benchmarks/bench_serving.py RUN_DIR [--row N] [--calls 500]
                                                  [--batches 40] [--json PATH]
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from kcourse import load_model
from kcourse.serving import export, run_row


def cifar_test_images(data_dir):
    """The 10,000 CIFAR-10 test images (uint8) and labels; random pixels and no labels
    if the data is absent."""
    from kcourse.data import cifar10_builder

    try:
        ds = cifar10_builder(data_dir).as_dataset(split="test_batch", as_supervised=True,
                                                  shuffle_files=False)
        images, labels = next(iter(ds.batch(10000).as_numpy_iterator()))
        return images, labels, "CIFAR-10 test images"
    except Exception as error:  # noqa: BLE001 (any reason: say it, use random pixels)
        print(f"No CIFAR-10 ({error.__class__.__name__}); random pixels instead.")
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (2560, 32, 32, 3), np.uint8), None, "random"


def timings(fn, inputs, calls, warmup=20):
    """Seconds of each call of `fn(inputs[i % len])`, after `warmup` untimed calls."""
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    seconds = []
    for i in range(calls):
        start = time.perf_counter()
        fn(inputs[i % len(inputs)])
        seconds.append(time.perf_counter() - start)
    return np.array(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--row", type=int)
    parser.add_argument("--data-dir", default=os.environ.get("KCOURSE_DATA_DIR"))
    parser.add_argument("--calls", type=int, default=500, help="batch-1 requests timed")
    parser.add_argument("--batches", type=int, default=40, help="batch-256 requests timed")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    info, row_dir = run_row(args.run_dir, args.row)
    model = load_model(os.path.join(row_dir, "model.keras"))
    stats = np.load(os.path.join(row_dir, "preprocessing.npz"))
    all_images, labels, source = cifar_test_images(args.data_dir)
    images = all_images[:2560]
    features = ((images.reshape(len(images), -1).astype(np.float32) / 255.0 - stats["mean"])
                / stats["std"]).astype(np.float32)
    out = tempfile.mkdtemp(prefix="kcourse-bench-serving-")
    served = tf.saved_model.load(export(args.run_dir, out, row=args.row)) \
        .signatures["serving_default"]
    ways = {
        "savedmodel": (lambda x: served(images=tf.constant(x)), images),
        "keras predict": (lambda x: model.predict(x, verbose=0), features),
        "keras call": (lambda x: model(x, training=False), features),
    }
    class_ids = {"savedmodel": lambda x: served(images=tf.constant(x))["class_id"].numpy()}
    try:
        import onnxruntime

        session = onnxruntime.InferenceSession(
            os.path.join(export(args.run_dir, out, row=args.row, format="onnx"),
                         "model.onnx"), providers=["CPUExecutionProvider"])
        ways["onnx"] = (lambda x: session.run(None, {"images": x}), images)
        class_ids["onnx"] = lambda x: session.run(["class_id"], {"images": x})[0]
    except Exception as error:  # noqa: BLE001
        print(f"ONNX skipped: {error}")

    results = {"run_dir": args.run_dir, "row": info["tag"], "inputs": source,
               "threads": os.cpu_count(), "ways": {}}
    print(f"{info['experiment']} row {info['tag']}, {source}, {os.cpu_count()} CPUs")
    print(f"{'way':14s} {'p50 ms':>8s} {'p99 ms':>8s} {'batch-256 images/s':>20s}")
    for name, (fn, inputs) in ways.items():
        single = timings(fn, [inputs[i:i + 1] for i in range(len(inputs))], args.calls)
        batched = timings(fn, [inputs[i:i + 256] for i in range(0, len(inputs), 256)],
                          args.batches, warmup=3)
        row = {"p50_ms": 1e3 * float(np.percentile(single, 50)),
               "p99_ms": 1e3 * float(np.percentile(single, 99)),
               "images_per_second": 256 / float(np.median(batched))}
        results["ways"][name] = row
        print(f"{name:14s} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} "
              f"{row['images_per_second']:20,.0f}")
    if labels is not None:  # the exports classify the raw test set as the run did
        print(f"test accuracy of the run: {info['test_accuracy']:.4f}")
        for name, predict in class_ids.items():
            ids = np.concatenate([predict(all_images[i:i + 2000])
                                  for i in range(0, len(all_images), 2000)])
            results[f"{name}_test_accuracy"] = float((ids == labels).mean())
            print(f"test accuracy served by {name} on raw images: "
                  f"{results[f'{name}_test_accuracy']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
