"""Training speed of the surname ConvNet (DD2424 A3 2019): MatrixConv1D, Conv1D, NumPy.

kcourse.layers.MatrixConv1D vs keras.layers.Conv1D vs the course's NumPy matrix form.

The network: one-hot names of length 19 over 28 symbols -> conv n1 = 20 filters of
width k1 = 5, ReLU -> conv n2 = 20 of width k2 = 3, ReLU -> flatten -> dense softmax
over 18 classes, cross-entropy; the conv layers have no bias (as in the course), SGD
with momentum 0.9, eta 0.001, batch 100, on 19,798 random one-hot names (random
lengths 2..19, zero-padded) with random labels. One process trains it three ways (and
variants) and reports updates/second in steady state (after a warm-up that includes
tracing); --xla adds each TensorFlow model with every update compiled by XLA:

  MatrixConv1D   kcourse.layers.MatrixConv1D (the first with one_hot_input=True), a
                 GradientTape update inside tf.function, --steps-per-call updates per
                 call (default 100, as kcourse.training.fit), each batch gathered in the
                 graph from the names held as one tensor
  Conv1D         the same model and loop with keras.layers.Conv1D
  MatrixConv1D, dense 1st
                 MatrixConv1D with one_hot_input=False in the first layer too (MF
                 product forward, MX patches for the gradient: no gathers by character
                 and no scatter-add)
  numpy          the course's matrix form, as course solutions write it (in columns,
                 one name per column): MF matrices (MakeMFMatrix, rebuilt at every
                 update) for the forward pass, the filters' gradients through MX
                 matrices (MakeMXMatrix, one filter): the first layer's MX of every
                 training name precomputed once, as scipy.sparse matrices if SciPy is
                 installed, else as one dense array; the second layer's built per batch.
                 The filters' gradients sum MX_j^T G_j over the names of the batch: in a
                 loop over the names, as the course's code does (the named baseline), and
                 batched into one product (a stronger baseline). In float64 (the
                 course's) and float32 (batched).

Before timing, the NumPy forward/backward pass is checked against the MatrixConv1D
model's on one batch with the same weights (loss and gradients; differences printed).

TensorFlow runs on one thread unless --threads says otherwise, and NumPy's BLAS
(OpenBLAS) on one thread unless --numpy-threads says otherwise (0: OpenBLAS' default,
all cores; a multi-threaded OpenBLAS collapses when other processes share the cores).

Usage: python benchmarks/bench_conv_as_matrix.py [--updates N] [--warmup N] [--threads T]
                                                 [--numpy-threads T] [--steps-per-call S]
                                                 [--xla] [--mx auto|sparse|dense]
                                                 [--json PATH]
"""

import argparse
import importlib.util
import json
import os
import sys
import time


