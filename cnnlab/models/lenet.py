"""LeNet-5 (LeCun et al. 1998, Figure 2), as a plain Keras model."""

import keras
from keras import layers

from cnnlab.models.convnet import _check_pooling, headless


def lenet5(*, include_top=True, pooling=None, classes=10, classifier_activation="softmax", input_shape=(32, 32, 1),
           activation="tanh"):
    """C1 6@5x5 -> S2 avg pool -> C3 16@5x5 -> S4 -> C5 120@5x5 -> F6 84 -> output.

    Simplified in the usual way: C3 sees all 6 maps of S2 (LeCun's Table I connects
    each C3 map to only 3, 4 or 6 of them: 1,516 instead of 2,416 parameters), S2/S4
    are plain average pools (no trainable coefficient and bias) and the output is a
    softmax instead of RBF units. 61,706 parameters for 32x32x1 input and 10 classes.

    `include_top`, `pooling` and `classifier_activation` as in keras.applications: without
    the top (F6 and the output) the net ends in C5's map (1x1x120 at 32x32).
    """
    _check_pooling(pooling)
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(6, 5, activation=activation, name="c1")(inputs)
    x = layers.AveragePooling2D(2, name="s2")(x)
    x = layers.Conv2D(16, 5, activation=activation, name="c3")(x)
    x = layers.AveragePooling2D(2, name="s4")(x)
    x = layers.Conv2D(120, 5, activation=activation, name="c5")(x)
    if not include_top:
        return headless(inputs, x, pooling, "lenet5")
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation=activation, name="f6")(x)
    outputs = layers.Dense(classes, activation=classifier_activation, name="output")(x)
    return keras.Model(inputs, outputs, name="lenet5")
