"""Tests for cnnlab.models: parameter counts by hand formulas written here, shapes from
the papers' tables."""

import inspect

import keras
import numpy as np
import pytest

from cnnlab.models import (
    MODELS,
    alexnet,
    alphago_policy,
    googlenet,
    lenet5,
    plain_mlp,
    resnet,
    vgg,
)
from cnnlab.models.convnet import POOL, conv_stack
from cnnlab.models.fcn import backbone_classifier
from cnnlab.models.googlenet import TABLE1_ROWS, row_of
from cnnlab.models.vgg import CONFIGS, weight_layers


def conv(k, c_in, c_out, groups=1):
    """Weights plus biases of a k x k conv."""
    return k * k * (c_in // groups) * c_out + c_out


def dense(n_in, n_out):
    return n_in * n_out + n_out


def kernel_size(model, name):
    return int(np.prod(model.get_layer(name).kernel.shape))


def test_models_registry():
    assert set(MODELS) == {"lenet5", "alexnet", "vgg", "googlenet", "resnet", "alphago_policy", "mini_googlenet",
                           "conv_stack", "plain_mlp", "plain_cnn", "patch_classifier", "fcn", "encoder_decoder", "cifar_resnet"}


# keras.applications' keywords, in its order; every builder takes those that make sense for its net
APPLICATIONS_KEYWORDS = ("include_top", "pooling", "classes", "classifier_activation", "input_shape")


@pytest.mark.parametrize("name", [*MODELS, "backbone_classifier"])
def test_builders_share_the_keras_applications_signature(name):
    build = MODELS.get(name, backbone_classifier)
    parameters = inspect.signature(build).parameters.values()
    positional = [p.name for p in parameters if p.kind < inspect.Parameter.KEYWORD_ONLY]  # all kinds taken by place
    assert len(positional) <= 1, f"{name} takes {positional} positionally; allowed: the one naming the net"
    keywords = [p.name for p in parameters if p.kind == p.KEYWORD_ONLY]
    standard = [k for k in keywords if k in APPLICATIONS_KEYWORDS]
    assert standard == [k for k in APPLICATIONS_KEYWORDS if k in standard], f"{name}: {standard}"
    assert keywords[:len(standard)] == standard, f"{name}: {keywords} has its own arguments before {standard}"
    last = [k for k in keywords if k in ("seed", "name")]
    assert keywords[len(keywords) - len(last):] == last, f"{name}: {keywords} does not end in {last}"
    assert "num_classes" not in [p.name for p in parameters]


@pytest.mark.parametrize("build, full_params, top_params, feature_shape, small_input", [
    (lenet5, 61_706, dense(120, 84) + dense(84, 10), (None, 1, 1, 120), (32, 32, 1)),  # C5 under F6, output
    (alexnet, 62_378_344, dense(6 * 6 * 256, 4096) + dense(4096, 4096) + dense(4096, 1000), (None, 6, 6, 256),
     (67, 67, 3)),  # pool5 under fc6, fc7, fc8
    (googlenet, 6_998_552, dense(1024, 1000), (None, 7, 7, 1024), (32, 32, 3)),  # inception 5b under linear
])
def test_paper_nets_without_their_top(build, full_params, top_params, feature_shape, small_input):
    pooled = build(include_top=False, pooling="avg")
    assert pooled.output.shape == (None, feature_shape[-1])
    assert pooled.count_params() == full_params - top_params
    assert build(include_top=False).output.shape == feature_shape
    assert build(include_top=False, pooling="max").output.shape == (None, feature_shape[-1])
    logits = build(classes=3, classifier_activation=None, input_shape=small_input)
    assert logits.output.shape == (None, 3) and logits.layers[-1].activation is keras.activations.linear
    with pytest.raises(ValueError, match="pooling must be one of"):
        build(include_top=False, pooling="mean")


# ---------------------------------------------------------------- LeNet-5


def test_lenet5():
    model = lenet5()
    expected = (
        conv(5, 1, 6)
        + conv(5, 6, 16)
        + conv(5, 16, 120)
        + dense(120, 84)
        + dense(84, 10)
    )
    assert model.count_params() == expected == 61_706
    sizes = [model.get_layer(n).output.shape[1] for n in ("c1", "s2", "c3", "s4", "c5")]
    assert sizes == [28, 14, 10, 5, 1]
    assert tuple(model.output.shape) == (None, 10)
    assert model.get_layer("output").activation is keras.activations.softmax


# ---------------------------------------------------------------- AlexNet

ALEXNET_SIZES = {
    "conv1": (55, 96),  # (227 - 11) / 4 + 1
    "pool1": (27, 96),  # (55 - 3) / 2 + 1
    "conv2": (27, 256),
    "pool2": (13, 256),
    "conv3": (13, 384),
    "conv4": (13, 384),
    "conv5": (13, 256),
    "pool5": (6, 256),
}


@pytest.fixture(scope="module")
def alexnets():
    return {"single": alexnet(), "two_tower": alexnet(two_tower=True)}


@pytest.mark.parametrize("variant", ["single", "two_tower"])
def test_alexnet_shapes(alexnets, variant):
    model = alexnets[variant]
    for name, (size, depth) in ALEXNET_SIZES.items():
        assert tuple(model.get_layer(name).output.shape) == (
            None,
            size,
            size,
            depth,
        ), name
    assert tuple(model.get_layer("norm1").output.shape) == (None, 55, 55, 96)
    assert tuple(model.output.shape) == (None, 1000)


def test_alexnet_single_tower_params(alexnets):
    model = alexnets["single"]
    expected = {
        "conv1": conv(11, 3, 96),
        "conv2": conv(5, 96, 256),
        "conv3": conv(3, 256, 384),
        "conv4": conv(3, 384, 384),
        "conv5": conv(3, 384, 256),
        "fc6": dense(6 * 6 * 256, 4096),
        "fc7": dense(4096, 4096),
        "fc8": dense(4096, 1000),
    }
    for name, count in expected.items():
        assert model.get_layer(name).count_params() == count, name
    assert model.count_params() == sum(expected.values()) == 62_378_344


def test_alexnet_two_tower_matches_seed_004(alexnets):
    model = alexnets["two_tower"]
    weights = {
        "conv1": 11 * 11 * 3 * 96,
        "conv2": 5 * 5 * 48 * 256,  # 307K: each tower sees its own 48 maps
        "conv3": 3 * 3 * 256 * 384,  # 884K: cross-tower
        "conv4": 3 * 3 * 192 * 384,  # 663K
        "conv5": 3 * 3 * 192 * 256,  # 442K
        "fc6": 6 * 6 * 256 * 4096,  # 37M
        "fc7": 4096 * 4096,  # 16M
        "fc8": 4096 * 1000,  # 4M
    }
    for name, count in weights.items():
        assert kernel_size(model, name) == count, name
    slide_thousands = {"conv2": 307, "conv3": 884, "conv4": 663, "conv5": 442}
    for name, k in slide_thousands.items():
        assert weights[name] // 1000 == k
    for name, m in {"fc6": 37, "fc7": 16, "fc8": 4}.items():
        assert weights[name] // 10**6 == m
    biases = 96 + 256 + 384 + 384 + 256 + 4096 + 4096 + 1000
    assert model.count_params() == sum(weights.values()) + biases == 60_965_224


def test_alexnet_two_tower_conv_groups(alexnets):
    groups = {
        n: alexnets["two_tower"].get_layer(n).groups
        for n in ALEXNET_SIZES
        if "conv" in n
    }
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}


