"""Classifier heads on a conv_stack backbone, and the mini-GoogLeNet of the GAP study."""

import keras
import numpy as np
import pytest

from cnnlab.models.googlenet import INCEPTION, mini_googlenet
from cnnlab.models.convnet import conv_stack, stages_layout
from cnnlab.models.heads import HEADS, classifier_head, formula_params, head_params, with_head


@pytest.fixture(scope="module")
def backbone():
    return conv_stack(stages_layout((32, 64, 128), pool_after_last=False), include_top=False)


def test_the_backbone_reaches_7x7x128(backbone):
    assert tuple(backbone.output.shape) == (None, 7, 7, 128)
    assert backbone.count_params() == (9 * 1 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 128 + 128)


def test_stages_layout_pools_after_or_between_stages():
    assert stages_layout((16, (32, 32), [64, 64, 128]), pool_after_last=False) == [
        16, "M", 32, 32, "M", 64, 64, 128]
    assert stages_layout([[16], [32]]) == [16, "M", 32, "M"]
    model = conv_stack(stages_layout((16, (32, 32), [64, 64, 128]), pool_after_last=False), include_top=False)
    assert [layer.name for layer in model.layers if layer.weights] == [f"hidden_{i}" for i in range(1, 7)]
    assert tuple(model.output.shape) == (None, 7, 7, 128)


@pytest.mark.parametrize("kind, expected", [
    ("fc", 7 * 7 * 128 * 256 + 256 + 256 * 10 + 10),
    ("fc_dropout", 7 * 7 * 128 * 256 + 256 + 256 * 10 + 10),
    ("gap", 128 * 10 + 10),
    ("nin", 128 * 10 + 10),
])
def test_head_params_exact(backbone, kind, expected):
    model = with_head(backbone, kind)
    assert head_params(model) == expected == formula_params(kind, 7, 7, 128)
    assert model.count_params() == backbone.count_params() + expected
    assert tuple(model.output.shape) == (None, 10)


def test_dropout_only_in_the_dropout_heads(backbone):
    def dropouts(kind):
        return [layer.rate for layer in with_head(backbone, kind).layers if isinstance(layer, keras.layers.Dropout)]

    assert dropouts("fc") == [] and dropouts("nin") == []
    assert dropouts("fc_dropout") == [0.5, 0.5]
    assert dropouts("gap") == [0.4]
    assert [layer.rate for layer in with_head(backbone, "gap", gap_dropout=0.0).layers
            if isinstance(layer, keras.layers.Dropout)] == []


def test_nin_scores_are_class_map_averages():
    features = keras.Input((4, 4, 3))
    model = keras.Model(features, classifier_head(features, "nin", classes=2))
    conv = model.get_layer("head_class_maps")
    conv.set_weights([np.array([[[[1.0, -1.0], [0.0, 0.0], [0.0, 0.0]]]]), np.zeros(2)])
    x = np.random.default_rng(0).normal(size=(5, 4, 4, 3)).astype("float32")
    expected = np.stack([np.maximum(x[..., 0], 0).mean(axis=(1, 2)), np.maximum(-x[..., 0], 0).mean(axis=(1, 2))], -1)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5)


def test_formula_at_googlenet_size():
    assert formula_params("fc", 7, 7, 1024, 1000, 4096) == 7 * 7 * 1024 * 4096 + 4096 + 4096 * 1000 + 1000
    assert formula_params("gap", 7, 7, 1024, 1000) == 1024 * 1000 + 1000
    with pytest.raises(ValueError, match="unknown head 'avg'"):
        formula_params("avg", 7, 7, 1024)


def test_unknown_head_names_the_choices(backbone):
    with pytest.raises(ValueError, match=r"unknown head 'softmax'; choose from \['fc', 'fc_dropout', 'gap', 'nin'\]"):
        with_head(backbone, "softmax")
    assert HEADS == ("fc", "fc_dropout", "gap", "nin")


def test_mini_googlenet_uses_table1_filters_divided():
    model = mini_googlenet(divisor=4)
    assert tuple(model.output.shape) == (None, 7, 7, sum(INCEPTION["4a"][i] for i in (0, 2, 4, 5)) // 4)
    assert tuple(model.get_layer("inception_3b_concat").output.shape) == (None, 14, 14, (128 + 192 + 96 + 64) // 4)
    assert model.get_layer("inception_3a_3x3_reduce").filters == 96 // 4
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)
            and "inception" not in layer.name] == ["pool1_2x2", "pool3_2x2"]


def test_mini_googlenet_unknown_row():
    with pytest.raises(ValueError, match=r"unknown inception rows \['6a'\]"):
        mini_googlenet(rows=("3a", "6a"))
