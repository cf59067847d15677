"""The course's 1-D convolution written as a matrix product, with a hand-written backward pass."""

import keras
import numpy as np
import tensorflow as tf

from kcourse.layers.linear import INITS, course_initializer


def mf_index(n_len, kernel_size):
    """Where the kernel goes in the course's matrix `MF` (MakeMFMatrix), position-wise.

    Returns an int32 array of shape `(n_len, P)`, `P = n_len - kernel_size + 1`: entry
    `[i, p]` is `j = i - p` when `0 <= j < kernel_size` (input position `i` meets filter
    tap `j` at output position `p`), else `kernel_size`, the index of a zero slab
    appended to the kernel. See `mf_matrix`.
    """
    j = np.arange(n_len)[:, None] - np.arange(n_len - kernel_size + 1)[None, :]
    return np.where((j >= 0) & (j < kernel_size), j, kernel_size).astype(np.int32)


def mf_matrix(kernel, index):
    """The course's `MF` (transposed, for row vectors) gathered from `kernel`.

    `kernel` has shape `(k, c, filters)` and `index = mf_index(n_len, k)`. Returns `MF`
    of shape `(n_len * c, P * filters)` with `MF[i * c + ch, p * filters + f] = kernel[i -
    p, ch, f]` when `0 <= i - p < k`, else 0: the gather copies whole `(c, filters)`
    slabs of the kernel (or of zeros), one per `(i, p)`.
    """
    k, c, filters = kernel.shape
    n_len, positions = index.shape
    slabs = tf.concat([kernel, tf.zeros([1, c, filters], kernel.dtype)], axis=0)
    mf = tf.gather(slabs, index)                           # (n_len, P, c, filters)
    return tf.reshape(tf.transpose(mf, [0, 2, 1, 3]), [n_len * c, positions * filters])


def patch_index(n_len, kernel_size):
    """The input positions of every patch: int32 `(P, kernel_size)`, `[p, j] = p + j`."""
    positions = n_len - kernel_size + 1
    return (np.arange(positions)[:, None] + np.arange(kernel_size)[None, :]).astype(np.int32)


def mx_patches(x, index):
    """The course's `MX` (MakeMXMatrix for one filter) of every example: the im2col
    patches `MX[b, p, j * c + ch] = x[b, p + j, ch]`, shape `(batch, P, k * c)`, for
    `x` of shape `(batch, n_len, c)` and `index = patch_index(n_len, k)`."""
    positions, k = index.shape
    return tf.reshape(tf.gather(x, index, axis=1), [-1, positions, k * x.shape[-1]])


