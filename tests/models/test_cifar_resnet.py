"""The CIFAR nets of He et al. 2016 (Section 4.2) and Veit et al. 2016's lesions."""

import keras
import numpy as np
import pytest

from cnnlab.arith import trainable_params
from cnnlab.lesions import blocks, deletable, is_downsampling, lesion_table, lesioned
from cnnlab.models.cifar_resnet import (PAPER_PARAMS_M, ZeroPadShortcut, blocks_for, cifar_resnet, depth_of,
                                        step_schedule)

# Trainable parameters at full width, 32x32x3, 10 classes, option A: convs without bias, BN's gamma and beta,
# the classifier. Table 6 rounds them to 0.27M, 0.46M, 0.66M, 0.85M and 1.7M.
TRAINABLE = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


def numpy(*outputs):
    """Model outputs as NumPy arrays (a PyTorch output that tracks gradients cannot be compared directly)."""
    return [keras.ops.convert_to_numpy(out) for out in outputs]


def tiny(**kwargs):
    return cifar_resnet(8, input_shape=(8, 8, 1), width_divisor=4, seed=3, **kwargs)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=(6, 8, 8, 1)).astype("float32")


@pytest.mark.parametrize("depth", sorted(TRAINABLE))
def test_parameters_match_table_6(depth):
    resnet, plain = cifar_resnet(depth), cifar_resnet(depth, residual=False)
    assert trainable_params(resnet) == trainable_params(plain) == TRAINABLE[depth]
    assert resnet.count_params() == plain.count_params()  # option A's shortcuts are parameter-free
    assert round(TRAINABLE[depth] / 1e6, 2 if depth < 110 else 1) == PAPER_PARAMS_M[depth]


def test_option_b_adds_exactly_the_projections():
    a, b = cifar_resnet(20), cifar_resnet(20, shortcut="B")
    convs, bns = 16 * 32 + 32 * 64, 32 + 64  # 1x1 projections into stages 2 and 3, and their BN
    assert trainable_params(b) - trainable_params(a) == convs + 2 * bns
    assert b.count_params() - a.count_params() == convs + 4 * bns  # BN's moving mean and variance too
    assert [layer.name for layer in b.layers if "shortcut" in layer.name] == [
        "stage2_block1_shortcut_conv", "stage2_block1_shortcut_bn", "stage3_block1_shortcut_conv",
        "stage3_block1_shortcut_bn"]


def test_depth_helpers_and_weight_layers():
    assert [depth_of(n) for n in (3, 5, 7, 9, 18)] == [20, 32, 44, 56, 110]
    assert blocks_for(56) == 9
    model = cifar_resnet(20, shortcut="B")
    weight_layers = [layer for layer in model.layers if layer.weights and "_bn" not in layer.name]
    assert len([layer for layer in weight_layers if "shortcut" not in layer.name]) == 20
    with pytest.raises(ValueError, match="depth must be 6n\\+2"):
        blocks_for(54)
    with pytest.raises(ValueError, match="width_divisor must divide 16"):
        cifar_resnet(20, width_divisor=3)
    with pytest.raises(ValueError, match="shortcut must be one of"):
        cifar_resnet(20, shortcut="C")


def test_fashion_mnist_stages_are_28_14_7():
    model = cifar_resnet(20, input_shape=(28, 28, 1), width_divisor=2)
    assert [tuple(model.get_layer(f"stage{s}_block3_out").output.shape) for s in (1, 2, 3)] == [
        (None, 28, 28, 8), (None, 14, 14, 16), (None, 7, 7, 32)]
    assert tuple(model.output.shape) == (None, 10) and model.layers[-1].name == "logits"
    assert tuple(cifar_resnet(20, input_shape=(28, 28, 1), include_top=False, pooling="avg").output.shape) == (None, 64)
    assert cifar_resnet(20, classifier_activation="softmax").layers[-1].name == "predictions"


