"""Fully convolutional networks: convolutionalisation, d-regularly sparse kernels, and FCN / U-Net-like
segmentation nets.

- `convolutionalize` (Long et al. 2015, Sec. 3.1): a classifier's first Dense layer on an MxMxC map
  becomes a conv with MxM kernels (valid padding), every later Dense a 1x1 conv, weights copied exactly.
  On the training size the logits are the same. On a larger canvas score map entry (u, v) is the
  classifier on the crop at (s*u, s*v), s = `total_stride`, exactly only when every conv has
  padding="valid": with "same" padding the classifier sees zeros around each crop where the canvas net
  sees the neighbouring pixels, so every entry differs (`conv_stack`'s nets are "same": use
  `patch_classifier` for the crop and patch claims).
- `dense_sparse` (Li, Zhao & Wang 2014, Algorithm 1): all strides set to 1, each later conv and pooling
  kernel dilated by the product d of the earlier strides; its output at every pixel is the classifier on
  the patch anchored (top-left) there, what `cnnlab.patches.patch_by_patch` computes one patch at a time.
- `fcn` (FCN-32s/16s/8s) and `encoder_decoder` (U-Net-like) for 64x64 canvases. The backbone has four
  conv blocks, each closed by a 2x2 max pool (`block<i>_conv<j>`, `block<i>_pool`, strides 2, 4, 8, 16),
  then `fc6`, `fc7` as convs. Long et al.'s names keep their fusion depth: "32s" scores the top (output
  stride 16 here), "16s" also fuses block3_pool (stride 8), "8s" also block2_pool (stride 4). As in the
  paper's Sec. 4, the x2 upsamplings are learned from a bilinear start, the final one stays bilinear.
  `backbone_classifier` is the same backbone as a 28x28 Fashion-MNIST classifier (the ImageNet
  pre-training of the paper, scaled); `fcn(classifier=...)` starts from its convolutionalised weights.
"""

from __future__ import annotations


import keras
import numpy as np
from keras import layers

from cnnlab.init import layer_initializer
from cnnlab.models.convnet import POOL, conv_stack

POOLS = (layers.MaxPooling2D, layers.AveragePooling2D)
PASS_THROUGH = (layers.Activation, layers.ReLU, layers.BatchNormalization, layers.Dropout)
FCN_SKIPS = {"32s": (), "16s": (3,), "8s": (3, 2)}  # the backbone blocks whose pools each variant fuses
ITEM_SIZE = 28  # the classifier's input: a Fashion-MNIST item


# --- convolutionalisation -------------------------------------------------------------------------


def _chain(model) -> list:
    """The model's layers in order, checked to be ones these conversions know (a chain of them: without
    merge layers a Keras model of these can only be one)."""
    known = (layers.Conv2D, layers.Flatten, layers.Dense, *POOLS, *PASS_THROUGH)
    chain = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    for layer in chain:
        if not isinstance(layer, known):
            raise ValueError(f"layer '{layer.name}' is a {type(layer).__name__}; allowed: Conv2D, MaxPooling2D, "
                             "AveragePooling2D, Activation, ReLU, BatchNormalization, Dropout, Flatten, Dense")
    return chain


def _copy(layer, **changes):
    """A new layer of `layer`'s class and config with `changes`; weights are set after it is called."""
    return type(layer).from_config({**layer.get_config(), **changes})


def _square(value, what: str, layer) -> int:
    value = (value, value) if isinstance(value, int) else tuple(value)
    if value[0] != value[1]:
        raise ValueError(f"layer '{layer.name}' has {what} {value}; allowed: square ones")
    return value[0]


def kernel_and_stride(layer) -> tuple[int, int]:
    """(kernel, stride) of a Conv2D or pooling layer, each checked to be square; a dilated conv is refused."""
    if isinstance(layer, layers.Conv2D):
        if _square(layer.dilation_rate, "dilation_rate", layer) != 1:
            raise ValueError(f"layer '{layer.name}' is dilated; allowed: dilation_rate 1")
        kernel = _square(layer.kernel_size, "kernel_size", layer)
    else:
        kernel = _square(layer.pool_size, "pool_size", layer)
    return kernel, _square(layer.strides, "strides", layer)


