"""Tests for cnnlab.augment: augmentation acts in training only; test-time flipping averages an image and its
mirror image."""

import keras
import numpy as np
import pytest

from cnnlab import augment
from cnnlab.models import conv_stack


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=(6, 28, 28, 1)).astype("float32")


def test_augmented_is_the_model_in_inference_and_random_in_training(images):
    inner = conv_stack([4], seed=0)
    model = augment.augmented(inner, flip=True, shift=0.2, seed=1)
    assert [layer.name for layer in model.layers[1:3]] == ["random_flip", "random_shift"]
    assert model.count_params() == inner.count_params()
    def output(net, training):
        return keras.ops.convert_to_numpy(net(images, training=training))

    np.testing.assert_array_equal(output(model, False), output(inner, False))
    assert not np.allclose(output(model, True), output(inner, False))
    flips_only = augment.augmented(inner, flip=True, shift=0.0, seed=1)
    assert [layer.name for layer in flips_only.layers[1:-1]] == ["random_flip"]
    mirrored = keras.ops.convert_to_numpy(flips_only.get_layer("random_flip")(images, training=True))
    for m, x in zip(mirrored, images):  # each image either kept or mirrored left to right
        assert np.array_equal(m, x) or np.array_equal(m, x[:, ::-1])


def test_augmented_refuses_a_shift_out_of_range():
    with pytest.raises(ValueError, match=r"shift must be a fraction of the image size in \[0, 1\), got 1.5"):
        augment.augmented(conv_stack([4]), shift=1.5)


def test_flip_averaged_is_the_mean_of_both_softmaxes(images):
    model = conv_stack([4], seed=0)
    both = augment.flip_averaged(model, images)
    softmax = [keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(x, verbose=0))) for x in
               (images, images[:, :, ::-1])]
    np.testing.assert_allclose(both, (softmax[0] + softmax[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(both.sum(axis=1), 1.0, rtol=1e-6)
    symmetric = (images + images[:, :, ::-1]) / 2  # its own mirror image: averaging changes nothing
    np.testing.assert_allclose(augment.flip_averaged(model, symmetric),
                               keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(symmetric, verbose=0))),
                               rtol=1e-5)
