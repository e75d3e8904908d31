"""Plain nets for initialisation and activation experiments: stacks of equal layers, no BN, no skips.

Hidden layers are named `hidden_1` ... `hidden_L` (their outputs are the post-activation values
that the signal-propagation probe measures); the classifier is `logits` (no softmax: use a
from_logits loss). Both are always whole nets ending in logits, so neither takes `include_top` or
`classifier_activation`, nor `pooling` (`plain_mlp` has no spatial map; `plain_cnn` always averages its own).
"""

import keras
from keras import layers

from cnnlab.init import layer_initializer


def plain_mlp(depth, *, classes=10, input_shape=(28, 28, 1), width=256, activation="relu", init="he_normal",
              dropout=0.0, input_dropout=0.0, max_norm=None, batch_norm=False, seed=None):
    """`depth` Dense(width) layers with `activation`, then a linear Dense(classes).

    Srivastava et al.'s regularisers, off by default: `input_dropout` and `dropout` drop that fraction of the
    input pixels and of each hidden layer's units in training (`input_dropout`, `dropout_<i>`); `max_norm`
    caps the L2 norm of every hidden unit's incoming weights (keras.constraints.MaxNorm). With `batch_norm`
    each hidden layer is Dense (no bias), BN, activation, as Ioffe & Szegedy place it."""
    for name, rate in (("input_dropout", input_dropout), ("dropout", dropout)):
        if not 0 <= rate < 1:
            raise ValueError(f"{name} must be a fraction in [0, 1), got {rate}")
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be positive or None, got {max_norm}")
    constraint = None if max_norm is None else keras.constraints.MaxNorm(max_norm, axis=0)
    x = inputs = keras.Input(input_shape)
    x = layers.Flatten(name="flatten")(x)
    if input_dropout:
        x = layers.Dropout(input_dropout, seed=seed, name="input_dropout")(x)
    for i in range(1, depth + 1):
        x = layers.Dense(width, activation=None if batch_norm else activation, use_bias=not batch_norm,
                         kernel_initializer=layer_initializer(init, seed, i), kernel_constraint=constraint,
                         name=f"hidden_{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"hidden_{i}_bn")(x)
            x = layers.Activation(activation, name=f"hidden_{i}_act")(x)
        if dropout:
            x = layers.Dropout(dropout, seed=None if seed is None else seed + i, name=f"dropout_{i}")(x)
    outputs = layers.Dense(classes, kernel_initializer=layer_initializer(init, seed, depth + 1), name="logits")(x)
    return keras.Model(inputs, outputs, name=f"plain_mlp_{depth}")


def plain_cnn(depth, *, classes=10, input_shape=(28, 28, 1), filters=32, activation="relu", init="he_normal",
              kernel_size=3, pool_every=0, seed=None):
    """`depth` Conv(kernel_size, filters, 'same') layers with `activation` (a 2x2 max pool after every
    `pool_every` of them when > 0), global average pooling, then a linear Dense(classes)."""
    x = inputs = keras.Input(input_shape)
    for i in range(1, depth + 1):
        x = layers.Conv2D(filters, kernel_size, padding="same", activation=activation,
                          kernel_initializer=layer_initializer(init, seed, i), name=f"hidden_{i}")(x)
        if pool_every and i % pool_every == 0 and i < depth:
            x = layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(classes, kernel_initializer=layer_initializer(init, seed, depth + 1), name="logits")(x)
    return keras.Model(inputs, outputs, name=f"plain_cnn_{depth}")

