"""AlphaGo's supervised-learning policy network (Silver et al. 2016, Methods)."""

import keras
from keras import layers

from cnnlab.layers import PositionBias


def alphago_policy(*, board_size=19, planes=48, filters=192, hidden_layers=11):
    """Conv 5x5 -> `hidden_layers` convs 3x3 -> 1x1 conv + position bias -> softmax.

    All convs stride 1 with 'same' zero padding (pad 2 for 5x5, 1 for 3x3) and ReLU; the
    match version used k = 192 filters. The output is a distribution over the
    board_size**2 points: the board sets both the input and the "classes", so there is no
    `input_shape`, `classes`, `include_top`, `pooling` or `classifier_activation`.
    """
    inputs = keras.Input((board_size, board_size, planes))
    x = layers.Conv2D(filters, 5, padding="same", activation="relu", name="conv1")(
        inputs
    )
    for i in range(2, hidden_layers + 2):
        x = layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"conv{i}"
        )(x)
    x = layers.Conv2D(1, 1, use_bias=False, name="conv_out")(x)
    x = PositionBias(name="position_bias")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name="alphago_policy")
