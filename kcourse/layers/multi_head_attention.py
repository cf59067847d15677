"""Multi-head scaled dot-product self-attention, written out."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kcourse")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Every position of a sequence attends to every position of the same sequence.

    For each head `h` of `num_heads`, with `x` the inputs `(batch, time, dim)`:

        Q_h = x W_q[h],  K_h = x W_k[h],  V_h = x W_v[h]        (time, key_dim) ...
        A_h = softmax(Q_h K_h^T / sqrt(key_dim))                 (time, time), rows sum to 1
        head_h = A_h V_h                                         (time, value_dim)
        outputs = sum_h head_h W_o[h]                            (time, output_dim)

    the last line being the heads side by side times one output matrix. The weights
    have the shapes of `keras.layers.MultiHeadAttention`'s (`query` kernel `(dim,
    num_heads, key_dim)`, ..., `attention_output` kernel `(num_heads, value_dim,
    output_dim)`) and, with `use_bias` the same, the same order in `get_weights()`: that
    layer called as `mha(x, x)` with these weights gives these outputs (its dropout
    off). Unlike it this layer has no dropout and no cross-attention; `mask` is an
    optional boolean `(batch, time)` of the positions that may be attended to.

    Args:
        num_heads: the number of heads.
        key_dim: size of every head's queries and keys.
        value_dim: size of every head's values (default: key_dim).
        output_dim: size of the outputs (default: the inputs' dim).
        use_bias: add a bias to the queries, keys, values and outputs (the course's
            `DotProductAttention` has none: False).
        kernel_initializer: initializer of the four kernels.
        seed: optional int: the kernels' initializers are seeded `seed`, `seed + 1`,
            `seed + 2`, `seed + 3` (when they accept a seed).
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: `(batch, time, dim)`.
        mask: optional bool `(batch, time)`: False positions get no attention.
        return_attention_scores: also return `A` `(batch, num_heads, time, time)`.

    Reference:
        A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3.2;
        UiB INF265 project 3 (`DotProductAttention`, `MultiHeadAttention`).
    """

    def __init__(self, num_heads, key_dim, value_dim=None, output_dim=None, use_bias=False,
                 kernel_initializer="glorot_uniform", seed=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim),
                            ("value_dim", value_dim), ("output_dim", output_dim)):
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}.")
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        self.output_dim = int(output_dim) if output_dim else None
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.supports_masking = True

    def _initializer(self, offset):
        config = keras.initializers.serialize(self.kernel_initializer)
        if self.seed is not None and "seed" in config.get("config", {}):
            config["config"]["seed"] = self.seed + offset
        return keras.initializers.deserialize(config)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"MultiHeadSelfAttention expects inputs (batch, time, dim) "
                             f"with a known dim, got shape {input_shape}.")
        dim = input_shape[-1]
        out = self.output_dim or dim
        heads, k, v = self.num_heads, self.key_dim, self.value_dim
        shapes = {"query": ((dim, heads, k), (heads, k)), "key": ((dim, heads, k), (heads, k)),
                  "value": ((dim, heads, v), (heads, v)),
                  "attention_output": ((heads, v, out), (out,))}
        self.kernels, self.biases = {}, {}
        for offset, (name, (kernel, bias)) in enumerate(shapes.items()):
            self.kernels[name] = self.add_weight(name=f"{name}_kernel", shape=kernel,
                                                 initializer=self._initializer(offset))
            if self.use_bias:
                self.biases[name] = self.add_weight(name=f"{name}_bias", shape=bias,
                                                    initializer="zeros")

    def _project(self, x, name):
        y = ops.einsum("btd,dhk->bthk", x, self.kernels[name])
        return y + self.biases[name] if self.use_bias else y

    def call(self, inputs, mask=None, return_attention_scores=False):
        q = self._project(inputs, "query") / math.sqrt(self.key_dim)
        k = self._project(inputs, "key")
        v = self._project(inputs, "value")
        scores = ops.einsum("bshk,bthk->bhst", q, k)  # (batch, heads, query s, key t)
        if mask is not None:
            allowed = ops.cast(mask, "bool")[:, None, None, :]
            scores = ops.where(allowed, scores, ops.full_like(scores, -1e9))
        attention = ops.softmax(scores, axis=-1)
        heads = ops.einsum("bhst,bthv->bshv", attention, v)
        outputs = ops.einsum("bshv,hvo->bso", heads, self.kernels["attention_output"])
        if self.use_bias:
            outputs = outputs + self.biases["attention_output"]
        return (outputs, attention) if return_attention_scores else outputs

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim or input_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim,
                      value_dim=self.value_dim, output_dim=self.output_dim,
                      use_bias=self.use_bias,
                      kernel_initializer=keras.initializers.serialize(
                          self.kernel_initializer),
                      seed=self.seed)
        return config
