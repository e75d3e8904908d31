"""Classifier heads on a convolutional feature map, for the FC vs global-average-pooling study.

- `fc`: Flatten -> Dense(fc_units, ReLU) -> Dense(classes): AlexNet/VGG style.
- `fc_dropout`: the same with dropout before each Dense, as AlexNet/VGG train it.
- `gap`: GlobalAveragePooling -> Dropout -> Dense(classes): GoogLeNet (Szegedy et al. 2015, Table 1:
  avg pool, dropout 40%, linear).
- `nin`: Conv1x1(classes, ReLU) -> GlobalAveragePooling: Network in Network (Lin et al. 2014), one
  feature map per class averaged into its score. The ReLU is NiN's (its last mlpconv layer has one);
  without it this head would be the same function as `gap`, since averaging and a linear map commute.

Every head's layers are named `head_*` (see `head_params`) and its output is logits (no softmax).
"""

import keras
from keras import layers

HEADS = ("fc", "fc_dropout", "gap", "nin")


def classifier_head(x, kind: str, classes: int = 10, fc_units: int = 256, dropout: float = 0.5,
                    gap_dropout: float = 0.4):
    """Put head `kind` (one of HEADS) on the feature map `x`; returns the logits tensor."""
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; choose from {list(HEADS)}")
    if kind in ("fc", "fc_dropout"):
        x = layers.Flatten(name="head_flatten")(x)
        if kind == "fc_dropout":
            x = layers.Dropout(dropout, name="head_dropout1")(x)
        x = layers.Dense(fc_units, activation="relu", name="head_fc")(x)
        if kind == "fc_dropout":
            x = layers.Dropout(dropout, name="head_dropout2")(x)
        return layers.Dense(classes, name="head_logits")(x)
    if kind == "gap":
        x = layers.GlobalAveragePooling2D(name="head_gap")(x)
        if gap_dropout:
            x = layers.Dropout(gap_dropout, name="head_dropout")(x)
        return layers.Dense(classes, name="head_logits")(x)
    x = layers.Conv2D(classes, 1, activation="relu", name="head_class_maps")(x)
    return layers.GlobalAveragePooling2D(name="head_logits")(x)


def head_params(model) -> int:
    """Parameters in the model's head (its layers named `head_*`)."""
    return sum(layer.count_params() for layer in model.layers if layer.name.startswith("head_"))


def formula_params(kind: str, h: int, w: int, c: int, classes: int = 10, fc_units: int = 256) -> int:
    """Head `kind`'s parameters on an h x w x c map, from the formula: h*w*c*n + n + n*classes + classes for
    the FC heads (n = `fc_units`), c*classes + classes for GAP-linear and NiN."""
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; choose from {list(HEADS)}")
    if kind in ("fc", "fc_dropout"):
        return h * w * c * fc_units + fc_units + fc_units * classes + classes
    return c * classes + classes


def with_head(backbone: keras.Model, kind: str, name: str | None = None, **head_args) -> keras.Model:
    """A model of `backbone` (a Keras model ending in a feature map) topped by head `kind`."""
    logits = classifier_head(backbone.output, kind, **head_args)
    return keras.Model(backbone.input, logits, name=name or f"{backbone.name}_{kind}")

