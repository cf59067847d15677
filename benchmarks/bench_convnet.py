"""Fast ConvNet training throughput: kcourse vs model.fit (plain, XLA); conv time share.

One process trains the cifar_convnet track's `fast_net` (ResNet-9 layout, --width
channels in the first conv, seed 0) three ways on the same data and reports
images/second:

  kcourse          kcourse.training.fit (GradientTape updates inside tf.function, 100
                   per call) on a kcourse.data.InMemoryBatches: batches gathered in the
                   graph from one permutation per epoch
  model.fit        Keras' model.fit(x, y, batch_size, shuffle=True) with the same model
                   (a fresh one, same seed), loss and optimizer, jit_compile=False
  model.fit (XLA)  the same with jit_compile=True (skipped with --skip-jit; if XLA fails
                   on this CPU, its error is reported and the benchmark goes on)

Every way gets a fresh model and optimizer: the track's loss (categorical cross-entropy
on logits, label smoothing 0.2) and SGD (rate 0.05, Nesterov momentum 0.9, weight decay
5e-4). The data are --images random standardized 32x32x3 float32 images (NumPy, seed 0)
with random one-hot labels of 10 classes, no augmentation, so that only the loops
differ. Each way trains two epochs in one call and both are timed (by callbacks at the
epoch boundaries): epoch 1 is the cold one (tracing, graph optimization, XLA
compilation, model.fit's retrace for a smaller last batch), epoch 2 the steady state,
whose images/second are compared. The figure of merit is kcourse / the faster
model.fit (the target: at least 1.0x).

Where the time goes: for every Conv2D layer of the model, a tf.function computing the
convolution forward and its gradients with respect to its input (not for the first
layer: the images are not trained, so training does not compute it either) and its
kernel, on random tensors of the layer's shapes at batch --batch; the median of
--repeats calls. Their sum is set against a training step of the kcourse way (its
steady-state epoch time per --batch images): convolutions vs everything else (batch
norm, ReLU, pooling, the loss, the optimizer, the batch gathering). The convolutions'
FLOPs (2 * H_out * W_out * k * k * C_in * C_out per image forward; the two gradients
each as much again) give their achieved GFLOP/s, compared with this CPU's GEMM rate as
TensorFlow gets it: tf.matmul of two --gemm x --gemm float32 matrices in a
tf.function (2 n^3 FLOPs, median of --repeats).

TensorFlow runs on all the cores this process may use unless --threads says otherwise
(intra- and inter-op, set before TensorFlow's first op).

Usage: python benchmarks/bench_convnet.py [--images N | --steps N] [--batch N]
                                          [--width N] [--threads N] [--repeats N]
                                          [--gemm N] [--skip-jit] [--json PATH]
"""

import argparse
import json
import os
import time

import keras
import numpy as np

from bench_beam import median_seconds  # benchmarks/ is on sys.path when run as a script
from bench_train import EpochTimer

NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)


def random_data(n, seed=0):
    """`n` standardized random images (zero mean, unit variance) and one-hot labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *IMAGE_SHAPE), dtype=np.float32)
    y = np.eye(NUM_CLASSES, dtype=np.float32)[rng.integers(0, NUM_CLASSES, n)]
    return x, y


def build(width):
    from kcourse.tracks.cifar_convnet.model import fast_net

    return fast_net(input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, width=width, seed=0)


def loss_and_optimizer():
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    optimizer = keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True,
                                     weight_decay=5e-4)
    return loss, optimizer


def train_kcourse(x, y, args, timer):
    import tensorflow as tf

    from kcourse.data import InMemory, InMemoryBatches
    from kcourse.training import fit

    model = build(args.width)
    loss, optimizer = loss_and_optimizer()
    train = InMemoryBatches(InMemory(tf.constant(x), tf.constant(y)), args.batch, seed=0)
    history = fit(model, loss, train, optimizer=optimizer, epochs=2, train_eval=False,
                  evaluate_start=False, callbacks=[timer], verbose=0)
    return history.rows[-1]["loss"]  # the mean of the last call: epoch 2 if <= 100 updates


def train_keras(x, y, args, timer, jit_compile):
    model = build(args.width)
    loss, optimizer = loss_and_optimizer()
    model.compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=args.batch, epochs=2, shuffle=True,
                        callbacks=[timer], verbose=0)
    return history.history["loss"][-1]


def warm_median_seconds(run, repeats):
    """`bench_beam.median_seconds` after one untimed call (tracing, warm caches)."""
    run()
    return median_seconds(run, repeats)


def conv_layers(model):
    """(name, input shape, kernel shape, output shape, strides, padding, first) of every
    Conv2D layer, shapes without the batch dimension; `first`: its input is the model's."""
    inputs = {id(t) for t in model.inputs}
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            out.append((layer.name, tuple(layer.input.shape[1:]), tuple(layer.kernel.shape),
                        tuple(layer.output.shape[1:]), tuple(layer.strides),
                        layer.padding.upper(), id(layer.input) in inputs))
    return out


