"""The ConvNets of INF265 project 2, as plain builders: the course's LeNet5Conv and
variants, fully convolutional, ending in a grid of `5 + K` numbers per cell
`[p_c logit, x, y, w, h, K class logits]` (what `kcourse.losses.LocalizationLoss` takes).

Localization: the last convolution covers the whole feature map (a 1x1 grid) and the
output is flattened to `(batch, 5 + 10)`. Detection: the convolution "to the grid" has
the kernel and stride that map the feature map onto the 2x3 grid of cells (each output
position sees its cell and some context), output `(batch, 2, 3, 5 + 2)`.
"""

import keras

from kcourse.data.mnist_canvas import GRID, HEIGHT, WIDTH

NUM_CLASSES = {"localization": 10, "detection": 2}
ARCHS = ("lenet", "lenet_bn", "wide", "deep")
# the moving statistics' momentum of batch normalization: PyTorch's default (0.1 there,
# the weight of the new batch), the course's; Keras' 0.99 leaves the moving variance
# near its starting 1 for hundreds of updates, far from these small activations, and
# the first epochs' validation measures of a 20-epoch run would be wrong
BN_MOMENTUM = 0.9


def grid_kernel(size, cells):
    """`(kernel, stride)` of a valid convolution mapping `size` positions onto `cells`
    outputs: stride `size // cells`, the kernel covering the rest (the whole axis for
    one cell)."""
    if cells == 1:
        return size, 1
    stride = size // cells
    kernel = size - (cells - 1) * stride
    return kernel, stride


def _conv(filters, kernel, name, padding="valid", strides=1, seed=None):
    return keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                               kernel_initializer=keras.initializers.GlorotUniform(seed),
                               name=name)


def localization_net(task="localization", arch="lenet", seed=None, name=None):
    """The network of a row.

    Args:
        task: `"localization"` (output `(batch, 15)`) or `"detection"` (output
            `(batch, 2, 3, 7)`).
        arch: `"lenet"`: the course's LeNet5Conv: conv 6@5x5 -> max pool 2 -> ReLU ->
            conv 16@5x5 -> max pool 2 -> ReLU (48x60 -> 9x12) -> conv 120 to the grid
            -> ReLU -> 1x1 conv of `5 + K` channels. `"lenet_bn"`: the same with batch
            normalization after each convolution (before the pooling). `"wide"`:
            lenet_bn with 32, 64 and 256 channels. `"deep"`: three stages of a 3x3
            conv (same padding; 32, 64, 128 channels), batch norm, ReLU and max pool
            (48x60 -> 6x7), then conv 256 to the grid with batch norm, ReLU, and the
            1x1 conv.
        seed: seed of the initialisations.
        name: the model's name (default `<arch>_<task>`).
    """
    if task not in NUM_CLASSES:
        raise ValueError(f"task must be one of {', '.join(NUM_CLASSES)}, got {task!r}.")
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}.")
    k = NUM_CLASSES[task]
    grid = (1, 1) if task == "localization" else GRID
    counter = iter(range(100))

    def seed_of():
        i = next(counter)
        return None if seed is None else seed + i

    inputs = keras.Input((HEIGHT, WIDTH, 1), name="canvases")
    h = inputs
    if arch in ("lenet", "lenet_bn", "wide"):
        c1, c2, c3 = (32, 64, 256) if arch == "wide" else (6, 16, 120)
        for i, filters in enumerate((c1, c2), start=1):
            h = _conv(filters, 5, f"conv_{i}", seed=seed_of())(h)
            if arch != "lenet":
                h = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn_{i}")(h)
            h = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(h)
            h = keras.layers.ReLU(name=f"relu_{i}")(h)
        last = 3
    else:  # deep
        for i, filters in enumerate((32, 64, 128), start=1):
            h = _conv(filters, 3, f"conv_{i}", padding="same", seed=seed_of())(h)
            h = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn_{i}")(h)
            h = keras.layers.ReLU(name=f"relu_{i}")(h)
            h = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(h)
        c3, last = 256, 4
    (kh, sh), (kw, sw) = (grid_kernel(h.shape[1], grid[0]), grid_kernel(h.shape[2], grid[1]))
    h = _conv(c3, (kh, kw), f"conv_{last}", strides=(sh, sw), seed=seed_of())(h)
    if arch != "lenet":
        h = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn_{last}")(h)
    h = keras.layers.ReLU(name=f"relu_{last}")(h)
    out = _conv(5 + k, 1, "head", seed=seed_of())(h)
    if task == "localization":
        out = keras.layers.Reshape((5 + k,), name="flatten")(out)
    return keras.Model(inputs, out, name=name or f"{arch}_{task}")