# ---------------------------------------------------------------- VGG

# Table 1 written independently of CONFIGS: per stage, the kernel sizes of its convs.
VGG_TABLE1 = {
    "A": "3|3|33|33|33",
    "A-LRN": "3|3|33|33|33",
    "B": "33|33|33|33|33",
    "C": "33|33|331|331|331",
    "D": "33|33|333|333|333",
    "E": "33|33|3333|3333|3333",
    "B-5x5": "5|5|5|5|5",
}
VGG_WEIGHT_LAYERS = {
    "A": 11,
    "A-LRN": 11,
    "B": 13,
    "C": 16,
    "D": 16,
    "E": 19,
    "B-5x5": 8,
}
VGG_TABLE2_MILLIONS = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}


def vgg_params(config, c_in=3, divisor=1, fc=4096, classes=1000, spatial=7):
    total = 0
    for stage, width in zip(VGG_TABLE1[config].split("|"), (64, 128, 256, 512, 512)):
        for k in stage:
            total += conv(int(k), c_in, width // divisor)
            c_in = width // divisor
    return (
        total + dense(spatial * spatial * c_in, fc) + dense(fc, fc) + dense(fc, classes)
    )


def test_vgg_weight_layers():
    assert {c: weight_layers(c) for c in CONFIGS} == VGG_WEIGHT_LAYERS


@pytest.mark.parametrize("config", list(VGG_TABLE1))
def test_vgg_params(config):
    model = vgg(config)
    count = model.count_params()
    assert count == vgg_params(config)
    if config in VGG_TABLE2_MILLIONS:
        assert round(count / 1e6) == VGG_TABLE2_MILLIONS[config]
    reference = {"D": keras.applications.VGG16, "E": keras.applications.VGG19}.get(
        config
    )
    if reference is not None:
        ref = reference(weights=None)
        assert (
            count == ref.count_params() == {"D": 138_357_544, "E": 143_667_240}[config]
        )
        ours = {
            layer.name: layer
            for layer in model.layers[1:]
            if "dropout" not in layer.name
        }
        theirs = {layer.name: layer for layer in ref.layers[1:]}
        assert list(ours) == list(theirs)
        for name, layer in theirs.items():
            assert ours[name].output.shape == layer.output.shape, name


def test_vgg_lrn_position():
    model = vgg("A-LRN", classes=10, input_shape=(32, 32, 1), width_divisor=8, fc_units=16)
    names = [layer.name for layer in model.layers]
    assert names[1:4] == ["block1_conv1", "block1_lrn", "block1_pool"]


def test_vgg_small():
    model = vgg("A", classes=10, input_shape=(32, 32, 1), width_divisor=8, fc_units=128)
    assert tuple(model.output.shape) == (None, 10)
    assert tuple(model.get_layer("block5_pool").output.shape) == (None, 1, 1, 64)
    assert model.count_params() == vgg_params("A", 1, 8, 128, 10, spatial=1)
    assert model.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0).shape == (2, 10)