def convolutionalize(model, name: str | None = None) -> keras.Model:
    """A fully convolutional copy of the classifier `model` (convs and pools, Flatten, Dense layers) that
    takes any input size: the first Dense on an MxMxC map becomes Conv2D with MxM kernels, later ones 1x1
    convs, each keeping its layer's name and weights (Flatten's H, W, C order reshaped into the kernel)."""
    x = inputs = keras.Input((None, None, model.inputs[0].shape[-1]))
    kernel = None
    for layer in _chain(model):
        if isinstance(layer, layers.Flatten):
            if layer.data_format != "channels_last":
                raise ValueError(f"layer '{layer.name}' flattens channels_first; allowed: channels_last")
            kernel = tuple(layer.input.shape[1:3])
            continue
        if isinstance(layer, layers.Dense):
            if kernel is None:
                raise ValueError(f"Dense layer '{layer.name}' has no Flatten below it; allowed: Flatten then Dense")
            weights = layer.get_weights()
            conv = layers.Conv2D(layer.units, kernel, activation=layer.get_config()["activation"],
                                 use_bias=layer.use_bias, name=layer.name)
            x = conv(x)
            conv.set_weights([weights[0].reshape(*kernel, -1, layer.units), *weights[1:]])
            kernel = (1, 1)
            continue
        clone = _copy(layer)
        x = clone(x)
        clone.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name=name or f"{model.name}_fcn")


def total_stride(model) -> int:
    """The product of the strides of the model's convs and pools: its score map's step in input pixels."""
    stride = 1
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, *POOLS)):
            stride *= _square(layer.strides, "strides", layer)
    return stride


def patch_classifier(layout=(16, POOL, 32, POOL), *, dense=(64,), kernel_size=5, name="patch_classifier",
                     **conv_stack_args) -> keras.Model:
    """`conv_stack` with padding="valid" in every conv (same names, init and arguments), the classifier for
    which crops and patches are exact. The default is LeNet-like: 28 -> 24 -> 12 -> 8 -> 4, a 4x4x32 map
    under the dense layers, a 28x28 receptive field and total stride 4."""
    model = conv_stack(layout, dense=dense, kernel_size=kernel_size, name=name, **conv_stack_args)
    return keras.models.clone_model(
        model, clone_function=lambda layer: _copy(layer, padding="valid") if isinstance(layer, layers.Conv2D)
        else _copy(layer))


# --- d-regularly sparse kernels -------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="cnnlab")
class DilatedPooling2D(layers.Layer):
    """Max or average pooling with stride 1 over a `pool_size` window whose taps lie `dilation_rate` pixels
    apart (Li et al.'s d-regularly sparse pooling kernel), valid padding; any backend."""

    def __init__(self, pool_size=2, dilation_rate=1, mode="max", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "average"):
            raise ValueError(f"pooling mode '{mode}' unknown; allowed: max, average")
        self.pool_size, self.dilation_rate, self.mode = int(pool_size), int(dilation_rate), mode

    def _reduce(self, x, axis):
        span = (self.pool_size - 1) * self.dilation_rate
        taps = []
        for a in range(self.pool_size):
            start, end = a * self.dilation_rate, a * self.dilation_rate - span
            taps.append(x[:, start:end or None] if axis == 1 else x[:, :, start:end or None])
        out = taps[0]
        for tap in taps[1:]:
            out = keras.ops.maximum(out, tap) if self.mode == "max" else out + tap
        return out

    def call(self, inputs):
        out = self._reduce(self._reduce(inputs, 1), 2)
        return out if self.mode == "max" else out / self.pool_size**2

    def compute_output_shape(self, input_shape):
        span = (self.pool_size - 1) * self.dilation_rate
        n, h, w, c = input_shape
        return n, None if h is None else h - span, None if w is None else w - span, c

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "dilation_rate": self.dilation_rate,
                "mode": self.mode}


