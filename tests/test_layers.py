"""Tests for cnnlab.layers: expected values from the papers' formulas, written here."""

import keras
import numpy as np
import pytest

from cnnlab.layers import LocalResponseNormalization, PositionBias, inception_module, local_response_normalization


def lrn_reference(a, k=2.0, n=5, alpha=1e-4, beta=0.75):
    """Krizhevsky et al. 2012, Section 3.3, in float64: alpha times the square sum."""
    channels = a.shape[-1]
    out = np.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        sq_sum = (a[..., lo : hi + 1] ** 2).sum(axis=-1)
        out[..., i] = a[..., i] / (k + alpha * sq_sum) ** beta
    return out


@pytest.fixture(scope="module")
def big_activations():
    # Scale 30: alpha * sum (about 0.45) is comparable with k = 2, so LRN matters.
    return 30.0 * np.random.default_rng(0).standard_normal((2, 5, 5, 16))


def test_lrn_matches_alexnet_formula(big_activations):
    got = LocalResponseNormalization()(big_activations.astype("float32"))
    np.testing.assert_allclose(
        np.asarray(got), lrn_reference(big_activations), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("n", [3, 5])
def test_lrn_in_keras_ops_matches_the_formula(big_activations, n):
    """The keras.ops LRN of the JAX and PyTorch backends, on whichever backend runs the tests."""
    got = local_response_normalization(big_activations.astype("float32"), 2.0, n, 1e-4, 0.75)
    np.testing.assert_allclose(np.asarray(got), lrn_reference(big_activations, n=n), atol=1e-5, rtol=0)


def test_lrn_reference_is_sensitive_to_the_alpha_convention(big_activations):
    # Caffe's convention (alpha / n) must be told apart from the paper's here.
    caffe = lrn_reference(big_activations, alpha=1e-4 / 5)
    assert np.abs(caffe - lrn_reference(big_activations)).max() > 1.0


def test_lrn_custom_constants_and_config():
    layer = LocalResponseNormalization(k=1.0, n=3, alpha=1e-3, beta=0.5, name="lrn")
    x = np.random.default_rng(1).standard_normal((1, 3, 3, 7)) * 10
    expected = lrn_reference(x, k=1.0, n=3, alpha=1e-3, beta=0.5)
    np.testing.assert_allclose(
        np.asarray(layer(x.astype("float32"))), expected, atol=1e-5, rtol=0
    )
    clone = LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.k, clone.n, clone.alpha, clone.beta) == (1.0, 3, 1e-3, 0.5)
    assert layer.count_params() == 0


def test_lrn_rejects_even_window():
    with pytest.raises(ValueError, match="odd"):
        LocalResponseNormalization(n=4)


def test_position_bias_params_and_values():
    inputs = keras.Input((19, 19, 2))
    layer = PositionBias()
    model = keras.Model(inputs, layer(inputs))
    assert layer.count_params() == 19 * 19 * 2
    bias = np.random.default_rng(2).standard_normal((19, 19, 2)).astype("float32")
    layer.set_weights([bias])
    x = np.ones((3, 19, 19, 2), "float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), x + bias, atol=1e-6)


def test_layers_survive_save_and_load(tmp_path):
    inputs = keras.Input((4, 4, 6))
    x = LocalResponseNormalization(k=1.5, name="lrn")(inputs)
    outputs = PositionBias(name="bias")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("bias").set_weights([np.full((4, 4, 6), 0.5, "float32")])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(3).standard_normal((2, 4, 4, 6)).astype("float32") * 20
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    assert loaded.get_layer("lrn").k == 1.5


def conv_params(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def test_inception_3a_channels_params_and_names():
    inputs = keras.Input((28, 28, 192))
    outputs = inception_module(inputs, 64, 96, 128, 16, 32, 32, name="inception_3a")
    model = keras.Model(inputs, outputs)
    assert tuple(outputs.shape) == (None, 28, 28, 64 + 128 + 32 + 32)  # 256, Table 1
    expected = (
        conv_params(1, 192, 64)
        + conv_params(1, 192, 96)
        + conv_params(3, 96, 128)
        + conv_params(1, 192, 16)
        + conv_params(5, 16, 32)
        + conv_params(1, 192, 32)
    )
    assert model.count_params() == expected == 163_696
    suffixes = [
        "1x1",
        "3x3_reduce",
        "3x3",
        "5x5_reduce",
        "5x5",
        "pool",
        "pool_proj",
        "concat",
    ]
    assert {f"inception_3a_{s}" for s in suffixes} == {
        layer.name for layer in model.layers[1:]
    }


def test_naive_inception_cs231n_example():
    inputs = keras.Input((28, 28, 256))
    outputs = inception_module(
        inputs, 128, None, 192, None, 96, None, "naive", reductions=False
    )
    model = keras.Model(inputs, outputs)
    assert tuple(outputs.shape) == (
        None,
        28,
        28,
        128 + 192 + 96 + 256,
    )  # 672: the pool keeps 256
    expected = (
        conv_params(1, 256, 128) + conv_params(3, 256, 192) + conv_params(5, 256, 96)
    )
    assert model.count_params() == expected
    assert "naive_3x3_reduce" not in {layer.name for layer in model.layers}


def test_inception_with_reductions_cs231n_example():
    inputs = keras.Input((28, 28, 256))
    outputs = inception_module(inputs, 128, 64, 192, 64, 96, 64, name="reduced")
    assert tuple(outputs.shape) == (None, 28, 28, 128 + 192 + 96 + 64)  # 480
