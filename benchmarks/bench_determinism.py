"""What TensorFlow's op determinism costs the kcourse trainer, and whether it changes a run.

Trains the 3-layer BN net [50, 50] (a3-3layer's) on the search split for `--epochs` epochs
twice in fresh processes, with and without `tf.config.experimental.enable_op_determinism()`,
and prints images/s of each and whether the final weights are bit-identical.

    python benchmarks/bench_determinism.py --data-dir ../shared/data [--epochs 2] [--json F]
"""

import argparse
import json
import subprocess
import sys

CHILD = r"""
import hashlib, sys, time
import keras, numpy as np, tensorflow as tf
if sys.argv[1] == "1":
    tf.config.experimental.enable_op_determinism()
from kcourse.data import InMemoryBatches, batched, load_cifar10
from kcourse.losses import SoftmaxCrossEntropy
from kcourse.tracks.cifar_mlp.models import mlp
from kcourse.training import fit
splits = load_cifar10("search", data_dir=sys.argv[2])
keras.utils.set_random_seed(0)
model = mlp([50, 50], batch_norm=True, lam=0.005, seed=0)
train = InMemoryBatches(splits.train, 100, seed=0)
fit(model, SoftmaxCrossEntropy(), train, optimizer=keras.optimizers.SGD(0.01), epochs=1,
    train_eval=False, verbose=0)  # warm-up: traces
start = time.perf_counter()
fit(model, SoftmaxCrossEntropy(), train, optimizer=keras.optimizers.SGD(0.01),
    epochs=int(sys.argv[3]), train_eval=False, verbose=0)
seconds = time.perf_counter() - start
digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
print(len(splits.train) * int(sys.argv[3]) / seconds, digest)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    results = {}
    for flag, name in (("0", "default"), ("1", "op_determinism")):
        out = subprocess.run([sys.executable, "-c", CHILD, flag, args.data_dir,
                              str(args.epochs)], capture_output=True, text=True, check=True)
        speed, digest = out.stdout.split()[-2:]
        results[name] = {"images_per_second": float(speed), "weights_sha256": digest}
        print(f"{name:15s} {float(speed):10,.0f} images/s  weights {digest[:16]}")
    same = results["default"]["weights_sha256"] == results["op_determinism"]["weights_sha256"]
    ratio = results["op_determinism"]["images_per_second"] / results["default"]["images_per_second"]
    print(f"op determinism: {ratio:.2f}x the speed; weights {'identical' if same else 'DIFFER'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**results, "ratio": ratio, "identical": same}, f, indent=2)


if __name__ == "__main__":
    main()