def test_vgg_init_applies_to_every_kernel():
    model = vgg("A", classes=10, input_shape=(32, 32, 1), width_divisor=8, fc_units=128, init="normal_0.01")
    kernels = [keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == weight_layers("A") == 11
    assert np.std(np.concatenate([k.ravel() for k in kernels])) == pytest.approx(0.01, rel=0.02)


def test_vgg_seeded_init():
    def weights(seed):
        return vgg("A", classes=10, input_shape=(32, 32, 1), width_divisor=8, fc_units=16, init="he_normal",
                   seed=seed).get_weights()

    a, b, c = weights(3), weights(3), weights(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_vgg_unknown_config():
    with pytest.raises(ValueError, match="A-LRN"):
        vgg("F")


# ---------------------------------------------------------------- GoogLeNet

# Table 1: output size, depth, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_TABLE1 = {
    "conv1": (112, 64),
    "pool1": (56, 64),
    "conv2": (56, 192),
    "pool2": (28, 192),
    "3a": (28, 256, 64, 96, 128, 16, 32, 32),
    "3b": (28, 480, 128, 128, 192, 32, 96, 64),
    "pool3": (14, 480),
    "4a": (14, 512, 192, 96, 208, 16, 48, 64),
    "4b": (14, 512, 160, 112, 224, 24, 64, 64),
    "4c": (14, 512, 128, 128, 256, 24, 64, 64),
    "4d": (14, 528, 112, 144, 288, 32, 64, 64),
    "4e": (14, 832, 256, 160, 320, 32, 128, 128),
    "pool4": (7, 832),
    "5a": (7, 832, 256, 160, 320, 32, 128, 128),
    "5b": (7, 1024, 384, 192, 384, 48, 128, 128),
    "avgpool": (1, 1024),
    "dropout": (1, 1024),
}


@pytest.fixture(scope="module")
def inception_net():
    return googlenet()


def rows_of(model):
    """Row -> (last layer of the row, parameters of the row)."""
    rows = {}
    for layer in model.layers:
        row = row_of(layer.name)
        _, params = rows.get(row, (None, 0))
        rows[row] = (layer, params + layer.count_params())
    return rows


def inception_params(c_in, f1, r3, f3, r5, f5, proj):
    return (
        conv(1, c_in, f1)
        + conv(1, c_in, r3)
        + conv(3, r3, f3)
        + conv(1, c_in, r5)
        + conv(5, r5, f5)
        + conv(1, c_in, proj)
    )


def test_googlenet_rows_sizes_and_params(inception_net):
    rows = rows_of(inception_net)
    assert list(rows) == [None] + TABLE1_ROWS
    c_in, total = 3, 0
    for row, (size, depth, *filters) in GOOGLENET_TABLE1.items():
        layer, params = rows[row]
        assert tuple(layer.output.shape) == (None, size, size, depth), row
        if filters:
            assert filters[0] + filters[2] + filters[4] + filters[5] == depth
            assert params == inception_params(c_in, *filters), row
        total += params
        c_in = depth
    assert rows["conv1"][1] == conv(7, 3, 64)
    assert rows["conv2"][1] == conv(1, 64, 64) + conv(3, 64, 192)
    assert rows["linear"][1] == dense(1024, 1000)
    assert inception_net.count_params() == total + dense(1024, 1000) == 6_998_552
    assert tuple(inception_net.output.shape) == (None, 1000)


def test_googlenet_row_of():
    assert row_of("input_layer") is None
    assert row_of("conv1_7x7_s2") == "conv1"
    assert row_of("conv2_3x3_reduce") == "conv2"
    assert row_of("inception_4e_pool_proj") == "4e"
    assert row_of("pool4_3x3_s2") == "pool4"
    assert row_of("pool5_7x7_s1") == "avgpool"
    assert row_of("linear") == "linear"


# ---------------------------------------------------------------- ResNet

RESNET_TABLE1 = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
}


