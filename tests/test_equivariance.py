"""Equivariance and shift invariance, measured on nets whose answer is known."""

import keras
import numpy as np
import pytest

from cnnlab import equivariance


def conv_net(kernel: np.ndarray, pool: bool = False):
    """One 'same' conv layer with the given 2-D kernel (one channel in and out, no bias), then a 2x2 max pool."""
    layers = [keras.Input((12, 12, 1)), keras.layers.Conv2D(1, kernel.shape, padding="same", use_bias=False,
                                                            name="conv")]
    layers += [keras.layers.MaxPooling2D(2, name="pool")] if pool else []
    model = keras.Sequential(layers)
    model.get_layer("conv").set_weights([kernel[:, :, None, None].astype("float32")])
    return model


def test_shift_rotate_and_halve_move_pixels_exactly():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    assert equivariance.shift(x, 1, 2)[0, :, :, 0].tolist() == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 4, 5],
                                                                 [0, 0, 8, 9]]
    assert equivariance.shift(x, -1, 0)[0, :, :, 0].tolist() == [[4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15],
                                                                 [0, 0, 0, 0]]
    assert equivariance.rotate(x)[0, :, :, 0].tolist() == np.rot90(x[0, :, :, 0]).tolist()
    assert equivariance.halve(x)[0, :, :, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]


def test_a_conv_layer_commutes_with_a_shift_but_not_with_a_rotation_unless_its_kernel_is_symmetric():
    images = np.random.default_rng(0).normal(size=(4, 12, 12, 1)).astype("float32")
    oriented = conv_net(np.array([[1.0, 0.0, -1.0]] * 3))  # a vertical-edge filter
    symmetric = conv_net(np.array([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]))
    shift = equivariance.TRANSFORMS["shift by (3, 2) pixels"]
    assert equivariance.transform_error(oriented, "conv", images, shift, margin=4) == pytest.approx(0, abs=1e-6)
    assert equivariance.transform_error(oriented, "conv", images, equivariance.rotate, margin=4) > 0.5
    assert equivariance.transform_error(symmetric, "conv", images, equivariance.rotate, margin=4) == pytest.approx(
        0, abs=1e-6)
    # without the margin, the zeros shifted in at the border make the shifted maps differ there
    assert equivariance.transform_error(oriented, "conv", images, shift, margin=0) > 0.01


def test_a_max_pool_changes_less_in_place_than_the_maps_it_pools():
    images = np.zeros((2, 12, 12, 1), dtype="float32")
    images[:, 4, 4] = 1.0  # a dot: shifted by one pixel it stays inside the same 2x2 pooling window
    net = conv_net(np.ones((1, 1)), pool=True)
    assert equivariance.shift_change(net, "conv", images) == pytest.approx(np.sqrt(2))  # |e1 - e0| / |e0|
    assert equivariance.shift_change(net, "pool", images) == 0
