"""AlexNet (Krizhevsky et al. 2012, Figure 2) at 227x227, single or two towers."""

import keras
from keras import layers

from cnnlab.layers import LocalResponseNormalization
from cnnlab.models.convnet import _check_pooling, headless


def alexnet(*, include_top=True, pooling=None, classes=1000, classifier_activation="softmax",
            input_shape=(227, 227, 3), two_tower=False):
    """AlexNet: five conv layers, three max pools, two LRN layers and three FC layers.

    Order as in the paper (Section 3.5): conv1 -> norm1 -> pool1 -> conv2 -> norm2 ->
    pool2 -> conv3 -> conv4 -> conv5 -> pool5 -> fc6 -> fc7 -> fc8, ReLU everywhere,
    dropout 0.5 on the outputs of fc6 and fc7 (Section 4.2). The lecture table (seed
    001) puts each norm after its pool; LRN has no parameters and keeps the shape, so
    sizes 55-27-27-13-13-13-13-6 and parameter counts are the same either way.

    `two_tower=False`: the simplified single-tower net of the lecture table, 62,378,344
    parameters. `two_tower=True`: the paper's split over two GPUs as grouped convs:
    conv2, conv4 and conv5 see only their own tower's half of the maps (`groups=2`);
    conv1, conv3 and the FC layers connect everything: 60,965,224 parameters. Here the
    LRN windows run over all maps, so those straddling the tower boundary mix towers,
    which the paper's per-GPU LRN did not.

    `include_top`, `pooling` and `classifier_activation` as in keras.applications: without
    the top (fc6, fc7, fc8 and their dropout) the net ends in pool5's 6x6x256 map.
    """
    _check_pooling(pooling)
    groups = 2 if two_tower else 1
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)
    x = LocalResponseNormalization(name="norm1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(
        256, 5, padding="same", groups=groups, activation="relu", name="conv2"
    )(x)
    x = LocalResponseNormalization(name="norm2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(
        384, 3, padding="same", groups=groups, activation="relu", name="conv4"
    )(x)
    x = layers.Conv2D(
        256, 3, padding="same", groups=groups, activation="relu", name="conv5"
    )(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    name = "alexnet_two_tower" if two_tower else "alexnet"
    if not include_top:
        return headless(inputs, x, pooling, name)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dropout(0.5, name="drop6")(x)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    x = layers.Dropout(0.5, name="drop7")(x)
    outputs = layers.Dense(classes, activation=classifier_activation, name="fc8")(x)
    return keras.Model(inputs, outputs, name=name)
