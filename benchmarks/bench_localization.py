"""Training throughput on the MNIST canvases of INF265 project 2: the kcourse trainer vs
Keras' model.fit, same model, loss and optimizer, in one process.

  kcourse    kcourse.training.fit on a kcourse.data.InMemoryBatches (batches gathered
             inside the compiled step, 100 updates per call), no training-set
             evaluation (train_eval=False)
  model.fit  model.compile(SGD, LocalizationLoss) + model.fit on the same shuffled
             batches through tf.data (kcourse.data.batched), steps_per_execution 1
             (Keras' default) and 10

Images/second of one epoch in steady state: the median over the timed epochs, after one
warm-up epoch (tracing) that is not timed. The model is the row's network
(`kcourse.tracks.localization.model.localization_net`), SGD 0.01 with momentum 0.9 (the
course's), batch 256.

Usage: python benchmarks/bench_localization.py [--task localization|detection]
           [--arch lenet|lenet_bn|wide|deep] [--images N] [--epochs E] [--threads T]
           [--batch-size B] [--data-dir PATH] [--json FILE]
"""

import argparse
import json
import os
import sys

import keras
import numpy as np

from bench_train import EpochTimer  # the same per-epoch wall clock as bench_train.py


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("localization", "detection"),
                        default="localization")
    parser.add_argument("--arch", choices=("lenet", "lenet_bn", "wide", "deep"),
                        default="lenet")
    parser.add_argument("--images", type=int, default=10000,
                        help="training canvases (the first N; default 10000)")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs timed after one warm-up epoch (default 3)")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow threads, process-wide (0: TensorFlow's default)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--data-dir", default=os.environ.get("KCOURSE_DATA_DIR"))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    from kcourse.training import set_threads

    set_threads(args.threads)  # before TensorFlow's first op

    import kcourse
    from kcourse.data import DataNotFoundError, InMemory, InMemoryBatches, batched
    from kcourse.data.mnist_canvas import load_mnist_canvases
    from kcourse.losses import LocalizationLoss
    from kcourse.tracks.localization.model import localization_net
    from kcourse.training import fit

    import tensorflow as tf

    kcourse.register_components()
    try:
        splits = load_mnist_canvases(args.task, data_dir=args.data_dir, limit=args.images,
                                     tfds_dir=os.environ.get("TFDS_DATA_DIR"))
    except DataNotFoundError as error:
        sys.exit(f"benchmark needs the MNIST files: {error}")
    x, y = splits.x["train"], splits.y["train"]
    n, epochs = len(y), args.epochs + 1
    data = InMemory(tf.constant(x), tf.constant(y))

    def build():
        keras.utils.set_random_seed(0)
        return localization_net(args.task, args.arch, seed=0)

    def sgd():
        return keras.optimizers.SGD(0.01, momentum=0.9)

    results = {}
    timer = EpochTimer()
    fit(build(), LocalizationLoss(), InMemoryBatches(data, args.batch_size, seed=0),
        optimizer=sgd(), epochs=epochs, train_eval=False, evaluate_start=False,
        callbacks=[timer], verbose=0)
    results["kcourse"] = n / np.median(timer.times[1:])

    for spe in (1, 10):
        model = build()
        model.compile(optimizer=sgd(), loss=LocalizationLoss(), steps_per_execution=spe)
        timer = EpochTimer()
        model.fit(batched(data, args.batch_size, shuffle_seed=0), epochs=epochs,
                  callbacks=[timer], verbose=0)
        results[f"model.fit (steps_per_execution={spe})"] = n / np.median(timer.times[1:])

    base = results["kcourse"]
    print(f"{args.arch} ({args.task}), one epoch on {n} canvases, batch {args.batch_size} "
          f"(median of {args.epochs} epochs after a warm-up), TensorFlow threads: "
          f"{args.threads or 'default'}")
    print(f"{'method':40s} {'images/s':>10s} {'kcourse / method':>18s}")
    for name, speed in results.items():
        print(f"{name:40s} {speed:10,.0f} {base / speed:18.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"task": args.task, "arch": args.arch, "images": n,
                       "batch_size": args.batch_size, "threads": args.threads,
                       "images_per_second": results}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
