"""ResNet-18/34/50/101/152 (He et al. 2016, Table 1) in the keras.applications style.

Conv biases on, batch norm (epsilon 1.001e-5) after every conv, projection shortcuts
(1x1 conv + BN) where the shape changes, and in bottlenecks the stride on the first 1x1
conv, as in keras.applications ResNet50, whose parameter count `resnet(50)` matches.
"""

import keras
from keras import layers

from cnnlab.models.convnet import headless

# depth -> (bottleneck, blocks in conv2_x .. conv5_x)
DEPTHS = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
}


def _conv_bn(x, filters, size, name, strides=1, relu=True):
    x = layers.Conv2D(
        filters, size, strides=strides, padding="same", name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def residual_block(x, filters, stride, bottleneck, name):
    """Basic block (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1 to 4x filters), Figure 5."""
    out_filters = 4 * filters if bottleneck else filters
    shortcut = x
    if stride != 1 or x.shape[-1] != out_filters:
        shortcut = _conv_bn(x, out_filters, 1, f"{name}_0", stride, relu=False)
    if bottleneck:
        x = _conv_bn(x, filters, 1, f"{name}_1", stride)
        x = _conv_bn(x, filters, 3, f"{name}_2")
        x = _conv_bn(x, out_filters, 1, f"{name}_3", relu=False)
    else:
        x = _conv_bn(x, filters, 3, f"{name}_1", stride)
        x = _conv_bn(x, filters, 3, f"{name}_2", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def resnet(depth=50, *, include_top=True, pooling=None, classes=1000, classifier_activation="softmax",
           input_shape=(224, 224, 3)):
    """ResNet: conv1 7x7/2, 3x3/2 max pool, conv2_x..conv5_x, global avg pool, fc. `include_top`, `pooling`
    and `classifier_activation` as in keras.applications (None gives logits)."""
    if depth not in DEPTHS:
        raise ValueError(
            f"Unsupported ResNet depth {depth}; allowed depths: {sorted(DEPTHS)}"
        )
    bottleneck, blocks = DEPTHS[depth]
    inputs = keras.Input(input_shape)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=1.001e-5, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), blocks), start=2):
        for b in range(1, n + 1):
            stride = 2 if b == 1 and stage > 2 else 1
            x = residual_block(x, filters, stride, bottleneck, f"conv{stage}_block{b}")
    if not include_top:
        return headless(inputs, x, pooling, f"resnet{depth}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"resnet{depth}")
