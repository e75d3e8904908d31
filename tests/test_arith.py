"""Tests for cnnlab.arith: expected values are worked out by hand from the formulas, in the test."""

import itertools

import keras
import numpy as np
import pytest

from cnnlab import arith
from cnnlab.arith import (group_totals, keras_output_size, layer_table, output_size,
                          receptive_field, totals)

L = keras.layers


def row(table, name):
    rows = table[table["name"] == name]
    assert len(rows) == 1, f"{name}: {len(rows)} rows"
    return rows.iloc[0].to_dict()


# ---------------------------------------------------------------- output sizes

@pytest.mark.parametrize("w, k, s, p, d, by_formula, expected", [
    (7, 3, 1, 0, 1, (7 - 3) // 1 + 1, 5),
    (7, 3, 2, 0, 1, (7 - 3) // 2 + 1, 3),
    (7, 3, 1, 1, 1, (7 + 2 * 1 - 3) // 1 + 1, 7),         # pad 1 keeps the size
    (227, 11, 4, 0, 1, (227 - 11) // 4 + 1, 55),          # AlexNet conv1
    (55, 3, 2, 0, 1, (55 - 3) // 2 + 1, 27),              # AlexNet pool1
    (7, 3, 1, 0, 2, (7 - 2 * (3 - 1) - 1) // 1 + 1, 3),   # dilated: effective kernel 5
    (32, 3, 1, 2, 2, (32 + 2 * 2 - 2 * (3 - 1) - 1) // 1 + 1, 32),  # dilated "same"
    (8, 3, 3, 0, 1, (8 - 3) // 3 + 1, 2),                 # floor when the stride does not fit
])
def test_output_size_lecture_examples(w, k, s, p, d, by_formula, expected):
    assert by_formula == expected
    assert output_size(w, k, s, p, d) == expected


@pytest.mark.parametrize("args", [
    dict(w=3, k=5), dict(w=7, k=3, d=4), dict(w=0, k=1), dict(w=7, k=0), dict(w=7, k=3, s=0),
    dict(w=7, k=3, p=-1), dict(w=7, k=3, d=0), dict(w=7.5, k=3), dict(w="7", k=3),
])
def test_output_size_invalid_raises_one_line(args):
    with pytest.raises(ValueError) as err:
        output_size(**args)
    assert "\n" not in str(err.value)


GRID = list(itertools.product([7, 8, 15, 32], [1, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2]))


def test_formula_matches_keras_conv_over_grid():
    checked = 0
    for w, k, s, p, d in GRID:
        if s > 1 and d > 1:  # Keras refuses stride > 1 with dilation > 1
            with pytest.raises(ValueError):
                keras_output_size(w, k, s, p, d)
            continue
        try:
            expected = output_size(w, k, s, p, d)
        except ValueError:
            with pytest.raises(ValueError):  # Keras refuses the empty output too
                keras_output_size(w, k, s, p, d)
            continue
        assert keras_output_size(w, k, s, p, d) == expected, (w, k, s, p, d)
        checked += 1
    assert checked > 100


def test_formula_matches_keras_pool_over_grid():
    checked = 0
    for w, k, s, p, d in GRID:
        if d != 1:
            continue
        try:
            expected = output_size(w, k, s, p)
        except ValueError:
            continue
        assert keras_output_size(w, k, s, p, layer="pool") == expected, (w, k, s, p)
        checked += 1
    assert checked > 90


@pytest.mark.parametrize("w, k, s, p, d, layer", [
    (15, 3, 2, 1, 1, "conv"), (8, 5, 3, 2, 1, "conv"), (15, 3, 1, 0, 2, "conv"), (15, 3, 2, 1, 1, "pool"),
])
def test_symbolic_size_matches_running_the_layers(w, k, s, p, d, layer):
    op = (L.Conv2D(1, k, strides=s, dilation_rate=d) if layer == "conv"
          else L.MaxPooling2D(k, strides=s))
    y = op(L.ZeroPadding2D(p)(np.zeros((1, w, w, 1), "float32")))
    assert tuple(y.shape) == (1, output_size(w, k, s, p, d), output_size(w, k, s, p, d), 1)
    assert keras_output_size(w, k, s, p, d, layer) == y.shape[1]


def test_keras_output_size_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dilation"):
        keras_output_size(15, 3, d=2, layer="pool")
    with pytest.raises(ValueError, match="layer"):
        keras_output_size(15, 3, layer="dense")


# ---------------------------------------------------------------- receptive field

def test_receptive_field():
    assert receptive_field([3, 3]) == 1 + 2 + 2 == 5
    assert receptive_field([3, 3, 3]) == 7
    assert receptive_field([7]) == 7
    # conv3 s2, conv3 s1: 1 + (3-1)*1 = 3, then the jump is 2: 3 + (3-1)*2 = 7
    assert receptive_field([3, 3], strides=[2, 1]) == 7
    # conv3, pool2 s2, conv3: 1 + 2 = 3; + (2-1)*1 = 4, jump 2; + 2*2 = 8
    assert receptive_field([3, 2, 3], strides=[1, 2, 1]) == 8
    # dilated conv3 (d=2) then conv3: 1 + 2*2 = 5; + 2 = 7
    assert receptive_field([3, 3], dilations=[2, 1]) == 7
    with pytest.raises(ValueError):
        receptive_field([3, 3], strides=[1])


# ---------------------------------------------------------------- layer_table

def test_cs231n_six_5x5_filters():
    x = keras.Input((32, 32, 3), name="image")
    model = keras.Model(x, L.Conv2D(6, 5, name="conv")(x))
    table = layer_table(model)
    assert list(table["name"]) == ["image", "conv"]
    assert list(table.columns) == ["name", "type", "output_shape", "params", "weights", "macs",
                                   "activations", "activation_bytes"]
    image, conv = row(table, "image"), row(table, "conv")
    assert image["type"] == "InputLayer" and image["output_shape"] == "32x32x3"
    assert image["activations"] == 32 * 32 * 3 and image["params"] == image["macs"] == 0
    assert conv["type"] == "Conv2D" and conv["output_shape"] == "28x28x6"  # (32 - 5)/1 + 1 = 28
    assert conv["params"] == 3 * 5 * 5 * 6 + 6 == 456
    assert conv["weights"] == 3 * 5 * 5 * 6 == 450
    assert conv["macs"] == 3 * 5 * 5 * 6 * 28 * 28 == 352_800
    assert conv["activations"] == 28 * 28 * 6
    assert conv["activation_bytes"] == 28 * 28 * 6 * 4


@pytest.fixture(scope="module")
def zoo():
    """A small functional model with one of each kind of layer the table must handle."""
    x = keras.Input((8, 8, 4), name="in")
    g = L.Conv2D(6, 3, groups=2, padding="same", name="grouped")(x)
    dil = L.Conv2D(3, 3, dilation_rate=2, name="dilated")(x)
    bn = L.BatchNormalization(name="bn")(g)
    pool = L.MaxPooling2D(2, name="pool")(bn)
    a = L.Conv2D(2, 1, name="a")(pool)
    b = L.Conv2D(5, 1, name="b")(pool)
    cat = L.Concatenate(name="cat")([a, b])
    add = L.Add(name="add")([a, L.Conv2D(2, 1, use_bias=False, name="c")(pool)])
    dw = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(cat)
    sep = L.SeparableConv2D(4, 3, name="sep")(dw)
    up = L.Conv2DTranspose(5, 3, strides=2, name="up")(add)
    gap = L.GlobalAveragePooling2D(name="gap")(dil)
    seq_dense = L.Dense(7, name="dense_seq")(L.Reshape((16, 6), name="reshape")(pool))
    y = L.Dense(10, name="dense")(L.Concatenate(name="cat_flat")([
        gap, L.Flatten(name="flat")(sep), L.Flatten(name="flat_up")(up)]))
    return keras.Model(x, [y, seq_dense], name="zoo")


def test_zoo_rows(zoo):
    t = layer_table(zoo)
    assert t["name"].iloc[0] == "in" and t["activations"].iloc[0] == 8 * 8 * 4
    assert t["name"].is_unique and len(t) == len(zoo.layers)

    grouped = row(t, "grouped")  # each of 6 filters sees 3x3 x (4/2) channels
    assert grouped["params"] == 3 * 3 * (4 // 2) * 6 + 6 and grouped["weights"] == 3 * 3 * 2 * 6
    assert grouped["macs"] == 8 * 8 * 6 * (3 * 3 * 4 // 2)

    dilated = row(t, "dilated")  # 8 - 2*(3-1) = 4; dilation does not change MACs per output
    assert dilated["output_shape"] == "4x4x3"
    assert dilated["macs"] == 4 * 4 * 3 * (3 * 3 * 4) and dilated["params"] == 3 * 3 * 4 * 3 + 3

    bn = row(t, "bn")
    assert (bn["params"], bn["weights"], bn["macs"], bn["activations"]) == (4 * 6, 0, 0, 8 * 8 * 6)

    pool = row(t, "pool")
    assert (pool["params"], pool["macs"], pool["output_shape"], pool["activations"]) == (
        0, 0, "4x4x6", 4 * 4 * 6)

    assert row(t, "c")["params"] == row(t, "c")["weights"] == 6 * 2
    cat, add = row(t, "cat"), row(t, "add")
    assert (cat["output_shape"], cat["activations"], cat["macs"]) == ("4x4x7", 4 * 4 * (2 + 5), 0)
    assert (add["output_shape"], add["activations"], add["macs"]) == ("4x4x2", 4 * 4 * 2, 0)

    dw = row(t, "dw")  # 7 channels x multiplier 2 = 14 outputs, 3x3 MACs each
    assert dw["params"] == 3 * 3 * 7 * 2 + 14 and dw["macs"] == 4 * 4 * 14 * 3 * 3
    sep = row(t, "sep")  # 'valid' 3x3 on 4x4 -> 2x2; depthwise 3x3 x 14, then pointwise 14 -> 4
    assert sep["output_shape"] == "2x2x4" and sep["weights"] == 3 * 3 * 14 + 14 * 4
    assert sep["macs"] == 2 * 2 * 14 * 3 * 3 + 2 * 2 * 4 * 14
    up = row(t, "up")  # (4-1)*2 + 3 = 9; every input value scatters 3x3 x 5 products
    assert up["output_shape"] == "9x9x5" and up["macs"] == 4 * 4 * 2 * 3 * 3 * 5

    gap = row(t, "gap")
    assert (gap["output_shape"], gap["activations"], gap["macs"], gap["params"]) == ("3", 3, 0, 0)
    flat = 3 + 2 * 2 * 4 + 9 * 9 * 5
    assert row(t, "flat")["macs"] == 0 and row(t, "cat_flat")["activations"] == flat
    dense = row(t, "dense")
    assert (dense["params"], dense["weights"], dense["macs"]) == (flat * 10 + 10, flat * 10, flat * 10)
    seq = row(t, "dense_seq")  # Dense(7) on (16, 6): 16 positions x 6 x 7
    assert (seq["output_shape"], seq["macs"], seq["params"]) == ("16x7", 16 * 6 * 7, 6 * 7 + 7)
    assert row(t, "reshape")["macs"] == 0


def test_totals_and_bytes(zoo):
    t4, t2 = layer_table(zoo), layer_table(zoo, bytes_per_value=2)
    s = totals(t4)
    for col in ["params", "weights", "macs", "activations", "activation_bytes"]:
        assert s[col] == sum(t4[col])
    assert s["params"] == zoo.count_params()
    assert s["activation_bytes"] == 4 * s["activations"]
    assert list(t2["activation_bytes"] * 2) == list(t4["activation_bytes"])


def test_group_totals_order_and_sums(zoo):
    t = layer_table(zoo)
    groups = {"pool": "body", "dense": "head", "bn": "body", "grouped": "body", "dense_seq": "head"}
    g = group_totals(t, groups.get)
    assert list(g.index) == ["body", "head"]  # first-seen order: grouped comes before dense
    body = [row(t, n) for n in ("grouped", "bn", "pool")]
    assert g.loc["body", "params"] == sum(r["params"] for r in body)
    assert g.loc["body", "macs"] == sum(r["macs"] for r in body)
    assert g.loc["head", "activations"] == 10 + 16 * 7
    assert "type" not in g.columns


def test_sequential_gets_its_input_row():
    model = keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(2, 3, name="c"), L.Flatten(name="f"),
                              L.Dense(3, name="d")])
    t = layer_table(model)
    assert list(t["type"]) == ["InputLayer", "Conv2D", "Flatten", "Dense"]
    assert t["activations"].tolist() == [6 * 6, 4 * 4 * 2, 0, 3]  # Flatten is a view
    assert totals(t)["params"] == model.count_params()


def test_nested_model_is_expanded_and_shared_layer_counted_once():
    inner_in = keras.Input((5, 5, 3), name="inner_in")
    inner = keras.Model(inner_in, L.Conv2D(4, 3, name="inner_conv")(inner_in), name="inner")
    shared = L.Dense(2, name="shared")
    x = keras.Input((5, 5, 3), name="outer_in")
    v = L.Flatten(name="flat")(inner(x))
    y = L.Add(name="add")([shared(v), shared(v)])
    model = keras.Model(x, y)
    t = layer_table(model)
    assert list(t["name"]) == ["outer_in", "inner_conv", "flat", "shared", "add"]
    assert row(t, "inner_conv")["macs"] == 3 * 3 * 4 * (3 * 3 * 3)
    assert row(t, "shared")["macs"] == 3 * 3 * 4 * 2  # first call only
    assert totals(t)["params"] == model.count_params()


class Scale(keras.layers.Layer):
    """A custom layer arith does not know: one weight per channel."""

    def build(self, input_shape):
        self.alpha = self.add_weight(shape=(input_shape[-1],), name="alpha")

    def call(self, x):
        return x * self.alpha


def test_unknown_layer_does_not_crash():
    x = keras.Input((4, 4, 3))
    model = keras.Model(x, Scale(name="scale")(x))
    scale = row(layer_table(model), "scale")
    assert (scale["type"], scale["params"], scale["weights"], scale["macs"], scale["activations"]) == (
        "Scale", 3, 3, 0, 4 * 4 * 3)


# ---------------------------------------------------------------- VGG-16 (seed 001, CS231n)

@pytest.fixture(scope="module")
def vgg16():
    model = keras.applications.VGG16(weights=None)
    return model, layer_table(model)


def test_vgg16_per_layer(vgg16):
    model, t = vgg16
    assert len(t) == len(model.layers) and t["type"].iloc[0] == "InputLayer"
    assert row(t, "block1_conv1")["weights"] == 3 * 3 * 3 * 64 == 1_728
    assert row(t, "block1_conv2")["weights"] == 3 * 3 * 64 * 64 == 36_864
    assert row(t, "block1_conv1")["activations"] == 224 * 224 * 64 == 3_211_264
    assert row(t, "fc1")["weights"] == 7 * 7 * 512 * 4096 == 102_760_448
    assert row(t, "fc2")["weights"] == 4096 * 4096 == 16_777_216
    assert row(t, "predictions")["weights"] == 4096 * 1000 == 4_096_000
    assert row(t, "block1_conv2")["macs"] == 224 * 224 * 64 * (3 * 3 * 64)


def test_vgg16_totals(vgg16):
    model, t = vgg16
    s = totals(t)
    assert s["params"] == model.count_params() == 138_357_544
    assert s["weights"] == 138_344_128
    convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
             (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    sizes = [224] * 2 + [112] * 2 + [56] * 3 + [28] * 3 + [14] * 3
    conv_macs = sum(h * h * c_out * 9 * c_in for h, (c_in, c_out) in zip(sizes, convs))
    assert s["macs"] == conv_macs + 25088 * 4096 + 4096 * 4096 + 4096 * 1000
    assert list(s.index) == arith.NUMERIC


def test_vgg16_activation_total_is_the_sum_of_cs231n_rows(vgg16):
    _, t = vgg16
    convs = 2 * 224 * 224 * 64 + 2 * 112 * 112 * 128 + 3 * 56 * 56 * 256 + 3 * 28 * 28 * 512 + 3 * 14 * 14 * 512
    pools = 112 * 112 * 64 + 56 * 56 * 128 + 28 * 28 * 256 + 14 * 14 * 512 + 7 * 7 * 512
    expected = 224 * 224 * 3 + convs + pools + 4096 + 4096 + 1000  # Flatten is a view: 0
    assert totals(t)["activations"] == expected == 15_237_608


def test_measure_builds_releases_and_restores_the_dtype_policy():
    def build():
        inputs = keras.Input((8, 8, 3))
        return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Conv2D(5, 3)(inputs)))

    reference = build().count_params()
    count, dtype = arith.measure(build, lambda m: m.count_params(), lambda m: m.layers[-1].dtype)
    assert (count, dtype) == (reference, "bfloat16") == (3 * 3 * 3 * 5 + 5 + 5 * 4 + 4, "bfloat16")
    assert arith.measure(build, arith.layer_table).params.sum() == reference
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ZeroDivisionError):
        arith.measure(build, lambda m: 1 / 0)
    assert keras.config.dtype_policy().name == "float32"
