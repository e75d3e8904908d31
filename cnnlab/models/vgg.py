"""VGG configurations A-E as data (Simonyan & Zisserman 2015, Table 1), d2l style.

Each configuration is five stages; a stage lists its conv layers by kernel size (3, or
1 for C's 1x1 convs, 5 for the shallow control) and may hold the token "LRN". Every
stage ends in a 2x2 max pool.
"""

import keras
from keras import layers

from cnnlab.init import layer_initializer
from cnnlab.layers import LocalResponseNormalization
from cnnlab.models.convnet import headless

CONFIGS = {
    "A": ((3,), (3,), (3, 3), (3, 3), (3, 3)),
    "A-LRN": ((3, "LRN"), (3,), (3, 3), (3, 3), (3, 3)),
    "B": ((3, 3), (3, 3), (3, 3), (3, 3), (3, 3)),
    "C": ((3, 3), (3, 3), (3, 3, 1), (3, 3, 1), (3, 3, 1)),
    "D": ((3, 3), (3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    "E": ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)),
    # Section 4.1: B with each pair of 3x3 convs replaced by a single 5x5 conv.
    "B-5x5": ((5,), (5,), (5,), (5,), (5,)),
}
WIDTHS = (64, 128, 256, 512, 512)
# What the paper reports for the configurations, beside them: Table 2's parameters in millions and
# Table 3's ImageNet top-1 error (single scale, S=256) in percent.
PAPER_PARAMS_M = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}
PAPER_TOP1_ERROR = {"A": 29.6, "A-LRN": 29.7, "B": 28.7, "C": 28.1, "D": 27.0, "E": 27.3}


def weight_layers(config):
    """Number of weight layers (convs plus three FC layers), as in Table 1's header."""
    return sum(spec != "LRN" for stage in CONFIGS[config] for spec in stage) + 3


def vgg(config="D", *, include_top=True, pooling=None, classes=1000, classifier_activation="softmax",
        input_shape=(224, 224, 3), width_divisor=1, fc_units=4096, dropout=0.5, init="glorot_uniform", seed=None):
    """Build VGG configuration `config` with keras.applications layer names.

    Widths 64-128-256-512-512 divided by `width_divisor`, 'same' convs with ReLU, 2x2
    max pools, then flatten, two FC layers of `fc_units` with dropout, and a softmax. D
    and E at the defaults have exactly the parameters of keras.applications VGG16/VGG19.
    `init` names the `cnnlab.init` scheme of every conv and dense layer's kernel, seeded
    per weight layer (in depth order) from `seed` (None: unseeded). `include_top`,
    `pooling` and `classifier_activation` as in keras.applications (None gives logits).
    """
    if config not in CONFIGS:
        raise ValueError(f"Unknown VGG config {config!r}; choose from {list(CONFIGS)}")
    inputs = keras.Input(input_shape)
    x = inputs
    weight_layer = iter(range(1, weight_layers(config) + 1))
    for i, (stage, width) in enumerate(zip(CONFIGS[config], WIDTHS), start=1):
        j = 0
        for spec in stage:
            if spec == "LRN":
                x = LocalResponseNormalization(name=f"block{i}_lrn")(x)
            else:
                j += 1
                x = layers.Conv2D(
                    width // width_divisor,
                    spec,
                    padding="same",
                    activation="relu",
                    kernel_initializer=layer_initializer(init, seed, next(weight_layer)),
                    name=f"block{i}_conv{j}",
                )(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{i}_pool")(x)
    if not include_top:
        return headless(inputs, x, pooling, f"vgg_{config}")
    x = layers.Flatten(name="flatten")(x)
    for k in (1, 2):
        x = layers.Dense(fc_units, activation="relu",
                         kernel_initializer=layer_initializer(init, seed, next(weight_layer)), name=f"fc{k}")(x)
        x = layers.Dropout(dropout, name=f"fc{k}_dropout")(x)
    outputs = layers.Dense(classes, activation=classifier_activation,
                           kernel_initializer=layer_initializer(init, seed, next(weight_layer)), name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"vgg_{config}")
