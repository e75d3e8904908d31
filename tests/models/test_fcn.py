"""Tests for cnnlab.models.fcn and cnnlab.patches: convolutionalisation and d-regularly sparse kernels exact to 1e-5 against
the classifier run crop by crop and patch by patch, bilinear upsampling against tf.image.resize's values,
and the segmentation nets' shapes, starts and trainable weights."""

import keras
import numpy as np
import pytest

from cnnlab.models.convnet import POOL, conv_stack
from cnnlab.models.fcn import (
    DilatedPooling2D,
    backbone_classifier,
    bilinear_kernel,
    convolutionalize,
    dense_sparse,
    encoder_decoder,
    fcn,
    patch_classifier,
    total_stride,
    upsampling,
)
from cnnlab.patches import centre_pad, patch_by_patch, speedup

TOL = 1e-5


def randomised(model, seed=0):
    """Every weight drawn at random (biases and BN statistics too), so that no equality holds by accident."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):  # gamma, beta, moving mean, moving variance
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if i in (0, 3) else rng.normal(0, 0.1, w.shape)
                               for i, w in enumerate(weights)])
        elif weights:
            layer.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in weights])
    return model


def images(n, size, seed=1):
    return np.random.default_rng(seed).random((n, size, size, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def lenet_like():
    return randomised(patch_classifier(seed=0))


# ---------------------------------------------------------------- convolutionalisation


@pytest.mark.parametrize("build", [
    lambda: conv_stack((8, POOL, 16, POOL, 16, POOL), dense=(32,), seed=0),
    lambda: conv_stack((8, POOL, 16, POOL), dense=(32, 16), batch_norm=True, seed=0),
    lambda: patch_classifier(seed=0),
])
def test_convolutionalize_same_logits_on_the_training_size(build):
    model = randomised(build())
    net = convolutionalize(model)
    x = images(8, 28)
    assert net.input.shape[1:3] == (None, None)
    scores = net.predict(x, verbose=0)
    assert scores.shape[1:3] == (1, 1)
    assert np.abs(scores[:, 0, 0] - model.predict(x, verbose=0)).max() < TOL


def test_convolutionalize_kernels_are_the_dense_weights(lenet_like):
    net = convolutionalize(lenet_like)
    first, logits = lenet_like.get_layer("hidden_3").get_weights()[0], lenet_like.get_layer("logits").get_weights()[0]
    assert net.get_layer("hidden_3").kernel.shape == (4, 4, 32, 64)  # the 4x4x32 map under Flatten
    assert net.get_layer("logits").kernel.shape == (1, 1, 64, 10)
    # Flatten's order is H, W, C: input unit (h * 4 + w) * 32 + c
    assert np.array_equal(np.asarray(net.get_layer("hidden_3").kernel)[2, 3, 5], first[(2 * 4 + 3) * 32 + 5])
    assert np.array_equal(np.asarray(net.get_layer("logits").kernel)[0, 0], logits)


def test_score_map_entries_are_the_crops_at_the_total_stride(lenet_like):
    canvas = images(1, 60)[0]
    stride = total_stride(lenet_like)
    scores = convolutionalize(lenet_like).predict(canvas[None], verbose=0)[0]
    crops = patch_by_patch(lenet_like, canvas, stride=stride)
    assert stride == 4 and crops.shape == scores.shape == (9, 9, 10)  # (60 - 28) / 4 + 1
    assert np.abs(scores - crops).max() < TOL
    assert np.abs(scores[1, 2] - lenet_like.predict(canvas[None, 4:32, 8:36], verbose=0)[0]).max() < TOL


def test_crop_equality_needs_valid_padding():
    """With padding="same" the classifier pads each crop with zeros where the canvas net sees the neighbours:
    the training size still agrees, the crops do not."""
    model = randomised(conv_stack((8, POOL, 16, POOL, 16, POOL), dense=(32,), seed=0))
    canvas = images(1, 60)[0]
    stride = total_stride(model)
    scores = convolutionalize(model).predict(canvas[None], verbose=0)[0]
    crops = patch_by_patch(model, canvas, stride=stride)
    assert stride == 8 and crops.shape == (5, 5, 10)
    assert np.abs(scores[:5, :5] - crops).max() > 1e-3
    with pytest.raises(ValueError, match="padding='same'.*allowed: 'valid'"):
        dense_sparse(model)


def test_pools_that_drop_rows_leave_extra_entries_for_overhanging_crops():
    model = randomised(patch_classifier((8, POOL, 8, POOL, 16, POOL), dense=(16,), kernel_size=3, seed=0))
    canvas = images(1, 60)[0]
    scores = convolutionalize(model).predict(canvas[None], verbose=0)[0]  # 58, 29, 27, 13, 11, 5, 1x1 conv
    crops = patch_by_patch(model, canvas, stride=8)  # (60 - 28) // 8 + 1
    assert scores.shape[:2] == (5, 5) and crops.shape[:2] == (5, 5)
    assert np.abs(scores - crops).max() < TOL


def test_unsupported_layers_are_refused():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D(name="gap")(x)))
    with pytest.raises(ValueError, match="layer 'gap' is a GlobalAveragePooling2D; allowed: Conv2D"):
        convolutionalize(model)


# ---------------------------------------------------------------- d-regularly sparse kernels


def test_dense_sparse_equals_patch_by_patch_at_every_pixel(lenet_like):
    image = images(1, 44, seed=2)[0]
    net = dense_sparse(lenet_like)
    dense = net.predict(image[None], verbose=0)[0]
    patches = patch_by_patch(lenet_like, image, batch_size=100)
    assert dense.shape == patches.shape == (17, 17, 10)
    assert np.abs(dense - patches).max() < TOL
    strides = [layer.strides for layer in net.layers if hasattr(layer, "strides")]
    assert all(tuple(s) == (1, 1) for s in strides)
    assert net.get_layer("hidden_2").dilation_rate == (2, 2)  # after pool_1's stride 2
    assert net.get_layer("hidden_3").dilation_rate == (4, 4)  # the 4x4 "fc" kernel, after both pools
    assert net.get_layer("pool_2").dilation_rate == 2


def test_dense_sparse_with_average_and_overlapping_pools_and_centred_patches():
    """Strided conv, 3/2 overlapping max pool, average pool, and pools that drop rows (R < P: cropped)."""
    model = randomised(keras.Sequential([
        keras.Input((21, 21, 1)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(3, strides=2, name="pool1"),
        keras.layers.Conv2D(6, 1, activation="tanh", name="conv2"),
        keras.layers.AveragePooling2D(2, name="pool2"),
        keras.layers.Flatten(),
        keras.layers.Dense(5, name="logits"),
    ]))
    image = centre_pad(images(1, 12, seed=3)[0], 21)
    assert image.shape == (32, 32, 1)  # 10 zeros before, 10 after: one centred patch per pixel
    dense = dense_sparse(model).predict(image[None], verbose=0)[0]
    patches = patch_by_patch(model, image, batch_size=64)
    assert dense.shape == patches.shape == (12, 12, 5)
    assert np.abs(dense - patches).max() < TOL


def test_dense_sparse_saves_and_loads(lenet_like, tmp_path):
    net = dense_sparse(lenet_like)
    net.save(tmp_path / "dense.keras")
    loaded = keras.saving.load_model(tmp_path / "dense.keras")
    assert isinstance(loaded.get_layer("pool_1"), DilatedPooling2D)
    x = images(1, 32)
    assert np.array_equal(loaded.predict(x, verbose=0), net.predict(x, verbose=0))


def test_speedup_table(lenet_like):
    table = speedup(lenet_like, sizes=(16, 32), batch_size=128, max_patches=300)
    assert list(table.columns) == ["size", "patches", "patches_timed", "dense_s", "patch_s", "speedup", "max_abs_diff"]
    assert table.patches.tolist() == [256, 1024] and table.patches_timed.tolist() == [256, 300]
    assert (table.max_abs_diff < TOL).all() and (table.speedup > 0).all()


# ---------------------------------------------------------------- bilinear upsampling


def test_bilinear_kernel_values():
    k4 = bilinear_kernel(4, 3)
    assert k4.shape == (4, 4, 3, 3)
    assert np.allclose(k4[:, :, 1, 1], np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25]))
    assert np.all(k4[:, :, 0, 1] == 0) and np.all(k4[:, :, 2, 0] == 0)  # one channel does not feed another
    assert np.allclose(bilinear_kernel(3, 1)[:, :, 0, 0], np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]))
    assert np.allclose(bilinear_kernel(8, 1)[0, :, 0, 0] / bilinear_kernel(8, 1)[0, 0, 0, 0],
                       np.array([1, 3, 5, 7, 7, 5, 3, 1]))  # taps (2i + 1) / 8 for factor 4


def bilinear_at(x, row, col, factor):
    """Bilinear interpolation of the 2D array x at output pixel (row, col) of an x`factor` upsampling, with
    half-pixel centres: output pixel o sits at (o + 0.5) / factor - 0.5 in input coordinates."""
    r, c = (row + 0.5) / factor - 0.5, (col + 0.5) / factor - 0.5
    r0, c0 = int(np.floor(r)), int(np.floor(c))
    fr, fc = r - r0, c - c0
    top = (1 - fc) * x[r0, c0] + fc * x[r0, c0 + 1]
    bottom = (1 - fc) * x[r0 + 1, c0] + fc * x[r0 + 1, c0 + 1]
    return (1 - fr) * top + fr * bottom


@pytest.mark.parametrize("factor", [2, 4])
def test_upsampling_is_bilinear_interpolation_inside_the_border(factor):
    x = images(2, 6, seed=4)
    inputs = keras.Input((6, 6, 1))
    up = keras.Model(inputs, upsampling(factor, 1, "up")(inputs)).predict(x, verbose=0)
    reference = keras.ops.convert_to_numpy(keras.ops.image.resize(x, (6 * factor, 6 * factor), "bilinear"))
    inner = np.s_[:, factor:-factor, factor:-factor]  # at the border the transposed conv sees zeros
    assert up.shape == (2, 6 * factor, 6 * factor, 1)
    assert np.abs(up[inner] - reference[inner]).max() < TOL
    for row, col in [(factor, factor), (2 * factor, 3 * factor + 1), (3 * factor + 1, 4 * factor - 1)]:
        assert up[0, row, col, 0] == pytest.approx(bilinear_at(x[0, :, :, 0], row, col, factor), abs=TOL)


# ---------------------------------------------------------------- segmentation nets


@pytest.mark.parametrize("variant, fused", [("32s", []), ("16s", ["score_pool3"]),
                                            ("8s", ["score_pool3", "score_pool2"])])
def test_fcn_shapes_and_fusion(variant, fused):
    model = fcn(variant, seed=0)
    assert model.output.shape == (None, 64, 64, 11)
    assert sorted(layer.name for layer in model.layers if layer.name.startswith("score_pool")) == sorted(fused)
    assert not model.get_layer("upscore").trainable  # the final upsampling stays bilinear (Long et al. Sec. 4)
    assert np.all(model.predict(images(1, 64), verbose=0) == 0)  # zero-initialised scorers, as in the paper


def test_fcn_takes_other_sizes_multiple_of_16():
    model = fcn("8s", input_shape=(None, None, 1))
    assert model.predict(images(1, 48), verbose=0).shape == (1, 48, 48, 11)


def test_fixed_variant_trains_only_the_class_scorer():
    model = fcn("32s", fixed=True)
    assert [w.path for w in model.trainable_weights] == ["score_fr/kernel", "score_fr/bias"]
    assert sorted(w.path for w in fcn("16s", fixed=True).trainable_weights) == [
        "score_fr/bias", "score_fr/kernel", "score_pool3/bias", "score_pool3/kernel"]
    learned = {w.path for w in fcn("8s").trainable_weights}
    assert {"upscore_pool3/kernel", "upscore_pool2/kernel", "block1_conv1/kernel", "fc7/kernel"} <= learned
    assert "upscore/kernel" not in learned


def test_fcn_starts_from_the_convolutionalised_classifier():
    classifier = randomised(backbone_classifier(widths=(4, 8, 8, 16), fc=(16, 16)))
    assert classifier.get_layer("block4_pool").output.shape[1:] == (1, 1, 16)
    model = fcn("16s", classifier=classifier, widths=(4, 8, 8, 16), fc=(16, 16))
    for name in ("block1_conv1", "block4_conv1"):
        assert np.array_equal(model.get_layer(name).get_weights()[0], classifier.get_layer(name).get_weights()[0])
    for name in ("fc6", "fc7"):  # 1x1 convs from the Dense layers on the 1x1x16 top
        assert np.array_equal(model.get_layer(name).get_weights()[0][0, 0], classifier.get_layer(name).get_weights()[0])
    with pytest.raises(ValueError, match="layer 'block1_conv1' differs in shape"):
        fcn("32s", classifier=classifier)


def test_encoder_decoder():
    model = encoder_decoder(seed=0)
    assert model.output.shape == (None, 64, 64, 11)
    assert model.get_layer("skip1").output.shape == (None, 64, 64, 32)  # up-conv 16 + encoder 16
    classifier = randomised(backbone_classifier(widths=(4, 8, 8, 16)))
    model = encoder_decoder(widths=(4, 8, 8, 16), classifier=classifier)
    assert np.array_equal(model.get_layer("block3_conv1").get_weights()[0],
                          classifier.get_layer("block3_conv1").get_weights()[0])


def test_unknown_variant():
    with pytest.raises(ValueError, match="FCN variant '4s' unknown; allowed: 32s, 16s, 8s"):
        fcn("4s")
