"""Custom layers and blocks: local response normalisation, per-position bias, inception.

- `LocalResponseNormalization`: Krizhevsky et al. 2012, Section 3.3 (AlexNet; also
  VGG's A-LRN and GoogLeNet).
- `PositionBias`: the AlphaGo policy net's "different bias for each position" (Silver
  et al. 2016, Methods).
- `inception_module`: Szegedy et al. 2015, Figure 2, (a) naive and (b) with dimension
  reductions.
"""

import keras
from keras import layers, ops


def local_response_normalization(inputs, k: float, n: int, alpha: float, beta: float):
    """Cross-channel LRN in `keras.ops` (channels last), for the backends without TensorFlow's kernel."""
    radius, channels = n // 2, inputs.shape[-1]
    squares = ops.pad(ops.square(inputs), [[0, 0]] * (len(inputs.shape) - 1) + [[radius, radius]])
    window = sum(squares[..., i:i + channels] for i in range(n))
    return inputs / ops.power(k + alpha * window, beta)


@keras.saving.register_keras_serializable(package="cnnlab")
class LocalResponseNormalization(layers.Layer):
    """Cross-channel local response normalisation, no trainable parameters.

    Krizhevsky et al. 2012, Section 3.3, over the channel axis (channels last):

        b[i] = a[i] / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a[j]^2)^beta

    with the paper's constants k=2, n=5, alpha=1e-4, beta=0.75 as defaults.
    """

    def __init__(self, k=2.0, n=5, alpha=1e-4, beta=0.75, **kwargs):
        kwargs.setdefault("dtype", "float32")  # under mixed_bfloat16 too: TensorFlow has no bfloat16 LRN kernel
        super().__init__(**kwargs)
        if n < 1 or n % 2 == 0:
            raise ValueError(f"n must be a positive odd window size, got {n}")
        self.k, self.n, self.alpha, self.beta = k, n, alpha, beta

    def call(self, inputs):
        # alpha multiplies the plain sum of squares over channels d - n//2 .. d + n//2 (clipped at the edges),
        # as in the paper and in TensorFlow's kernel. (Caffe's LRN divides alpha by n: Caffe's alpha=1e-4 with
        # local_size=5 is alpha=2e-5 here.)
        radius = self.n // 2
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.nn.local_response_normalization(inputs, depth_radius=radius, bias=self.k, alpha=self.alpha,
                                                      beta=self.beta)
        return local_response_normalization(inputs, self.k, self.n, self.alpha, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "k": self.k,
            "n": self.n,
            "alpha": self.alpha,
            "beta": self.beta,
        }


@keras.saving.register_keras_serializable(package="cnnlab")
class PositionBias(layers.Layer):
    """Adds a learnable bias per position and channel (H*W*C params, zero-init)."""

    def build(self, input_shape):
        self.bias = self.add_weight(
            shape=tuple(input_shape[1:]), initializer="zeros", name="bias"
        )

    def call(self, inputs):
        return inputs + self.bias

    def compute_output_shape(self, input_shape):
        return input_shape


def inception_module(
    x,
    f1x1,
    f3x3_reduce,
    f3x3,
    f5x5_reduce,
    f5x5,
    pool_proj,
    name,
    reductions=True,
):
    """GoogLeNet inception module (Szegedy et al. 2015, Figure 2; filters: Table 1).

    Four branches concatenated on channels, all stride 1, 'same' padding, ReLU convs:
    1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5; 3x3 max pool -> 1x1 projection. With
    `reductions=False` it is the naive module (Figure 2a): 1x1, 3x3 and 5x5 convs on
    the input and the bare pool; `f3x3_reduce`, `f5x5_reduce` and `pool_proj` are
    ignored and the pool passes all input channels through.
    """

    def conv(t, filters, size, suffix):
        return layers.Conv2D(
            filters, size, padding="same", activation="relu", name=f"{name}_{suffix}"
        )(t)

    branches = [conv(x, f1x1, 1, "1x1")]
    for size, reduce, filters in ((3, f3x3_reduce, f3x3), (5, f5x5_reduce, f5x5)):
        t = conv(x, reduce, 1, f"{size}x{size}_reduce") if reductions else x
        branches.append(conv(t, filters, size, f"{size}x{size}"))
    pool = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branches.append(conv(pool, pool_proj, 1, "pool_proj") if reductions else pool)
    return layers.Concatenate(name=f"{name}_concat")(branches)