def time_convs(model, batch, repeats):
    """Forward + gradients of every Conv2D layer alone: rows of (name, input shape,
    kernel shape, forward GFLOP per image, fwd+bwd GFLOP per batch, seconds)."""
    import tensorflow as tf

    rows = []
    for k, (name, in_shape, k_shape, out_shape, strides, padding, first) in enumerate(
            conv_layers(model)):
        gen = tf.random.Generator.from_seed(k)
        x = gen.normal((batch, *in_shape))
        kernel = gen.normal(k_shape) * 0.05
        dy = gen.normal((batch, *out_shape))

        def step(x, kernel, dy, first=first, strides=strides, padding=padding):
            with tf.GradientTape() as tape:
                tape.watch(kernel)
                if not first:
                    tape.watch(x)
                y = tf.nn.conv2d(x, kernel, strides, padding)
            sources = [kernel] if first else [kernel, x]
            return [y] + tape.gradient(y, sources, output_gradients=dy)

        run = tf.function(step)
        seconds = warm_median_seconds(lambda: run(x, kernel, dy), repeats)
        kh, kw, c_in, c_out = k_shape
        forward = 2 * out_shape[0] * out_shape[1] * kh * kw * c_in * c_out / 1e9
        passes = 2 if first else 3  # forward, kernel gradient, input gradient
        rows.append((name, in_shape, k_shape, forward, forward * passes * batch, seconds))
    return rows


def gemm_gflops(n, repeats):
    import tensorflow as tf

    gen = tf.random.Generator.from_seed(0)
    a, b = gen.normal((n, n)), gen.normal((n, n))
    matmul = tf.function(tf.matmul)
    seconds = warm_median_seconds(lambda: matmul(a, b), repeats)
    return 2 * n ** 3 / seconds / 1e9, seconds


