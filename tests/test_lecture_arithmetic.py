"""Tests for cnnlab.lecture_arithmetic: the exact values worked out by hand in the test, the gradients against
float32 rounding, and the claims `record_lecture_claims` records, whose verdicts follow from the measured values."""

import keras
import numpy as np
import pytest

from cnnlab import lecture_arithmetic as la
from cnnlab.models import googlenet, lenet5
from cnnlab.suite.results import Record

L = keras.layers


# ---------------------------------------------------------------- parameters

def test_dense_on_a_32x32x3_image_has_the_slides_parameters():
    assert la.dense_params() == 3 * 32**4 + 32**2 == 3_146_752
    assert la.dense_params(side=4, channels=1) == 16 * 16 + 16


def test_the_three_connectivities_at_the_slides_sizes():
    assert la.fully_connected_weights(1000 * 1000, 10**6) == 10**12
    assert la.locally_connected_weights(10**6, 10) == 10**8
    assert la.shared_weights(100, 10) == 10_000


@pytest.mark.parametrize("side, field, filters", [(6, 3, 4), (5, 5, 2)])
def test_the_formulas_equal_keras_where_keras_builds_the_layers(side, field, filters):
    hidden = side * side
    assert la.connectivity_counts(side, field, filters) == {
        "fully connected": (hidden * hidden, hidden * hidden),
        "locally connected": (hidden * field * field, hidden * field * field),
        "shared": (filters * field * field, filters * field * field)}


