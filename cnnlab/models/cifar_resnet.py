"""The CIFAR-10 nets of He et al. 2016, Section 4.2: plain and residual, 6n+2 weight layers, one definition.

A 3x3 conv of 16 filters, then three stages of n blocks at 16, 32 and 64 filters (each divided by
`width_divisor`), the first block of stages 2 and 3 with stride 2, global average pooling and a dense
classifier. A block is conv-BN-ReLU-conv-BN, then (residual nets) the shortcut is added, then ReLU.
Shortcuts where the shape changes: option "A" zero-pads the extra channels of the strided input
(`x[:, ::2, ::2]`), parameter-free, so plain and residual nets have the same parameters; option "B" is a
1x1 conv + BN projection. Other shortcuts are identities.

Convs have no bias (BN's beta takes its place); BN uses momentum 0.9 and epsilon 1e-5 (Torch's
defaults, which track the batch statistics within short runs). `weight_decay` is the papers' coupled decay:
L2(weight_decay / 2) on every kernel, so the gradient gains weight_decay * W.

Layer names: `stem_conv/bn/relu`, `stage<s>_block<b>_conv1/bn1/relu1/conv2/bn2/add/out` (no `add` in
plain nets), `stage<s>_block<b>_shortcut` (A) or `stage<s>_block<b>_shortcut_conv/bn` (B), `avg_pool`,
`logits` (`predictions` with a `classifier_activation`).
"""

import keras
from keras import layers, ops

from cnnlab.init import layer_initializer
from cnnlab.models.convnet import headless

SHORTCUTS = ("A", "B")
STAGE_FILTERS = (16, 32, 64)
# Table 6: parameters in millions and CIFAR-10 test error in percent (best of 5 runs; 110: best, mean 6.61)
PAPER_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}
PAPER_TEST_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43}


def depth_of(n: int) -> int:
    """Weight layers of a net with `n` blocks per stage: 6n + 2."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"blocks per stage must be a positive int, got {n!r}")
    return 6 * n + 2


def blocks_for(depth: int) -> int:
    """Blocks per stage n of a net of `depth` = 6n + 2 weight layers (20 -> 3, 56 -> 9, 110 -> 18)."""
    if not (isinstance(depth, int) and depth >= 8 and (depth - 2) % 6 == 0):
        raise ValueError(f"depth must be 6n+2 for n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}")
    return (depth - 2) // 6


@keras.saving.register_keras_serializable(package="cnnlab")
class ZeroPadShortcut(layers.Layer):
    """Option A's shortcut: the input subsampled by `strides` (x[:, ::s, ::s]) and its channels zero-padded at
    the end up to `filters`. No parameters."""

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.strides = filters, strides

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.filters - x.shape[-1]]])

    def compute_output_shape(self, input_shape):
        batch, h, w, _ = input_shape
        return batch, *(None if n is None else -(-n // self.strides) for n in (h, w)), self.filters

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def cifar_resnet(depth=20, *, include_top=True, pooling=None, classes=10, classifier_activation=None,
                 input_shape=(32, 32, 3), residual=True, shortcut="A", width_divisor=1, init="he_normal",
                 weight_decay=0.0, seed=None, name=None) -> keras.Model:
    """ResNet-`depth` (`residual`) or plain-`depth`, named `resnet<depth>` / `plain<depth>` unless `name`.
    `init` names a `cnnlab.init` scheme, seeded per weight layer from `seed` (in depth order, the same in
    plain and residual nets; option B's projections after the classifier). `include_top`, `pooling` and
    `classifier_activation` as in `conv_stack` (the classifier returns logits by default)."""
    n = blocks_for(depth)
    if shortcut not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
    if not (isinstance(width_divisor, int) and width_divisor >= 1 and 16 % width_divisor == 0):
        raise ValueError(f"width_divisor must divide 16 (1, 2, 4, 8 or 16), got {width_divisor!r}")
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    weight_layer = iter(range(1, depth + 1))
    projection = iter(range(depth + 1, depth + 3))

    def conv_bn(x, filters, size, strides, prefix, index, suffix=""):
        x = layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=False,
                          kernel_initializer=layer_initializer(init, seed, index), kernel_regularizer=regularizer,
                          name=f"{prefix}_conv{suffix}")(x)
        return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{prefix}_bn{suffix}")(x)

    x = inputs = keras.Input(input_shape)
    x = layers.Activation("relu", name="stem_relu")(conv_bn(x, 16 // width_divisor, 3, 1, "stem", next(weight_layer)))
    for stage, filters in enumerate(STAGE_FILTERS, start=1):
        filters //= width_divisor
        for block in range(1, n + 1):
            prefix, strides = f"stage{stage}_block{block}", 2 if block == 1 and stage > 1 else 1
            shortcut_x = x
            x = conv_bn(x, filters, 3, strides, prefix, next(weight_layer), "1")
            x = layers.Activation("relu", name=f"{prefix}_relu1")(x)
            x = conv_bn(x, filters, 3, 1, prefix, next(weight_layer), "2")
            if residual:
                if strides != 1 or shortcut_x.shape[-1] != filters:
                    if shortcut == "A":
                        shortcut_x = ZeroPadShortcut(filters, strides, name=f"{prefix}_shortcut")(shortcut_x)
                    else:
                        shortcut_x = conv_bn(shortcut_x, filters, 1, strides, f"{prefix}_shortcut", next(projection))
                x = layers.Add(name=f"{prefix}_add")([shortcut_x, x])
            x = layers.Activation("relu", name=f"{prefix}_out")(x)
    name = name or f"{'resnet' if residual else 'plain'}{depth}"
    if not include_top:
        return headless(inputs, x, pooling, name)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(classes, activation=classifier_activation, kernel_regularizer=regularizer,
                           kernel_initializer=layer_initializer(init, seed, next(weight_layer)),
                           name="predictions" if classifier_activation else "logits")(x)
    return keras.Model(inputs, outputs, name=name)


def step_schedule(steps: int, learning_rate: float = 0.1, warmup_steps: int = 0, warmup_rate: float = 0.01):
    """He et al.'s CIFAR schedule scaled to `steps`: `warmup_rate` for the first `warmup_steps` (they used 0.01 for
    ResNet-110's first ~400 iterations), then `learning_rate`, divided by 10 at 50% and 75% of the steps (32k and
    48k of 64k iterations)."""
    boundaries = [steps // 2, 3 * steps // 4]
    if not 0 <= warmup_steps < boundaries[0]:
        raise ValueError(f"warmup_steps must be between 0 and half the {steps} steps, got {warmup_steps}")
    values = [learning_rate, learning_rate / 10, learning_rate / 100]
    if warmup_steps:
        boundaries, values = [warmup_steps, *boundaries], [warmup_rate, *values]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