def _numpy_threads(argv):
    """--numpy-threads, read before NumPy loads (OpenBLAS fixes its threads then)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--numpy-threads", type=int, default=1)
    return parser.parse_known_args(argv)[0].numpy_threads


if __name__ == "__main__" and _numpy_threads(sys.argv[1:]):
    os.environ["OPENBLAS_NUM_THREADS"] = str(_numpy_threads(sys.argv[1:]))

import numpy as np  # noqa: E402

N_NAMES, N_LEN, SYMBOLS, CLASSES = 19798, 19, 28, 18
K1, N1, K2, N2 = 5, 20, 3, 20
BATCH, ETA, RHO = 100, 0.001, 0.9


def random_names(rng):
    """Random one-hot names (N, N_LEN, SYMBOLS), zero-padded, and one-hot labels."""
    lengths = rng.integers(2, N_LEN + 1, size=N_NAMES)
    ids = rng.integers(0, SYMBOLS, size=(N_NAMES, N_LEN))
    x = np.zeros((N_NAMES, N_LEN, SYMBOLS), np.float32)
    rows, cols = np.nonzero(np.arange(N_LEN)[None, :] < lengths[:, None])
    x[rows, cols, ids[rows, cols]] = 1.0
    y = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, size=N_NAMES)]
    return x, y


def update_orders(n_updates, rng):
    """The example indices of `n_updates` batches: full batches of shuffled epochs."""
    per_epoch = N_NAMES // BATCH
    epochs = -(-n_updates // per_epoch)
    orders = [rng.permutation(N_NAMES)[:per_epoch * BATCH] for _ in range(epochs)]
    return np.concatenate(orders)[:n_updates * BATCH].astype(np.int32)


# ---------------------------------------------------------------- TensorFlow, two ways

def surname_net(conv, seed=0, one_hot_input=True):
    import keras

    inputs = keras.Input(shape=(N_LEN, SYMBOLS))
    first = ({"one_hot_input": one_hot_input, "seed": seed}
             if conv.__name__ == "MatrixConv1D" else {})
    h = conv(N1, K1, use_bias=False, name="conv1", **first)(inputs)
    h = keras.layers.ReLU()(h)
    h = conv(N2, K2, use_bias=False, name="conv2")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(CLASSES, name="dense")(h)
    return keras.Model(inputs, outputs)


def loss_and_grads(model, x, y):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        scores = model(x, training=True)
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y, scores))
    return loss, tape.gradient(loss, model.trainable_variables)


def make_chunk(model, x_all, y_all, orders, jit_compile):
    """`chunk(first, steps)`: updates first .. first + steps - 1, batches gathered in
    the graph; returns the last loss. With `jit_compile` each update (not the loop over
    them, which would carry all the names through XLA's while loop) is compiled by XLA."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.SGD(ETA, momentum=RHO)
    optimizer.build(model.trainable_variables)
    x_all, y_all, orders = (tf.constant(a) for a in (x_all, y_all, orders))

    def update(x, y):
        loss, grads = loss_and_grads(model, x, y)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    update = tf.function(update, jit_compile=True) if jit_compile else update

    def chunk(first, steps):
        loss = tf.constant(0.0)
        for k in tf.range(steps):
            start = (first + k) * BATCH
            i = orders[start:start + BATCH]
            loss = update(tf.gather(x_all, i), tf.gather(y_all, i))
        return loss

    return tf.function(chunk)


def time_tf(model, x, y, orders, warmup, updates, per_call, jit_compile):
    import tensorflow as tf

    chunk = make_chunk(model, x, y, orders, jit_compile)
    done = 0
    while done < warmup:
        steps = min(per_call, warmup - done)
        float(chunk(tf.constant(done), tf.constant(steps)))
        done += steps
    start, end = time.perf_counter(), done + updates
    while done < end:
        steps = min(per_call, end - done)
        loss = chunk(tf.constant(done), tf.constant(steps))
        done += steps
    float(loss)  # wait for the last call
    return updates / (time.perf_counter() - start)


# ---------------------------------------------------------------- NumPy, the course's way

def make_mf(F, n_len):
    """MakeMFMatrix: F of shape (k, d, nf) (Conv1D's layout; filter i is F[:, :, i],
    vec'd as j * d + ch) -> MF of shape ((n_len - k + 1) * nf, n_len * d), s = MF x."""
    k, d, nf = F.shape
    VF = F.reshape(k * d, nf).T  # row i: vec(F_i)
    positions = n_len - k + 1
    MF = np.zeros((positions * nf, n_len * d), F.dtype)
    for p in range(positions):
        MF[p * nf:(p + 1) * nf, p * d:(p + k) * d] = VF
    return MF


def mx_patches(X, d, k):
    """MakeMXMatrix (one filter) for every column of X (n_len * d, B): (B, P, k * d)."""
    n_len = X.shape[0] // d
    positions = n_len - k + 1
    index = np.arange(positions)[:, None] * d + np.arange(k * d)[None, :]
    return np.ascontiguousarray(X.T[:, index])


class NumpyNet:
    """The surname ConvNet in the course's matrix form, SGD with momentum."""

    def __init__(self, weights, x_names, y, dtype, sparse, loop=False):
        F1, F2, W, b = weights  # Keras layouts: (k1, d, n1), (k2, n1, n2), (P2 n2, K), (K,)
        self.dtype, self.loop = dtype, loop
        self.params = [F1.astype(dtype), F2.astype(dtype), W.T.astype(dtype), b.astype(dtype)]
        self.moms = [np.zeros_like(p) for p in self.params]
        self.X = x_names.reshape(N_NAMES, N_LEN * SYMBOLS).astype(dtype)  # rows: vec(X_j)
        self.Y = y.astype(dtype)
        self.p1 = N_LEN - K1 + 1
        # the first layer's MX matrices, once for all training names
        patches = mx_patches(self.X.T, SYMBOLS, K1)  # (N, P1, k1 d)
        self.sparse = sparse
        if sparse:
            import scipy.sparse

            self.MX1 = scipy.sparse.csr_matrix(patches.reshape(-1, K1 * SYMBOLS))
        else:
            self.MX1 = patches

    def mx1(self, idx):
        if self.sparse:
            rows = (idx[:, None] * self.p1 + np.arange(self.p1)[None, :]).reshape(-1)
            return self.MX1[rows]  # (B P1, k1 d) sparse
        return np.take(self.MX1, idx, axis=0).reshape(-1, K1 * SYMBOLS)

    def forward_backward(self, idx):
        F1, F2, W, b = self.params
        X, Y = self.X[idx].T, self.Y[idx].T  # (n_len d, B), (K, B)
        n = X.shape[1]
        MF1, MF2 = make_mf(F1, N_LEN), make_mf(F2, self.p1)
        X1 = np.maximum(MF1 @ X, 0)                       # (P1 n1, B)
        X2 = np.maximum(MF2 @ X1, 0)                      # (P2 n2, B)
        S = W @ X2 + b[:, None]
        S = S - S.max(axis=0)
        P = np.exp(S)
        P /= P.sum(axis=0)
        loss = -np.log((Y * P).sum(axis=0)).mean()
        G = (P - Y) / n
        dW, db = G @ X2.T, G.sum(axis=1)
        G = (W.T @ G) * (X2 > 0)                          # (P2 n2, B)
        G1 = (MF2.T @ G) * (X1 > 0)                       # (P1 n1, B)
        if self.loop:  # as the course's code: sum_j MX_j^T G_j, one name at a time
            MX2 = mx_patches(X1, N1, K2)                   # (B, P2, k2 n1)
            MX1 = self.mx1(idx)
            dF2 = np.zeros((K2 * N1, N2), self.dtype)
            dF1 = np.zeros((K1 * SYMBOLS, N1), self.dtype)
            for j in range(n):
                dF2 += MX2[j].T @ G[:, j].reshape(-1, N2)
                dF1 += MX1[j * self.p1:(j + 1) * self.p1].T @ G1[:, j].reshape(-1, N1)
        else:
            MX2 = mx_patches(X1, N1, K2).reshape(-1, K2 * N1)  # (B P2, k2 n1)
            dF2 = MX2.T @ G.T.reshape(-1, N2)              # sum_j MX2_j^T G_j
            dF1 = self.mx1(idx).T @ G1.T.reshape(-1, N1)
        grads = [np.asarray(dF1).reshape(F1.shape), dF2.reshape(F2.shape), dW, db]
        return loss, grads

    def update(self, idx):
        loss, grads = self.forward_backward(idx)
        for p, v, g in zip(self.params, self.moms, grads):
            v *= RHO
            v += ETA * g
            p -= v
        return loss


def time_numpy(net, orders, warmup, updates):
    for u in range(warmup):
        net.update(orders[u * BATCH:(u + 1) * BATCH])
    start = time.perf_counter()
    for u in range(warmup, warmup + updates):
        net.update(orders[u * BATCH:(u + 1) * BATCH])
    return updates / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=500, help="timed updates per method")
    parser.add_argument("--warmup", type=int, default=100,
                        help="updates before timing (tracing included)")
    parser.add_argument("--threads", type=int, default=1,
                        help="TensorFlow threads, process-wide (0: TensorFlow's default; "
                             "NumPy is not affected)")
    parser.add_argument("--numpy-threads", type=int, default=1,
                        help="OpenBLAS threads of NumPy (0: its default; read before NumPy "
                             "loads, so only when run as a script)")
    parser.add_argument("--steps-per-call", type=int, default=100,
                        help="updates per tf.function call (default 100, as kcourse's fit)")
    parser.add_argument("--xla", action="store_true",
                        help="also time the TensorFlow models with every update compiled "
                             "by XLA (jit_compile=True)")
    parser.add_argument("--mx", choices=("auto", "sparse", "dense"), default="auto",
                        help="the first layer's precomputed MX matrices: scipy.sparse or "
                             "dense NumPy (auto: sparse if SciPy is installed)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.updates < 1 or args.warmup < 1 or args.steps_per_call < 1:
        parser.error("--updates, --warmup and --steps-per-call must be at least 1")

    from kcourse.training import set_threads

    set_threads(args.threads)  # before TensorFlow's first op

    import keras

    from kcourse.layers import MatrixConv1D

    if args.mx == "auto":
        sparse = importlib.util.find_spec("scipy") is not None
    else:
        sparse = args.mx == "sparse"
        if sparse and importlib.util.find_spec("scipy") is None:
            parser.error("--mx sparse needs SciPy (pip install scipy)")

    rng = np.random.default_rng(0)
    x, y = random_names(rng)
    orders = update_orders(args.warmup + args.updates, rng)

    keras.utils.set_random_seed(0)
    start_weights = surname_net(MatrixConv1D).get_weights()  # He init, one-hot fan-in

    # the NumPy matrix form against MatrixConv1D, same weights, one batch
    check = surname_net(MatrixConv1D)
    check.set_weights(start_weights)
    idx = orders[:BATCH]
    tf_loss, tf_grads = loss_and_grads(check, x[idx], y[idx])
    net = NumpyNet(start_weights, x, y, np.float64, sparse)
    np_loss, np_grads = net.forward_backward(idx)
    np_grads[2] = np_grads[2].T  # W in the course's (K, m) layout
    loss_diff = abs(float(tf_loss) - np_loss)
    grad_diff = max(float(np.abs(np.asarray(a) - b).max()) for a, b in zip(tf_grads, np_grads))

    results = {}
    variants = (("MatrixConv1D", MatrixConv1D, True), ("Conv1D", keras.layers.Conv1D, True),
                ("MatrixConv1D, dense 1st", MatrixConv1D, False))
    for name, conv, one_hot in variants:
        for jit in (False, True) if args.xla else (False,):
            model = surname_net(conv, one_hot_input=one_hot)
            model.set_weights(start_weights)
            label = f"{name} (tf.function{', XLA' if jit else ''})"
            results[label] = time_tf(model, x, y, orders, args.warmup, args.updates,
                                     args.steps_per_call, jit)
    mx = "scipy.sparse" if sparse else "dense"
    loop_net = NumpyNet(start_weights, x, y, np.float64, sparse, loop=True)
    loop_loss, loop_grads = loop_net.forward_backward(idx)
    loop_grads[2] = loop_grads[2].T
    loop_diff = max(float(np.abs(a - b).max()) for a, b in zip(loop_grads, np_grads))
    for dtype, loop in ((np.float64, True), (np.float64, False), (np.float32, False)):
        net = NumpyNet(start_weights, x, y, dtype, sparse, loop=loop)
        how = "a loop over the names, as the course" if loop else "batched"
        label = f"numpy {np.dtype(dtype).name} (MF/MX, {mx} MX1; dF: {how})"
        results[label] = time_numpy(net, orders, args.warmup, args.updates)

    numpy_threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    base = results[f"numpy float64 (MF/MX, {mx} MX1; dF: a loop over the names, as the course)"]
    batched_base = results[f"numpy float64 (MF/MX, {mx} MX1; dF: batched)"]
    print(f"Surname ConvNet (19 x 28 one-hot -> conv 20x5 -> conv 20x3 -> 18), "
          f"{N_NAMES} random names, batch {BATCH}, SGD momentum {RHO}, eta {ETA}; "
          f"{args.updates} timed updates after {args.warmup}; TensorFlow threads: "
          f"{args.threads or 'default'}, NumPy threads: {numpy_threads}, "
          f"updates per tf.function call: {args.steps_per_call}")
    print("MatrixConv1D: first layer one_hot_input=True unless 'dense 1st' "
          "(one_hot_input=False)")
    print(f"NumPy vs MatrixConv1D on one batch, same weights: |loss difference| "
          f"{loss_diff:.2e} (loss {np_loss:.6f}), max |gradient difference| {grad_diff:.2e}; "
          f"the loop over the names vs batched: {loop_diff:.2e}")
    print(f"{'method':74s} {'updates/s':>10s} {'vs numpy loop':>14s} {'vs numpy batched':>17s}")
    for name, speed in results.items():
        print(f"{name:74s} {speed:10,.0f} {speed / base:13.2f}x {speed / batched_base:16.2f}x")
    results.update(loss_difference=loss_diff, gradient_difference=grad_diff,
                   loop_gradient_difference=loop_diff)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