def test_the_unshared_layer_gives_each_location_its_own_kernel():
    side, field = 4, 3
    model = la.unshared_layer(side, field)
    convs = [layer for layer in model.layers if isinstance(layer, L.Conv2D)]
    assert len(convs) == side * side
    rng = np.random.default_rng(0)
    kernels = [rng.standard_normal((field, field, 1, 1)).astype("float32") for _ in convs]
    for conv, kernel in zip(convs, kernels):
        conv.set_weights([kernel])
    x = rng.standard_normal((1, side, side, 1)).astype("float32")
    padded = np.pad(x[0, :, :, 0], field // 2)
    expected = [(padded[i:i + field, j:j + field] * kernels[i * side + j][:, :, 0, 0]).sum()
                for i in range(side) for j in range(side)]
    np.testing.assert_allclose(model.predict(x, verbose=0).reshape(-1), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("seed", [0, 1])
def test_autodiff_equals_the_slides_gradients_to_float32_rounding(seed):
    assert la.conv_weight_gradient_gap(seed) < 1e-5
    gap, shared = la.max_pool_gradient_gap(seed)
    assert gap < 1e-5 and shared >= 1
    assert la.sigmoid_xent_gradient_gap(seed) < 1e-5


def test_max_pool_routing_adds_the_gradients_of_overlapping_windows():
    x = np.zeros((1, 5, 5, 1))
    x[0, 2, 2, 0] = 1.0  # the max of all four 3x3 windows at stride 2
    g = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    grad, hits = la.max_pool_routing(x, g, pool=3, stride=2)
    assert grad[0, 2, 2, 0] == 10.0 and hits[0, 2, 2, 0] == 4
    assert grad.sum() == 10.0 and hits.sum() == 4


# ---------------------------------------------------------------- architectures and counts

def test_weight_depth_counts_the_longest_path_of_weight_layers():
    x = keras.Input((8, 8, 1))
    stem = L.Conv2D(2, 3, padding="same")(x)
    long = L.Conv2D(2, 3, padding="same")(L.Conv2D(2, 3, padding="same")(stem))
    merged = L.Add()([long, L.Conv2D(2, 1)(stem)])  # a side path of one conv
    model = keras.Model(x, L.Dense(3)(L.Flatten()(L.MaxPooling2D()(merged))))
    assert la.weight_depth(model) == 1 + 2 + 1
    assert la.weight_depth(lenet5()) == 5
    assert la.weight_depth(googlenet()) == 22


def test_a_3x3_conv_costs_the_same_in_each_cifar_stage():
    assert la.cifar_stage_conv_macs() == {1: ("32x32x16", 2_359_296), 2: ("16x16x32", 2_359_296),
                                          3: ("8x8x64", 2_359_296)}
    assert 3 * 3 * 16 * 16 * 32 * 32 == 3 * 3 * 32 * 32 * 16 * 16 == 3 * 3 * 64 * 64 * 8 * 8 == 2_359_296


def test_layout_reads_lenet_as_the_builder_makes_it():
    assert la.layout(lenet5()) == "CONV-POOL-CONV-POOL-CONV-FC-FC"


def test_a_224_crop_has_289_positions_per_axis_in_512():
    assert la.crop_offsets() == 512 - 224 + 1 == 289
    assert la.crop_offsets(8, 3) == 6


def test_the_ilsvrc_slideshow_durations():
    assert la.duration(1000, 1, 60) == pytest.approx(16.667, abs=1e-3)
    assert la.duration(50_000, 2, 3600) == pytest.approx(27.778, abs=1e-3)
    assert la.duration(1_200_000, 2, 86_400) == pytest.approx(27.778, abs=1e-3)


# ---------------------------------------------------------------- the claims

EXPECTED = {  # id: (measured, verdict), exact where the value is
    "arith.fc.params_32x32": (3_146_752, "reproduced"),
    "arith.connectivity.fully_connected": (10**12, "reproduced"),
    "arith.connectivity.locally_connected": (10**8, "reproduced"),
    "arith.connectivity.shared": (10_000, "reproduced"),
    "arith.connectivity.formulas_vs_keras": (0, "reproduced"),
    "arith.backprop.conv_weight_sum": (None, "reproduced"),
    "arith.backprop.max_pool_routing": (None, "reproduced"),
    "arith.backprop.sigmoid_xent": (None, "reproduced"),
    "arith.resnet152_vs_vgg16.macs": (pytest.approx(11_282_415_616 / 15_470_264_320), "reproduced"),
    "arith.resnet152_vs_vgg.layers": (8, "reproduced"),
    "arith.cifar_resnet.conv_macs.stage1": (2_359_296, "reproduced"),
    "arith.cifar_resnet.conv_macs.stage2": (2_359_296, "reproduced"),
    "arith.cifar_resnet.conv_macs.stage3": (2_359_296, "reproduced"),
    "arith.googlenet.depth": (22, "reproduced"),
    "arith.lenet.layout": (3, "reproduced"),
    "arith.deepimage.crops": (83_521, "not_reproduced"),
    "arith.ilsvrc.category_names": (pytest.approx(1000 / 60), "reproduced"),
    "arith.ilsvrc.validation_slideshow": (pytest.approx(100_000 / 3600), "reproduced"),
    "arith.ilsvrc.training_slideshow": (pytest.approx(2_400_000 / 86_400), "partial"),
}


@pytest.fixture(scope="module")
def claims(tmp_path_factory):
    rec = Record("01_architecture_arithmetic", "arith", tmp_path_factory.mktemp("run"))
    la.record_lecture_claims(rec)
    return {c["id"]: c for c in rec.claims}


def test_record_lecture_claims_records_each_claim_with_its_value_and_verdict(claims):
    assert list(claims) == list(EXPECTED)
    for cid, (measured, verdict) in EXPECTED.items():
        claim = claims[cid]
        if measured is None:
            assert claim["measured"] < 1e-5, cid
        else:
            assert claim["measured"] == measured, cid
        assert claim["verdict"] == verdict, cid
        assert claim["source"].startswith("seed 00") and claim["statement"] and claim["unit"], cid


def test_the_deep_image_figure_is_flagged_and_the_lenet_note_names_both_layouts(claims):
    assert claims["arith.deepimage.crops"]["source_inconsistent"]
    assert not any(c["source_inconsistent"] for cid, c in claims.items() if cid != "arith.deepimage.crops")
    note = claims["arith.lenet.layout"]["note"]
    assert "CONV-POOL-CONV-POOL-CONV-FC-FC" in note and "[CONV-POOL-CONV-POOL-FC-FC]" in note


def test_verdicts_follow_the_measured_values(tmp_path, monkeypatch):
    nets = iter([(20e9, 152), (15e9, 16), (19e9, 16)])  # a ResNet dearer than VGG-16, a 16-layer VGG-19
    monkeypatch.setattr(la, "macs_and_depth", lambda build: next(nets))
    monkeypatch.setattr(la, "crop_offsets", lambda: 288)
    rec = Record("01_architecture_arithmetic", "arith", tmp_path)
    la.record_lecture_claims(rec)
    claims = {c["id"]: c for c in rec.claims}
    assert claims["arith.resnet152_vs_vgg16.macs"]["verdict"] == "not_reproduced"
    assert claims["arith.resnet152_vs_vgg.layers"]["verdict"] == "not_reproduced"
    crops = claims["arith.deepimage.crops"]
    assert crops["verdict"] == "reproduced" and not crops["source_inconsistent"]