def test_same_seed_same_weights_in_plain_and_residual_nets():
    resnet, plain = tiny(), tiny(residual=False)
    for layer in plain.layers[1:]:
        for w, v in zip(layer.get_weights(), resnet.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(w, v)


def test_shortcut_a_is_the_zero_padded_subsampled_input(images):
    x = np.abs(images[..., [0, 0, 0, 0]])  # 4 channels
    out = keras.ops.convert_to_numpy(ZeroPadShortcut(8, 2)(x))
    assert out.shape == (6, 4, 4, 8)
    np.testing.assert_array_equal(out[..., :4], x[:, ::2, ::2, :])
    assert not out[..., 4:].any()
    assert tuple(ZeroPadShortcut(8, 2).compute_output_shape((None, 7, 7, 4))) == (None, 4, 4, 8)


def test_no_deletion_is_the_same_net_through_the_same_layers(images):
    for model in (tiny(), tiny(shortcut="B"), tiny(residual=False)):
        same = lesioned(model)
        assert all(a is b for a, b in zip(same.layers[1:], model.layers[1:]))  # shared: nothing copied
        assert len(same.layers) == len(model.layers)
        np.testing.assert_array_equal(*numpy(same(images), model(images)))


@pytest.mark.parametrize("shortcut, block", [("A", "stage1_block1"), ("A", "stage2_block1"), ("B", "stage3_block1")])
def test_deleting_a_block_equals_zeroing_its_residual_branch(images, shortcut, block):
    model = tiny(shortcut=shortcut)
    lesion = lesioned(model, [block])
    bn2 = model.get_layer(f"{block}_bn2")
    gamma, beta, mean, var = bn2.get_weights()
    bn2.set_weights([0 * gamma, 0 * beta, mean, var])  # the branch's output is exactly 0
    np.testing.assert_allclose(*numpy(lesion(images), model(images)), rtol=1e-6, atol=1e-6)
    removed = {layer.name for layer in model.layers} - {layer.name for layer in lesion.layers}
    assert removed == {f"{block}_{part}" for part in ("conv1", "bn1", "relu1", "conv2", "bn2", "add")}


def test_deleting_a_plain_block_passes_its_input_on(images):
    model = tiny(residual=False)
    lesion = lesioned(model, ["stage1_block1"])
    stem = keras.Model(model.input, model.get_layer("stem_relu").output)
    after = keras.Model(model.get_layer("stage2_block1_conv1").input, model.output)
    np.testing.assert_allclose(*numpy(lesion(images), after(stem(images))), rtol=1e-6, atol=1e-6)


def test_plain_nets_refuse_to_delete_downsampling_blocks():
    model = cifar_resnet(14, residual=False, input_shape=(8, 8, 1), width_divisor=4)
    assert is_downsampling(model, "stage2_block1") and not is_downsampling(model, "stage2_block2")
    assert deletable(model) == [b for b in blocks(model) if b not in ("stage2_block1", "stage3_block1")]
    with pytest.raises(ValueError, match="plain net plain14 cannot delete \\['stage2_block1'\\]"):
        lesioned(model, ["stage2_block1"])
    with pytest.raises(ValueError, match="no block"):
        lesioned(model, ["stage4_block1"])


def test_lesion_table_rows(images):
    model = tiny()
    labels = np.arange(6) % 10
    table = lesion_table(model, images, labels, max_k=2, draws=2, seed=0)
    assert list(table.kind) == ["none"] + ["single"] * 3 + ["random"] * 4
    assert list(table.k) == [0, 1, 1, 1, 1, 1, 2, 2]
    assert list(table.deleted[:4]) == ["", "stage1_block1", "stage2_block1", "stage3_block1"]
    assert table.downsampling[2] and not table.downsampling[1]
    assert table.increase[0] == 0 and np.allclose(table.error - table.error[0], table.increase)
    assert table.equals(lesion_table(model, images, labels, max_k=2, draws=2, seed=0))
    with pytest.raises(ValueError, match="max_k must be between 0 and the 3 deletable blocks"):
        lesion_table(model, images, labels, max_k=4)


def test_step_schedule_warms_up_then_divides_by_ten():
    schedule = step_schedule(100, 0.1, warmup_steps=10)
    assert [round(float(schedule(s)), 6) for s in (0, 10, 11, 50, 51, 75, 76)] == [
        0.01, 0.01, 0.1, 0.1, 0.01, 0.01, 0.001]
    with pytest.raises(ValueError, match="warmup_steps"):
        step_schedule(100, warmup_steps=50)