@keras.saving.register_keras_serializable(package="kcourse")
class MatrixConv1D(keras.layers.Layer):
    """1-D convolution (stride 1, "valid", no activation) computed as the course does:
    the input times the big matrix `MF`, with the gradients written by hand.

    For an input `x` of shape `(batch, n_len, c)` and a kernel `K` of shape
    `(k, c, filters)` (exactly `keras.layers.Conv1D`'s layout, so weights copy across)
    the output is

        out[b, p, f] = bias[f] + sum_{j < k, ch < c} x[b, p + j, ch] K[j, ch, f],
        p = 0 .. P - 1,  P = n_len - k + 1.

    The course writes the convolution as a matrix product two ways. Flatten each input
    position-major, `x_flat[b, p * c + ch] = x[b, p, ch]`, and each output as
    `out_flat[b, p * filters + f]`:

    - MakeMFMatrix: `out_flat = x_flat @ MF + bias`, where `MF` of shape `(n_len * c, P *
      filters)` holds `MF[(p + j) * c + ch, p * filters + f] = K[j, ch, f]` and zeros
      elsewhere (the transpose of the course's `MF`, as batches are rows here);
    - MakeMXMatrix: `out[b] = MX_b @ K_rows + bias`, where `MX_b[p, j * c + ch] = x[b,
      p + j, ch]` (the im2col patches of the input, `mx_patches`) and `K_rows` is the
      kernel as a `(k * c, filters)` matrix.

    The forward pass uses `MX` (a fraction k / n_len of `MF` is non-zero, so the `MF`
    product does n_len / k times the work). Both matrices are gathered in the graph with
    static indices computed once in `build` (`mf_index`, `mf_matrix`: one `(c,
    filters)` slab of the kernel per input and output position, a zero slab where the
    filter does not reach; `patch_index`), no Python loop at call time.

    Backward pass (`tf.custom_gradient`, not derived by the tape), with the upstream
    gradient `G` of shape `(batch, P, filters)`, as the course derives it:

        dx_flat = G_flat @ MF^T,
        dK      = sum_b MX_b^T G_b  (reshaped to (k, c, filters)),
        dbias   = sum_{b, p} G[b, p, :].

    With `one_hot_input=True` (the course's sparse first layer over one-hot names) the
    input must be one-hot at each position: every row `x[b, p, :]` is 0/1 with at most
    one 1 (all-zero rows, unknown or padding characters, are allowed). This is assumed,
    not checked. The layer then uses the sparsity: with `id[b, p] = argmax_ch x[b, p,
    ch]` and `m[b, p] = 1` if the row has a 1 (else 0),

        out[b, p, :] = bias + sum_j m[b, p + j] K[j, id[b, p + j], :]   (gathers),

    while `dK = MX^T G` multiplies by a 0/1 matrix (on a CPU faster than the equal
    scatter-add `dK[j, id[b, p + j], :] += m[b, p + j] G[b, p, :]`) and `dx` is still
    `G_flat @ MF^T` (pruned from a compiled training step, where nothing needs it).

    Initialisation: the kernel follows the course's `init` (see `course_initializer`),
    the bias starts at zero. The fan-in of He and Xavier is `k * c` for a dense input;
    with `one_hot_input=True` it is `k`, since a patch of a one-hot name has at most
    `k` non-zero entries (the course's remark that the sparse input changes the first
    layer's variance).

    Args:
        filters: number of filters (output channels), the course's `n_i`.
        kernel_size: width `k` of the filters.
        use_bias: whether to add a bias per filter (the course's conv layers have none;
            `Conv1D` has one by default).
        one_hot_input: the input is one-hot per position: gather the output instead of
            multiplying by the patches.
        init: `"gaussian"`, `"xavier"` or `"he"` (course: He).
        sigma: standard deviation of the `"gaussian"` init.
        kernel_regularizer: optional Keras regularizer for the kernel.
        seed: optional seed for the initializer.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Input shape: `(batch, n_len, c)` with known `n_len >= kernel_size` and `c`.
    Output shape: `(batch, n_len - kernel_size + 1, filters)`.

    Reference:
        DD2424 Assignment 3 (2019 edition), ConvNet for surnames: MakeMFMatrix (the
        forward pass as a matrix product) and MakeMXMatrix (the gradient of the
        filters); `keras.layers.Conv1D` for the weight layout.
    """

    def __init__(self, filters, kernel_size, use_bias=True, one_hot_input=False, init="he",
                 sigma=0.01, kernel_regularizer=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(f"filters must be a positive integer, got {filters}.")
        if int(kernel_size) < 1:
            raise ValueError(f"kernel_size must be a positive integer, got {kernel_size}.")
        if init not in INITS:
            raise ValueError(f"Unknown init {init!r}: use one of {', '.join(INITS)}.")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.use_bias = bool(use_bias)
        self.one_hot_input = bool(one_hot_input)
        self.init = init
        self.sigma = float(sigma)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.seed = seed
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError("MatrixConv1D needs inputs of shape (batch, n_len, channels), "
                             f"got shape {tuple(input_shape)}.")
        n_len, channels = input_shape[1], input_shape[2]
        if n_len is None or channels is None:
            raise ValueError("MatrixConv1D needs a known input length n_len and number of "
                             f"channels (its matrix MF depends on them), got input shape "
                             f"{tuple(input_shape)}; pad the sequences to a fixed length.")
        n_len, channels = int(n_len), int(channels)
        if self.kernel_size > n_len:
            raise ValueError(f"kernel_size {self.kernel_size} is longer than the input length "
                             f"{n_len}: a 'valid' convolution needs kernel_size <= n_len.")
        self.n_len, self.channels = n_len, channels
        self.positions = n_len - self.kernel_size + 1
        fan_in = self.kernel_size * (1 if self.one_hot_input else channels)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, channels, self.filters),
            initializer=course_initializer(self.init, fan_in, self.sigma, self.seed),
            regularizer=self.kernel_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        else:
            self.bias = None
        # the static indices of MF and of the patches (MX, one-hot rows), computed once
        self._mf_index = mf_index(n_len, self.kernel_size)
        self._patch_index = patch_index(n_len, self.kernel_size)
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={1: n_len, 2: channels})

    def _mf(self, kernel):
        return mf_matrix(kernel, tf.constant(self._mf_index))

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        if x.dtype != self.compute_dtype:
            x = tf.cast(x, self.compute_dtype)
        kernel = tf.convert_to_tensor(self.kernel)
        bias = () if self.bias is None else (tf.convert_to_tensor(self.bias),)
        c, k, nf, positions = self.channels, self.kernel_size, self.filters, self.positions
        width = k * c

        @tf.custom_gradient
        def conv(x, kernel, *bias):
            batch = tf.shape(x)[0]
            kernel_rows = tf.reshape(kernel, [width, nf])
            if self.one_hot_input:
                ids = tf.argmax(x, axis=-1, output_type=tf.int32)          # (batch, n)
                present = tf.reduce_max(x, axis=-1) > 0                     # (batch, n)
                patch = tf.constant(self._patch_index)                       # (P, k)
                # row j * c + id[b, p + j] of the kernel as (k * c, filters); row k * c
                # (a zero row) where the character is absent
                rows = tf.gather(ids, patch, axis=1) + tf.constant(np.arange(k) * c,
                                                                   tf.int32)
                rows = tf.where(tf.gather(present, patch, axis=1), rows, width)
                table = tf.concat([kernel_rows, tf.zeros([1, nf], kernel.dtype)], axis=0)
                out = tf.reduce_sum(tf.gather(table, rows), axis=2)          # (batch, P, nf)
            else:
                # s = MX vec(F): the patches of the input times the filters
                patches = mx_patches(x, tf.constant(self._patch_index))      # (batch, P, k c)
                out = tf.reshape(tf.matmul(tf.reshape(patches, [-1, width]), kernel_rows),
                                 [batch, positions, nf])
            if bias:
                out = out + bias[0]

            def grad(g):
                g_flat = tf.reshape(g, [batch, positions * nf])
                dx = tf.reshape(tf.matmul(g_flat, self._mf(kernel), transpose_b=True),
                                tf.shape(x))
                # dK = MX^T G (for a one-hot input a product with a 0/1 matrix, faster
                # on CPU than the equivalent scatter-add of G into the kernel's rows)
                mx = mx_patches(x, tf.constant(self._patch_index)) if self.one_hot_input \
                    else patches
                dk = tf.matmul(tf.reshape(mx, [-1, width]), tf.reshape(g, [-1, nf]),
                               transpose_a=True)
                grads = [dx, tf.reshape(dk, [k, c, nf])]
                if bias:
                    grads.append(tf.reduce_sum(g, axis=[0, 1]))
                return grads

            return out, grad

        return conv(x, kernel, *bias)

    def compute_output_shape(self, input_shape):
        n_len = input_shape[1]
        length = None if n_len is None else n_len - self.kernel_size + 1
        return (input_shape[0], length, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            use_bias=self.use_bias,
            one_hot_input=self.one_hot_input,
            init=self.init,
            sigma=self.sigma,
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            seed=self.seed,
        )
        return config
