"""cnnlab.visual: receptive-field boxes exact against input gradients, top patches, occlusion on a model whose
answer depends on one known region, filter smoothness, class purity, class-model images."""

import keras
import numpy as np
import pytest

from cnnlab import arith, backend, visual
from cnnlab.models.convnet import POOL, conv_stack


@pytest.fixture(scope="module")
def net():
    return conv_stack([4, POOL, 6, POOL, 8], kernel_size=3, seed=0, input_shape=(20, 20, 1))


def test_receptive_field_boxes(net):
    assert visual.receptive_field_box(net, "hidden_1") == (3, 1, 0.0)
    assert visual.receptive_field_box(net, "pool_1") == (4, 2, 0.5)
    assert visual.receptive_field_box(net, "hidden_2") == (8, 2, 0.5)
    assert visual.receptive_field_box(net, "hidden_3")[0] == arith.receptive_field([3, 2, 3, 2, 3], [1, 2, 1, 2, 1])
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        visual.receptive_field_box(net, "nope")


def test_the_box_is_where_the_unit_looks(net):
    """The input gradient of an interior unit is zero outside its box and not zero on the box's edges."""
    size, jump, start = visual.receptive_field_box(net, "hidden_3")
    x = np.random.default_rng(0).normal(size=(1, 20, 20, 1)).astype(np.float32)
    conv = net.get_layer("hidden_3")
    probe = keras.Model(net.inputs[0], net.get_layer("pool_2").output)

    def unit(image):  # the pre-activation, so that a ReLU at 0 hides nothing
        return keras.ops.sum(keras.ops.conv(probe(image), conv.kernel, 1, "same")[0, 2, 2, :] ** 2)

    grad = np.abs(backend.gradients(unit, x)[1][0][0, ..., 0]) > 0
    rows, cols = np.nonzero(grad)
    low = start + 2 * jump - (size - 1) / 2
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (low, low + size - 1, low, low + size - 1)


def test_top_patches_crop_the_strongest_images(net):
    x = np.random.default_rng(1).random((30, 20, 20, 1)).astype(np.float32)
    patches, images, responses = visual.top_patches(net, "hidden_2", x, top=5)
    assert patches.shape == (6, 5, 8, 8, 1) and images.shape == (6, 5)
    peaks = keras.ops.convert_to_numpy(keras.Model(net.inputs[0], net.get_layer("hidden_2").output)(x)).max(axis=(1, 2))
    for unit in range(6):
        assert images[unit].tolist() == np.argsort(-peaks[:, unit], kind="stable")[:5].tolist()
        assert np.allclose(responses[unit], peaks[images[unit], unit])


def test_class_purity_and_what_random_labels_give():
    assert visual.class_purity([[1, 1, 2], [3, 4, 5]]).tolist() == pytest.approx([2 / 3, 1 / 3])
    assert visual.chance_purity(2, 2) == 0.75  # two labels of two classes: the same with probability 1/2
    assert visual.chance_purity(3, 1) == 1.0
    labels = np.random.default_rng(0).integers(0, 10, (20000, 9))
    assert visual.chance_purity(9, 10) == pytest.approx(visual.class_purity(labels).mean(), abs=0.005)


def test_occlusion_finds_the_one_region_the_answer_depends_on():
    inputs = keras.Input((12, 12, 1))
    region = keras.layers.Lambda(lambda t: keras.ops.sum(t[:, 6:9, 2:5, 0], axis=(1, 2)), output_shape=())(inputs)
    logits = keras.layers.Lambda(lambda r: keras.ops.stack([r, keras.ops.zeros_like(r)], axis=1),
                                 output_shape=(2,))(region)
    model = keras.Model(inputs, logits)
    drop = visual.occlusion_map(model, np.ones((12, 12, 1), np.float32), 0, size=3, stride=1)
    assert drop.shape == (10, 10)
    assert np.unravel_index(drop.argmax(), drop.shape) == (6, 2)
    assert drop[0, 8] == 0  # far from the region nothing changes


def test_filters_of_iid_weights_are_uncorrelated_smooth_ones_are_not():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(5, 5, 1, 64))
    assert abs(visual.neighbour_correlation(iid) + 1 / 24) < 0.05
    ramp = np.linspace(-1, 1, 5)
    smooth = np.stack([np.add.outer(a * ramp, b * ramp) for a, b in rng.normal(size=(64, 2))], axis=-1)[:, :, None]
    assert visual.neighbour_correlation(smooth) > 0.5


def test_class_model_images_reach_their_class():
    dense = keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=0))
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), dense])
    images, probs = visual.class_model_images(model, [0, 1, 2], steps=100, learning_rate=0.1, l2=0.001)
    assert images.shape == (3, 6, 6, 1)
    assert (probs > 0.9).all()