def resnet_params(bottleneck, blocks, classes=1000):
    """Convs with biases, each followed by BN (gamma, beta, moving mean, variance)."""

    def conv_bn(k, c_in, c_out):
        return conv(k, c_in, c_out) + 4 * c_out

    total, c_in = conv_bn(7, 3, 64), 64
    for filters, n in zip((64, 128, 256, 512), blocks):
        c_out = 4 * filters if bottleneck else filters
        for _ in range(n):
            if c_in != c_out:  # projection shortcut
                total += conv_bn(1, c_in, c_out)
            if bottleneck:
                total += conv_bn(1, c_in, filters) + conv_bn(3, filters, filters)
                total += conv_bn(1, filters, c_out)
            else:
                total += conv_bn(3, c_in, filters) + conv_bn(3, filters, filters)
            c_in = c_out
    return total + dense(c_in, classes)


@pytest.fixture(scope="module")
def resnet50():
    return resnet(50)


def test_resnet50_equals_keras_applications(resnet50):
    ref = keras.applications.ResNet50(weights=None)
    assert resnet50.count_params() == ref.count_params() == 25_636_712
    assert resnet50.count_params() == resnet_params(*RESNET_TABLE1[50])
    assert [layer.name for layer in resnet50.layers[1:]] == [
        layer.name for layer in ref.layers[1:]
    ]


def test_resnet50_stage_sizes(resnet50):
    for stage, (size, depth) in zip(
        (2, 3, 4, 5), ((56, 256), (28, 512), (14, 1024), (7, 2048))
    ):
        blocks = RESNET_TABLE1[50][1][stage - 2]
        shape = resnet50.get_layer(f"conv{stage}_block{blocks}_out").output.shape
        assert tuple(shape) == (None, size, size, depth)
    assert tuple(resnet50.get_layer("conv1_relu").output.shape) == (None, 112, 112, 64)


@pytest.mark.parametrize("depth", [18, 34, 101, 152])
def test_resnet_params(depth):
    model = resnet(depth)
    assert model.count_params() == resnet_params(*RESNET_TABLE1[depth])
    assert tuple(model.output.shape) == (None, 1000)
    last = "conv5_block{}_out".format(RESNET_TABLE1[depth][1][-1])
    width = 2048 if RESNET_TABLE1[depth][0] else 512
    assert tuple(model.get_layer(last).output.shape) == (None, 7, 7, width)


def test_resnet_unsupported_depth():
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        resnet(20)


# ---------------------------------------------------------------- AlphaGo


def test_alphago_policy():
    model = alphago_policy()
    expected = conv(5, 48, 192) + 11 * conv(3, 192, 192) + 1 * 1 * 192 * 1 + 19 * 19
    assert model.count_params() == expected == 3_882_793
    assert tuple(model.output.shape) == (None, 361)
    probs = model.predict(np.zeros((1, 19, 19, 48), "float32"), verbose=0)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)


def test_conv_stack_counts_names_and_headless_modes():
    model = conv_stack([4, POOL, 8], classes=10, dense=[16])
    # conv 3x3 1->4, conv 3x3 4->8 on 14x14, flatten 14*14*8 -> 16 -> 10
    assert model.count_params() == conv(3, 1, 4) + conv(3, 4, 8) + dense(14 * 14 * 8, 16) + dense(16, 10)
    assert [layer.name for layer in model.layers if layer.weights] == ["hidden_1", "hidden_2", "hidden_3", "logits"]
    features = conv_stack([4, POOL, 8], include_top=False)
    assert features.output.shape == (None, 14, 14, 8)
    assert conv_stack([4, POOL, 8], include_top=False, pooling="avg").output.shape == (None, 8)
    assert conv_stack([4, POOL, 8], include_top=False, pooling="max").output.shape == (None, 8)
    soft = conv_stack([4], classes=3, classifier_activation="softmax")
    assert soft.layers[-1].name == "predictions"
    np.testing.assert_allclose(soft.predict(np.ones((2, 28, 28, 1)), verbose=0).sum(axis=1), 1.0, rtol=1e-6)


