"""Experiment 01 in the smoke profile: exact counts, and the published numbers that contradict their architecture."""

import pytest
from conftest import claims_of

pytestmark = pytest.mark.xdist_group("01_architecture_arithmetic")  # its tests share one worker, which runs its smoke notebook


def test_arith_exact_counts(smoke_results):
    claims = claims_of(smoke_results["01_architecture_arithmetic"])
    assert len(claims) == 116  # 97 of the classic nets, 19 of cnnlab.lecture_arithmetic
    exact_values = {
        "arith.outsize.grid": 0,
        "arith.example.params": 456,
        "arith.example.mults": 352_800,
        "arith.example.output": 4_704,
        "arith.alexnet.shapes": 0,
        "arith.vgg16.layer_weights": 0,
        "arith.vgg.equals_keras.D": 138_357_544,
        "arith.vgg.equals_keras.E": 143_667_240,
        "arith.resnet.equals_keras.50": 25_636_712,
        "arith.alphago.params": 3_882_793,
        "arith.alphago.positions": 361,
        "arith.inception.naive.output": 672,
        "arith.inception.bottleneck.output": 480,
        "arith.rf.three_3x3": 7,
        "arith.alexnet2.conv2_neurons": 186_624,
        "arith.fc.params_32x32": 3_146_752,
        "arith.connectivity.formulas_vs_keras": 0,
        "arith.cifar_resnet.conv_macs.stage3": 2_359_296,
        "arith.googlenet.depth": 22,
    }
    for cid, value in exact_values.items():
        assert claims[cid]["measured"] == value, cid
        assert claims[cid]["verdict"] == "reproduced", cid
    assert claims["arith.inception.naive.macs"]["measured"] == pytest.approx(854.196224)
    assert claims["arith.vgg.params.A"]["measured"] == pytest.approx(132.863336)
    assert claims["arith.resnet.flops.18"]["measured"] == pytest.approx(1.814073344)


def test_arith_flags_the_published_numbers_that_contradict_their_architecture(smoke_results):
    claims = claims_of(smoke_results["01_architecture_arithmetic"])
    inconsistent = {cid for cid, c in claims.items() if c["source_inconsistent"]}
    assert {"arith.alexnet2.conv1_neurons", "arith.vgg16.activations", "arith.googlenet.params.conv1",
            "arith.inception.bottleneck.macs", "arith.googlenet.five_million", "arith.deepimage.crops"} <= inconsistent
    assert claims["arith.alexnet2.conv1_neurons"]["measured"] == 55 * 55 * 96
    assert claims["arith.inception.bottleneck.macs"]["measured"] == pytest.approx(271.351808)
    assert all(claims[cid]["verdict"] != "reproduced" for cid in inconsistent)
