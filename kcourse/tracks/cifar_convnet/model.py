"""The ConvNets of the track: the TensorFlow tutorial's network and kcourse's fast
residual network, both split into a `body` (images -> a feature vector, the layer named
`features`) and a `head` (the layer named `head`: the class logits), so that transfer
learning swaps the head of a trained network (`transfer_net`)."""

import keras

from kcourse.layers import GradientScale

ARCHS = ("tutorial", "fast")


def tutorial_net(input_shape=(32, 32, 3), num_classes=10, seed=None):
    """The TensorFlow CNN tutorial's network: conv 32, max pool, conv 64, max pool,
    conv 64 (3x3, ReLU, no padding), flatten, dense 64 (ReLU; the `features`), dense
    `num_classes` (logits; the `head`).

    Reference: https://www.tensorflow.org/tutorials/images/cnn
    """
    init = keras.initializers.GlorotUniform
    L = keras.layers
    inputs = keras.Input(input_shape, name="images")
    x = L.Conv2D(32, 3, activation="relu", kernel_initializer=init(seed))(inputs)
    x = L.MaxPooling2D()(x)
    x = L.Conv2D(64, 3, activation="relu", kernel_initializer=init(_add(seed, 1)))(x)
    x = L.MaxPooling2D()(x)
    x = L.Conv2D(64, 3, activation="relu", kernel_initializer=init(_add(seed, 2)))(x)
    x = L.Flatten()(x)
    x = L.Dense(64, activation="relu", kernel_initializer=init(_add(seed, 3)),
                name="features")(x)
    outputs = L.Dense(num_classes, kernel_initializer=init(_add(seed, 4)), name="head")(x)
    return keras.Model(inputs, outputs, name="tutorial_net")


def _add(seed, k):
    return None if seed is None else seed + k


def _conv_bn(x, channels, seed, name):
    """3x3 convolution (no bias), batch norm, ReLU."""
    L = keras.layers
    x = L.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv",
                 kernel_initializer=keras.initializers.HeNormal(seed))(x)
    x = L.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return L.ReLU(name=f"{name}_relu")(x)


def fast_net(input_shape=(32, 32, 3), num_classes=10, width=32, seed=None):
    """kcourse's fast ConvNet: the ResNet-9 layout of D. Page's DAWNBench CIFAR-10
    entry at a chosen width. A 3x3 conv of `width` channels, then three stages at
    `2 width`, `4 width` and `8 width` channels, each a conv and a 2x2 max pool, the
    first and last followed by a residual block of two convs (every conv: 3x3, batch
    norm, ReLU); global max pooling (the `features`) and a dense layer whose logits
    are scaled by 1/8 (the `head`, a `Rescaling` after it).

    At `width=32` (half of Page's 64): 1.65 M parameters, 0.19 GFLOP of convolutions
    per 32x32 image forward (width 16: 0.41 M, 0.048 GFLOP).

    Reference:
        D. Page, "How to train your ResNet" (2018),
        https://myrtle.ai/learn/how-to-train-your-resnet/
    """
    L = keras.layers
    seeds = iter(range(1000)) if seed is None else iter(range(seed, seed + 1000))

    def nxt():
        return None if seed is None else next(seeds)

    inputs = keras.Input(input_shape, name="images")
    x = _conv_bn(inputs, width, nxt(), "prep")
    for stage, (channels, residual) in enumerate(((2 * width, True), (4 * width, False),
                                                  (8 * width, True)), start=1):
        x = _conv_bn(x, channels, nxt(), f"stage{stage}")
        x = L.MaxPooling2D(name=f"stage{stage}_pool")(x)
        if residual:
            y = _conv_bn(x, channels, nxt(), f"stage{stage}_res1")
            y = _conv_bn(y, channels, nxt(), f"stage{stage}_res2")
            x = L.Add(name=f"stage{stage}_add")([x, y])
    x = L.GlobalMaxPooling2D(name="features")(x)
    x = L.Dense(num_classes, kernel_initializer=keras.initializers.GlorotUniform(nxt()),
                name="head")(x)
    outputs = L.Rescaling(0.125, name="logit_scale")(x)
    return keras.Model(inputs, outputs, name="fast_net")


def convnet(arch, input_shape=(32, 32, 3), num_classes=10, width=32, seed=None):
    """The network `arch` (`tutorial` or `fast`)."""
    if arch == "tutorial":
        return tutorial_net(input_shape, num_classes, seed)
    if arch == "fast":
        return fast_net(input_shape, num_classes, width, seed)
    raise ValueError(f"Unknown arch {arch!r}: use one of {', '.join(ARCHS)}.")


def body_of(model):
    """The body of a network of this track (or any model with a layer named
    `features`): a model from its input to that layer's output."""
    try:
        features = model.get_layer("features")
    except ValueError:
        raise ValueError(f"the model {model.name!r} has no layer named 'features' to take "
                         "as the body: transfer from a run of the cifar_convnet track") from None
    return keras.Model(model.inputs, features.output, name="body")


def transfer_net(source, num_classes, mode, body_scale=0.1, seed=None):
    """A new network for `num_classes` classes on the body of `source` (a trained
    network with a `features` layer, see `body_of`; its weights are copied, not
    shared) and a new head, in the given `mode`:

    - `"frozen"`: the body's weights are not trained (`trainable=False`; its batch
      norm then runs in inference mode, as Keras does for a frozen layer);
    - `"finetune"`: every layer is trained, the body's gradient scaled by
      `body_scale` (`GradientScale`: with SGD, the body's learning rate is
      `body_scale` times the head's).

    The head is a dense layer (and the source's logit scale, if it has one) named as
    the source's. The source must not be a transferred network itself (its body is
    nested, possibly frozen or gradient-scaled): the track refuses one.
    """
    if mode not in ("frozen", "finetune"):
        raise ValueError(f"Unknown transfer mode {mode!r}: use 'frozen' or 'finetune'.")
    copy = keras.models.clone_model(source)
    copy.set_weights(source.get_weights())
    body = body_of(copy)
    inputs = keras.Input(tuple(source.input_shape[1:]), name="images")
    if mode == "frozen":
        # trainable=False is what keeps its batch norm in inference mode (Keras 3 uses
        # the moving statistics when `training and trainable` is false; the training
        # flag of the outer call reaches the nested model whatever is written here)
        body.trainable = False
        x = body(inputs)
    else:
        x = GradientScale(body_scale, name="body_gradient_scale")(body(inputs))
    x = keras.layers.Identity(name="features")(x)
    x = keras.layers.Dense(num_classes, name="head",
                           kernel_initializer=keras.initializers.GlorotUniform(seed))(x)
    names = [layer.name for layer in source.layers]
    if "logit_scale" in names:
        x = keras.layers.Rescaling(source.get_layer("logit_scale").scale,
                                   name="logit_scale")(x)
    return keras.Model(inputs, x, name=f"transfer_{mode}")
