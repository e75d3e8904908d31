"""GoogLeNet (Szegedy et al. 2015, Table 1; Caffe's layout), no auxiliary heads."""

import keras
from keras import layers

from cnnlab.layers import LocalResponseNormalization, inception_module
from cnnlab.models.convnet import _check_pooling, headless

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
TABLE1_ROWS = [
    "conv1",
    "pool1",
    "conv2",
    "pool2",
    "3a",
    "3b",
    "pool3",
    "4a",
    "4b",
    "4c",
    "4d",
    "4e",
    "pool4",
    "5a",
    "5b",
    "avgpool",
    "dropout",
    "linear",
]
_PREFIX_ROW = {
    "conv1": "conv1",
    "pool1": "pool1",
    "conv2": "conv2",
    "pool2": "pool2",
    "pool3": "pool3",
    "pool4": "pool4",
    "pool5": "avgpool",
    "dropout": "dropout",
    "linear": "linear",
}


def row_of(layer_name):
    """The Table 1 row (a TABLE1_ROWS key) of a layer; None for the input layer."""
    parts = layer_name.split("_")
    if parts[0] == "inception":
        return parts[1]
    return _PREFIX_ROW.get(parts[0])


def googlenet(*, include_top=True, pooling=None, classes=1000, classifier_activation="softmax",
              input_shape=(224, 224, 3)):
    """GoogLeNet as in Table 1; 'same' padding gives Caffe's sizes 112-56-28-14-7-1.

    The stem follows the Caffe model: conv1 -> pool1 -> LRN -> conv2 reduce -> conv2 ->
    LRN -> pool2. The 7x7/1 average pool is global (the same at 224x224, and other input
    sizes work too). `include_top`, `pooling` and `classifier_activation` as in
    keras.applications: without the top (avg pool, dropout, linear) the net ends in
    inception 5b's 7x7x1024 map.
    """
    _check_pooling(pooling)
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(
        64, 7, strides=2, padding="same", activation="relu", name="conv1_7x7_s2"
    )(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_3x3_s2")(x)
    x = LocalResponseNormalization(name="pool1_norm1")(x)
    x = layers.Conv2D(64, 1, activation="relu", name="conv2_3x3_reduce")(x)
    x = layers.Conv2D(192, 3, padding="same", activation="relu", name="conv2_3x3")(x)
    x = LocalResponseNormalization(name="conv2_norm2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2_3x3_s2")(x)
    for row, filters in INCEPTION.items():
        x = inception_module(x, *filters, name=f"inception_{row}")
        if row in ("3b", "4e"):
            pool = f"pool{row[0]}_3x3_s2"
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=pool)(x)
    if not include_top:
        return headless(inputs, x, pooling, "googlenet")
    x = layers.GlobalAveragePooling2D(keepdims=True, name="pool5_7x7_s1")(x)
    x = layers.Dropout(0.4, name="dropout")(x)
    x = layers.Flatten(name="linear_flatten")(x)
    outputs = layers.Dense(classes, activation=classifier_activation, name="linear")(x)
    return keras.Model(inputs, outputs, name="googlenet")


def mini_googlenet(*, input_shape=(28, 28, 1), divisor=4, rows=("3a", "3b", "4a"), stem=48):
    """A small GoogLeNet backbone of real inception modules: Table 1's filter counts divided by
    `divisor` for the given `rows`, on a conv3x3(`stem`) -> 2x2 pool stem, with a 2x2 max pool where
    the row's stage changes (3b -> 4a). Returns the last feature map (28x28 -> 7x7 by default): a
    backbone that `heads.with_head` tops, so no `include_top`, `pooling`, `classes` or `classifier_activation`."""
    unknown = [r for r in rows if r not in INCEPTION]
    if unknown:
        raise ValueError(f"unknown inception rows {unknown}; choose from {list(INCEPTION)}")
    x = inputs = keras.Input(input_shape)
    x = layers.Conv2D(stem, 3, padding="same", activation="relu", name="conv1_3x3")(x)
    x = layers.MaxPooling2D(2, name="pool1_2x2")(x)
    for i, row in enumerate(rows):
        if i and row[0] != rows[i - 1][0]:
            x = layers.MaxPooling2D(2, name=f"pool{rows[i - 1][0]}_2x2")(x)
        filters = [max(1, f // divisor) for f in INCEPTION[row]]
        x = inception_module(x, *filters, name=f"inception_{row}")
    return keras.Model(inputs, x, name="mini_googlenet")