def test_conv_stack_batch_norm_and_seeded_init():
    model = conv_stack([4, POOL, 8], batch_norm=True)
    assert model.get_layer("hidden_1").bias is None
    assert model.get_layer("hidden_1_bn").count_params() == 4 * 4
    a = conv_stack([4, 8], init="he_normal", seed=3).get_weights()
    b = conv_stack([4, 8], init="he_normal", seed=3).get_weights()
    c = conv_stack([4, 8], init="he_normal", seed=4).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(layout=[4, "P"]), r"layout entries must be positive filter counts or 'M', got \['P'\]"),
    (dict(layout=[0]), r"layout entries must be positive filter counts or 'M', got \[0\]"),
    (dict(include_top=False, pooling="mean"), r"pooling must be one of \(None, 'avg', 'max'\), got 'mean'"),
])
def test_conv_stack_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv_stack(**kwargs)


def test_plain_mlp_dropout_and_max_norm():
    model = plain_mlp(3, width=64, dropout=0.5, input_dropout=0.2, max_norm=1.0, seed=0)
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        "input_dropout", "dropout_1", "dropout_2", "dropout_3"]
    assert model.count_params() == plain_mlp(3, width=64).count_params()  # regularisers add no weights
    x = np.random.default_rng(0).normal(size=(8, 28, 28, 1)).astype("float32")
    def output(training):
        return keras.ops.convert_to_numpy(model(x, training=training))

    np.testing.assert_array_equal(output(False), output(False))  # no dropout in inference
    assert not np.allclose(output(True), output(False))
    model.compile(keras.optimizers.SGD(1.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.arange(8) % 10, epochs=3, verbose=0)
    for i in (1, 2, 3):  # every hidden unit's incoming weights, after steps large enough to grow them
        norms = np.linalg.norm(keras.ops.convert_to_numpy(model.get_layer(f"hidden_{i}").kernel), axis=0)
        assert norms.max() <= 1.0 + 1e-5
    assert plain_mlp(3, width=64).get_layer("hidden_1").kernel_constraint is None


def test_plain_mlp_batch_norm_sits_between_the_bias_free_dense_and_its_activation():
    model = plain_mlp(2, width=16, batch_norm=True, seed=0)
    assert [layer.name for layer in model.layers][2:8] == [
        "hidden_1", "hidden_1_bn", "hidden_1_act", "hidden_2", "hidden_2_bn", "hidden_2_act"]
    assert model.get_layer("hidden_1").activation is keras.activations.linear
    assert not model.get_layer("hidden_1").use_bias
    # a hidden layer loses its 16 biases and gains BN's 4 x 16 (gamma, beta, moving mean and variance)
    assert model.count_params() == plain_mlp(2, width=16).count_params() + 2 * (4 * 16 - 16)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dropout=1.0), r"dropout must be a fraction in \[0, 1\), got 1.0"),
    (dict(input_dropout=-0.1), r"input_dropout must be a fraction in \[0, 1\), got -0.1"),
    (dict(max_norm=0), r"max_norm must be positive or None, got 0"),
])
def test_plain_mlp_refuses_bad_regularisers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plain_mlp(2, width=8, **kwargs)


@pytest.mark.parametrize("build, notop_params, feature_shape", [
    (lambda **kw: vgg("D", **kw), 14_714_688, (None, 7, 7, 512)),  # keras.applications VGG16, include_top=False
    (lambda **kw: resnet(50, **kw), 23_587_712, (None, 7, 7, 2048)),  # keras.applications ResNet50, the same
])
def test_headless_builders_in_the_keras_applications_manner(build, notop_params, feature_shape):
    features = build(include_top=False)
    assert features.count_params() == notop_params and features.output.shape == feature_shape
    assert build(include_top=False, pooling="avg").output.shape == (None, feature_shape[-1])
    assert build(include_top=False, pooling="max").output.shape == (None, feature_shape[-1])
    logits = build(classes=4, classifier_activation=None, input_shape=(32, 32, 3))
    assert logits.layers[-1].activation is keras.activations.linear