def shape(s):
    return "x".join(str(d) for d in s)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--images", type=int, default=10_000,
                      help="images per epoch (default 10,000; 50,000 is a CIFAR-10 epoch)")
    size.add_argument("--steps", type=int, help="alternatively, updates per epoch "
                                                "(images: steps x batch)")
    parser.add_argument("--batch", type=int, default=512, help="batch size (default 512)")
    parser.add_argument("--width", type=int, default=32,
                        help="channels of the first conv (default 32, the track's)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="TensorFlow threads, intra- and inter-op (default: all the "
                             "cores this process may use; 0: TensorFlow's default)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls of each convolution and of the GEMM (median)")
    parser.add_argument("--gemm", type=int, default=2048, help="GEMM size n (default 2048)")
    parser.add_argument("--skip-jit", action="store_true", help="no model.fit with XLA")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    from kcourse.training import set_threads

    if not set_threads(args.threads):  # before TensorFlow's first op
        raise SystemExit(f"could not set TensorFlow to {args.threads} threads")
    import tensorflow as tf

    n = args.steps * args.batch if args.steps else args.images
    steps_per_epoch = -(-n // args.batch)
    x, y = random_data(n)

    ways = {"kcourse": lambda timer: train_kcourse(x, y, args, timer),
            "model.fit": lambda timer: train_keras(x, y, args, timer, False)}
    if not args.skip_jit:
        ways["model.fit (XLA)"] = lambda timer: train_keras(x, y, args, timer, True)
    results, errors = {}, {}
    for name, train in ways.items():
        keras.utils.set_random_seed(0)
        timer = EpochTimer()
        start = time.perf_counter()
        try:
            loss = train(timer)
        except Exception as error:  # e.g. XLA cannot compile this graph on this CPU
            lines = str(error).strip().splitlines() or [""]
            errors[name] = f"{type(error).__name__}: {lines[0][:400]}"
            continue
        total = time.perf_counter() - start
        first, steady = timer.times
        results[name] = {"first_epoch_s": first, "call_s": total, "steady_epoch_s": steady,
                         "images_per_s": n / steady,
                         "ms_per_step": steady * args.batch / n * 1000,
                         "loss_epoch2": float(loss)}

    fits = [k for k in ("model.fit", "model.fit (XLA)") if k in results]
    faster = max(fits, key=lambda k: results[k]["images_per_s"]) if fits else None
    ratio = (results["kcourse"]["images_per_s"] / results[faster]["images_per_s"]
             if faster and "kcourse" in results else None)

    model = build(args.width)
    convs = time_convs(model, args.batch, args.repeats)
    gemm, gemm_s = gemm_gflops(args.gemm, args.repeats)
    conv_s = sum(r[5] for r in convs)
    conv_gflop = sum(r[4] for r in convs)  # per batch, forward + gradients
    conv_rate = conv_gflop / conv_s
    step_s = results["kcourse"]["ms_per_step"] / 1000 if "kcourse" in results else None

    print(f"fast_net width {args.width} ({model.count_params() / 1e6:.2f} M parameters, "
          f"{sum(r[3] for r in convs):.3f} GFLOP of convolutions per image forward), "
          f"{n:,} random images {shape(IMAGE_SHAPE)}, batch {args.batch} "
          f"({steps_per_epoch} updates per epoch), TensorFlow threads: "
          f"{args.threads or 'default'} of {os.cpu_count()} cores")
    print("each way: a fresh model trained two epochs in one call; epoch 1 cold (tracing, "
          "compilation), epoch 2 steady state (images/s)")
    print(f"{'way':18s} {'epoch 1 s':>10s} {'epoch 2 s':>10s} {'images/s':>10s} "
          f"{'ms/step':>9s} {'loss (ep. 2)':>13s}")
    for name in ways:
        if name in results:
            r = results[name]
            print(f"{name:18s} {r['first_epoch_s']:10.2f} {r['steady_epoch_s']:10.2f} "
                  f"{r['images_per_s']:10,.0f} {r['ms_per_step']:9.1f} "
                  f"{r['loss_epoch2']:13.4f}")
        else:
            print(f"{name:18s} failed: {errors[name]}")
    if ratio is not None:
        print(f"kcourse / faster model.fit ({faster}): {ratio:.2f}x (target >= 1.00x)")

    print(f"\nconvolutions alone, forward + gradients (input, kernel), batch {args.batch}, "
          f"median of {args.repeats}:")
    print(f"{'layer':18s} {'input':>10s} {'kernel':>14s} {'GFLOP':>8s} {'ms':>9s} "
          f"{'GFLOP/s':>8s}")
    for name, in_shape, k_shape, _, gflop, seconds in convs:
        print(f"{name:18s} {shape(in_shape):>10s} {shape(k_shape):>14s} {gflop:8.2f} "
              f"{seconds * 1000:9.1f} {gflop / seconds:8.1f}")
    print(f"{'all convolutions':18s} {'':>10s} {'':>14s} {conv_gflop:8.2f} "
          f"{conv_s * 1000:9.1f} {conv_rate:8.1f}")
    if step_s is not None:
        print(f"kcourse training step (steady state, per {args.batch} images): "
              f"{step_s * 1000:.1f} ms = convolutions {conv_s * 1000:.1f} ms "
              f"({conv_s / step_s:.0%}) + everything else {(step_s - conv_s) * 1000:.1f} ms "
              f"({1 - conv_s / step_s:.0%})")
    print(f"GEMM {args.gemm}x{args.gemm} float32 (tf.matmul): {gemm:.1f} GFLOP/s "
          f"({gemm_s * 1000:.1f} ms); convolutions at {conv_rate / gemm:.0%} of it"
          + (f", the whole kcourse step at {conv_gflop / step_s / gemm:.0%} (conv FLOPs "
             "only)" if step_s else ""))

    summary = {
        "images": n, "batch": args.batch, "width": args.width, "threads": args.threads,
        "cpu_count": os.cpu_count(), "steps_per_epoch": steps_per_epoch,
        "tensorflow": tf.__version__, "keras": keras.__version__,
        "ways": results, "errors": errors, "faster_model_fit": faster,
        "kcourse_over_faster_model_fit": ratio,
        "convs": [{"layer": name, "input": list(in_shape), "kernel": list(k_shape),
                   "gflop_per_image_forward": fwd, "gflop_per_batch": gflop,
                   "ms": seconds * 1000}
                  for name, in_shape, k_shape, fwd, gflop, seconds in convs],
        "conv_ms_per_step": conv_s * 1000, "conv_gflop_per_step": conv_gflop,
        "conv_gflops": conv_rate,
        "kcourse_ms_per_step": None if step_s is None else step_s * 1000,
        "conv_share_of_step": None if step_s is None else conv_s / step_s,
        "gemm_n": args.gemm, "gemm_gflops": gemm, "conv_fraction_of_gemm": conv_rate / gemm,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
