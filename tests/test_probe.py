"""Signal propagation probe and the plain nets it measures."""

import keras
import numpy as np
import pytest

from cnnlab import probe
from cnnlab.models.convnet import conv_stack
from cnnlab.models.plain import plain_cnn, plain_mlp


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((64, 28, 28, 1)).astype("float32"), rng.integers(0, 10, 64)


def test_plain_nets_have_the_asked_depth_and_counts():
    mlp = plain_mlp(5, width=64, seed=0)
    assert [l.name for l in probe.hidden_layers(mlp)] == [f"hidden_{i}" for i in range(1, 6)]
    assert mlp.count_params() == (784 * 64 + 64) + 4 * (64 * 64 + 64) + (64 * 10 + 10)
    cnn = plain_cnn(4, filters=8, seed=0)
    assert cnn.count_params() == (9 * 1 * 8 + 8) + 3 * (9 * 8 * 8 + 8) + (8 * 10 + 10)
    k = conv_stack([32, "M", 32, "M", 64, "M"], kernel_size=5, init="normal_0.01", seed=0)
    assert k.count_params() == (25 * 32 + 32) + (25 * 32 * 32 + 32) + (25 * 32 * 64 + 64) + (3 * 3 * 64 * 10 + 10)
    assert len(probe.hidden_layers(k)) == 3


def test_same_seed_same_net():
    a, b = plain_mlp(3, width=16, seed=5), plain_mlp(3, width=16, seed=5)
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def test_propagation_matches_a_direct_computation(batch):
    x, y = batch
    model = plain_mlp(3, width=32, activation="relu", init="he_normal", seed=0)
    frame = probe.propagation(model, x, y)
    assert list(frame.depth) == [1, 2, 3]
    first = keras.ops.convert_to_numpy(keras.Model(model.input, model.get_layer("hidden_1").output)(x))
    assert frame.act_std[0] == pytest.approx(first.std(), rel=1e-6)
    assert frame.act_ratio[0] == 1.0 and frame.grad_ratio[0] == 1.0
    assert frame.zero_fraction[0] == pytest.approx((first == 0).mean())


def test_propagation_in_chunks_equals_one_batch(batch):
    x, y = batch
    model = plain_cnn(3, filters=4, activation="relu", init="he_normal", seed=1)
    whole = probe.propagation(model, x, y, batch_size=len(x))
    pairs = probe.activations_and_gradients(model, x, y)
    assert list(whole.grad_std) == pytest.approx([g.std() for _, g in pairs], rel=1e-5)
    for size in (7, 32):  # the last chunk is smaller: its gradient weight is its share of the images
        chunked = probe.propagation(model, x, y, batch_size=size)
        for column in ("act_std", "grad_std", "act_mean", "act_ratio", "grad_ratio", "zero_fraction"):
            assert list(chunked[column]) == pytest.approx(list(whole[column]), rel=1e-5), (size, column)


def test_vanishing_signal_under_the_heuristic_and_not_under_he(batch):
    x, y = batch
    he = probe.propagation(plain_mlp(20, width=256, activation="relu", init="he_normal", seed=0), x, y)
    heuristic = probe.propagation(plain_mlp(20, width=256, activation="relu", init="heuristic", seed=0), x, y)
    assert 0.5 <= he.act_ratio.iloc[-1] <= 2
    assert heuristic.act_ratio.iloc[-1] < 1e-5  # theory (1/6)^(19/2) = 4e-8
    assert heuristic.grad_std.iloc[0] < 1e-5 * heuristic.grad_std.iloc[-1]


def test_model_without_hidden_layers_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no layers named hidden_"):
        probe.hidden_layers(model)


def test_unit_activity_counts_units_that_never_fire():
    x = np.abs(np.random.default_rng(1).standard_normal((50, 4, 4, 1))).astype("float32")
    inputs = keras.Input((4, 4, 1))
    hidden = keras.layers.Conv2D(3, 1, activation="relu", name="hidden_1", use_bias=False)
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(hidden(inputs))))
    hidden.set_weights([np.array([1.0, -1.0, 2.0], dtype="float32").reshape(1, 1, 1, 3)])  # channel 2 never fires
    frame = probe.unit_activity(model, x, batch_size=16)
    assert frame.units[0] == 4 * 4 * 3
    assert frame.dead_channels[0] == pytest.approx(1 / 3)
    assert frame.never_fire[0] == pytest.approx(1 / 3)
    assert frame.mean_activation[0] == pytest.approx((x.mean() + 0 + 2 * x.mean()) / 3, rel=1e-5)
