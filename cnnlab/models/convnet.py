"""A small configurable conv stack in the keras.applications manner, for experiments that train many
nets on 28x28 images.

The layout is a list in the style of VGG's configurations: an int is a conv layer with that many filters,
"M" a 2x2 max pool; `dense` adds hidden fully connected layers on top. Weight layers are named
`hidden_1` ... `hidden_L` in depth order (what `cnnlab.probe` and `cnnlab.transfer` look for), a conv's
batch normalisation `hidden_<i>_bn`, the pools `pool_<j>` and the classifier `logits` (`predictions`
when it has an activation).

As in keras.applications: `include_top` puts Flatten, the dense layers and the classifier on the
features; without it `pooling` (None, "avg" or "max") says how the last feature map is returned. The
classifier returns logits unless `classifier_activation` is given (use a from_logits loss).
"""

import keras
from keras import layers

from cnnlab.init import layer_initializer

POOL = "M"
POOLINGS = (None, "avg", "max")


def stages_layout(stages, pool_after_last=True) -> list:
    """A layout from conv stages (each an int or a list of filter counts) with a 2x2 max pool after each
    stage, or only between stages when not `pool_after_last`: [[16], [32]] -> [16, "M", 32, "M"]."""
    layout = []
    for i, stage in enumerate(stages):
        layout += list(stage) if isinstance(stage, (list, tuple)) else [stage]
        if pool_after_last or i < len(stages) - 1:
            layout.append(POOL)
    return layout


def conv_stack(layout=(32, POOL, 32, POOL, 64, POOL), *, include_top=True, pooling=None, classes=10,
               classifier_activation=None, input_shape=(28, 28, 1), dense=(), kernel_size=3, activation="relu",
               init=None, batch_norm=False, seed=None, name="conv_stack") -> keras.Model:
    """The conv stack `layout` (ints: conv filters, "M": max pool), then `dense` hidden units and the
    classifier when `include_top`. `init` names a `cnnlab.init` scheme (seeded per layer from `seed`);
    None keeps Keras's default (Glorot uniform). A conv with `batch_norm` is conv, BN, activation."""
    _check_pooling(pooling)
    bad = [entry for entry in layout if entry != POOL and not (isinstance(entry, int) and entry > 0)]
    if bad:
        raise ValueError(f"layout entries must be positive filter counts or {POOL!r}, got {bad}")
    x = inputs = keras.Input(input_shape)
    i = pools = 0
    for entry in layout:
        if entry == POOL:
            pools += 1
            x = layers.MaxPooling2D(2, name=f"pool_{pools}")(x)
            continue
        i += 1
        conv_activation = None if batch_norm else activation
        x = layers.Conv2D(entry, kernel_size, padding="same", activation=conv_activation, use_bias=not batch_norm,
                          kernel_initializer=layer_initializer(init, seed, i), name=f"hidden_{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"hidden_{i}_bn")(x)
            x = layers.Activation(activation, name=f"hidden_{i}_act")(x)
    if not include_top:
        return headless(inputs, x, pooling, name)
    x = layers.Flatten(name="flatten")(x)
    for units in dense:
        i += 1
        x = layers.Dense(units, activation=activation, kernel_initializer=layer_initializer(init, seed, i),
                         name=f"hidden_{i}")(x)
    outputs = layers.Dense(classes, activation=classifier_activation,
                           kernel_initializer=layer_initializer(init, seed, i + 1),
                           name="predictions" if classifier_activation else "logits")(x)
    return keras.Model(inputs, outputs, name=name)


def headless(inputs, features, pooling, name) -> keras.Model:
    """keras.applications' ending without the top: the last feature map (`pooling` None) or its global
    average ("avg") or maximum ("max") per channel."""
    _check_pooling(pooling)
    if pooling == "avg":
        features = layers.GlobalAveragePooling2D(name="avg_pool")(features)
    elif pooling == "max":
        features = layers.GlobalMaxPooling2D(name="max_pool")(features)
    return keras.Model(inputs, features, name=name)


def _check_pooling(pooling):
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