def _check_valid(layer, kernel: int):
    if kernel > 1 and layer.padding != "valid":
        raise ValueError(f"layer '{layer.name}' has padding='{layer.padding}'; allowed: 'valid' (with 'same' "
                         "padding a patch's border zeros differ from its neighbours: use patch_classifier)")


def dense_sparse(model, name: str | None = None) -> keras.Model:
    """Li et al.'s net for every pixel at once from a classifier (or its convolutionalised copy): strides set
    to 1, each conv and pool dilated by the product of the strides below it. On an HxW image its output is
    (H-P+1)x(W-P+1)xK, entry (i, j) the classifier on the PxP patch anchored at (i, j); P is the
    classifier's input size (the receptive field R when the input size is unknown). When R < P (pools that
    drop a last row), the R-based map's last P-R rows and columns would be patches hanging over the image
    edge: they are cropped."""
    net = model if not any(isinstance(layer, layers.Flatten) for layer in model.layers) else convolutionalize(model)
    x = inputs = keras.Input((None, None, model.inputs[0].shape[-1]))
    dilation, field = 1, 1
    for layer in _chain(net):
        if isinstance(layer, layers.Conv2D):
            kernel, stride = kernel_and_stride(layer)
            _check_valid(layer, kernel)
            new = _copy(layer, strides=(1, 1), dilation_rate=(dilation, dilation), padding="valid")
        elif isinstance(layer, POOLS):
            kernel, stride = kernel_and_stride(layer)
            _check_valid(layer, kernel)
            mode = "max" if isinstance(layer, layers.MaxPooling2D) else "average"
            new = DilatedPooling2D(kernel, dilation, mode, name=layer.name)
        else:
            kernel, stride, new = 1, 1, _copy(layer)
        x = new(x)
        new.set_weights(layer.get_weights())
        field += (kernel - 1) * dilation
        dilation *= stride
    patch = model.inputs[0].shape[1]
    if patch is not None and patch > field:
        x = layers.Cropping2D(((0, patch - field), (0, patch - field)), name="overhang_crop")(x)
    return keras.Model(inputs, x, name=name or f"{model.name}_dense")


# --- segmentation nets ------------------------------------------------------------------------------


def bilinear_kernel(size: int, channels: int) -> np.ndarray:
    """A (size, size, channels, channels) Conv2DTranspose kernel that upsamples each channel by bilinear
    interpolation (Long et al.'s `upsample_filt`), zero between channels: factor f = (size + 1) // 2."""
    if size < 1 or channels < 1:
        raise ValueError(f"bilinear kernel of size {size}, {channels} channels; allowed: both >= 1")
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - np.abs(np.arange(size) - centre) / factor
    kernel = np.zeros((size, size, channels, channels), dtype=np.float32)
    kernel[:, :, np.arange(channels), np.arange(channels)] = np.outer(taps, taps)[..., None]
    return kernel


@keras.saving.register_keras_serializable(package="cnnlab")
class BilinearInitializer(keras.initializers.Initializer):
    """Initialises a square Conv2DTranspose kernel (size, size, C, C) with `bilinear_kernel`."""

    def __call__(self, shape, dtype=None):
        if shape[0] != shape[1] or shape[2] != shape[3]:
            raise ValueError(f"bilinear kernel shape {tuple(shape)}; allowed: (k, k, C, C)")
        return keras.ops.convert_to_tensor(bilinear_kernel(shape[0], shape[2]), dtype=dtype)


def upsampling(factor: int, channels: int, name: str) -> layers.Conv2DTranspose:
    """Learnable x`factor` upsampling: Conv2DTranspose with 2f x 2f kernels, stride f, "same" padding, no
    bias, initialised as bilinear interpolation (half-pixel centres, as tf.image.resize)."""
    return layers.Conv2DTranspose(channels, 2 * factor, strides=factor, padding="same", use_bias=False,
                                  kernel_initializer=BilinearInitializer(), name=name)


def _blocks(x, widths, convs_per_block, init, seed) -> tuple:
    """The backbone's conv blocks, each closed by a 2x2 max pool; returns (top, the pools by block)."""
    pools, index = {}, 0
    for i, width in enumerate(widths, 1):
        for j in range(1, convs_per_block + 1):
            index += 1
            x = layers.Conv2D(width, 3, padding="same", activation="relu",
                              kernel_initializer=layer_initializer(init, seed, index), name=f"block{i}_conv{j}")(x)
        x = pools[i] = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    return x, pools


def _top_size(blocks: int, size: int = ITEM_SIZE) -> int:
    for _ in range(blocks):
        size //= 2
    if size < 1:
        raise ValueError(f"{blocks} blocks pool a {ITEM_SIZE}x{ITEM_SIZE} item away; allowed: at most 4")
    return size


def backbone_classifier(*, classes=10, widths=(16, 32, 64, 128), fc=(128, 128), convs_per_block=1, init=None,
                        seed=None, name="fcn_backbone") -> keras.Model:
    """The segmentation backbone as a 28x28 classifier (28 -> 14 -> 7 -> 3 -> 1 with four blocks), then
    Flatten, `fc6`, `fc7` (ReLU) and `logits`: trained on Fashion-MNIST items, the FCNs' pre-training. The FCNs
    copy all of it but the logits, so it is always whole and on an item (no `include_top`, `pooling`,
    `classifier_activation` or `input_shape`)."""
    x = inputs = keras.Input((ITEM_SIZE, ITEM_SIZE, 1))
    x, _ = _blocks(x, widths, convs_per_block, init, seed)
    x = layers.Flatten(name="flatten")(x)
    for k, units in enumerate(fc, 6):
        x = layers.Dense(units, activation="relu", kernel_initializer=layer_initializer(init, seed, 100 + k),
                         name=f"fc{k}")(x)
    return keras.Model(inputs, layers.Dense(classes, name="logits")(x), name=name)


def copy_backbone(classifier, model) -> list[str]:
    """Copy the convolutionalised `classifier`'s weights into `model`'s layers of the same name (logits
    excepted); returns the names copied. A name whose weight shapes differ is a ValueError."""
    source = {layer.name: layer for layer in convolutionalize(classifier).layers if layer.get_weights()}
    copied = []
    for layer in model.layers:
        if layer.name in source and layer.name != "logits":
            weights = source[layer.name].get_weights()
            if [w.shape for w in weights] != [tuple(w.shape) for w in layer.get_weights()]:
                raise ValueError(f"layer '{layer.name}' differs in shape from the classifier's; allowed: the same "
                                 "widths, fc and convs_per_block")
            layer.set_weights(weights)
            copied.append(layer.name)
    if not copied:
        raise ValueError(f"no layer of '{model.name}' is named as one of classifier '{classifier.name}'")
    return copied


def fcn(variant="32s", *, classes=11, input_shape=(64, 64, 1), classifier=None, fixed=False, widths=(16, 32, 64, 128),
        fc=(128, 128), convs_per_block=1, init=None, seed=None, name=None) -> keras.Model:
    """FCN-32s/16s/8s (Long et al. 2015, Fig. 3) on the four-block backbone: `fc6` (a kernel of the
    classifier's top map size, "same" padding), `fc7`, a zero-initialised 1x1 class scorer `score_fr`; each
    fused pool adds its own zero-initialised scorer `score_pool<i>` to the x2 upsampled scores
    (`upscore_pool<i>`, learnable, bilinear at the start), and `upscore` (fixed bilinear) brings the result
    up to the input size. Output: per-pixel logits (H, W, classes); H, W multiples of 16 (no classifier top:
    no `include_top`, `pooling` or `classifier_activation`).

    `classifier` (a trained `backbone_classifier`) gives the backbone, fc6 and fc7 their start; `fixed`
    trains only the class scorers (`score_*`), Long et al.'s FCN-32s-fixed baseline when variant is "32s"."""
    if variant not in FCN_SKIPS:
        raise ValueError(f"FCN variant '{variant}' unknown; allowed: {', '.join(FCN_SKIPS)}")
    x = inputs = keras.Input(input_shape)
    x, pools = _blocks(x, widths, convs_per_block, init, seed)
    for k, units in enumerate(fc, 6):
        kernel = _top_size(len(widths)) if k == 6 else 1
        x = layers.Conv2D(units, kernel, padding="same", activation="relu",
                          kernel_initializer=layer_initializer(init, seed, 100 + k), name=f"fc{k}")(x)
    score = layers.Conv2D(classes, 1, kernel_initializer="zeros", name="score_fr")(x)
    for block in FCN_SKIPS[variant]:
        if block >= len(widths):
            raise ValueError(f"variant '{variant}' fuses block {block}; allowed with {len(widths)} blocks: 32s")
        up = upsampling(2, classes, f"upscore_pool{block}")(score)
        skip = layers.Conv2D(classes, 1, kernel_initializer="zeros", name=f"score_pool{block}")(pools[block])
        score = layers.Add(name=f"fuse_pool{block}")([up, skip])
    factor = 2 ** (len(widths) - len(FCN_SKIPS[variant]))
    final = upsampling(factor, classes, "upscore")
    final.trainable = False
    logits = final(score)
    model = keras.Model(inputs, logits, name=name or f"fcn_{variant}{'_fixed' if fixed else ''}")
    if classifier is not None:
        copy_backbone(classifier, model)
    if fixed:
        for layer in model.layers:
            layer.trainable = layer.name.startswith("score_")
    return model


def encoder_decoder(*, classes=11, input_shape=(64, 64, 1), widths=(16, 32, 64, 128), classifier=None, init=None,
                    seed=None, name="encoder_decoder") -> keras.Model:
    """A small U-Net (Ronneberger et al. 2015): conv blocks `block<i>_conv1` with 2x2 pools between them
    (strides 1 to 8 with four widths), then per level back up a learnable 2x2 up-convolution `up<i>` halving
    the channels, concatenated with the encoder block's output at that level (the skip), and a 3x3 conv
    `dec<i>_conv1`; a 1x1 conv `score` gives per-pixel logits (H, W, classes); H, W multiples of 8 (no
    classifier top: no `include_top`, `pooling` or `classifier_activation`).
    `classifier` (a `backbone_classifier` of the same widths) starts the encoder. Its full-resolution
    decoder costs about 4.5x the FCNs' multiply-adds at the same widths (78M vs 17M per 64x64 canvas)."""
    x = inputs = keras.Input(input_shape)
    skips = []
    for i, width in enumerate(widths, 1):
        if i > 1:
            x = layers.MaxPooling2D(2, name=f"block{i - 1}_pool")(x)
        x = layers.Conv2D(width, 3, padding="same", activation="relu",
                          kernel_initializer=layer_initializer(init, seed, i), name=f"block{i}_conv1")(x)
        skips.append(x)
    for i in range(len(widths) - 1, 0, -1):
        width = widths[i - 1]
        x = layers.Conv2DTranspose(width, 2, strides=2, name=f"up{i}")(x)
        x = layers.Concatenate(name=f"skip{i}")([x, skips[i - 1]])
        x = layers.Conv2D(width, 3, padding="same", activation="relu",
                          kernel_initializer=layer_initializer(init, seed, 50 + i), name=f"dec{i}_conv1")(x)
    model = keras.Model(inputs, layers.Conv2D(classes, 1, name="score")(x), name=name)
    if classifier is not None:
        copy_backbone(classifier, model)
    return model
