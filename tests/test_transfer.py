"""cnnlab.transfer: copying and freezing layers (trainable counts, frozen weights and BN statistics after a
fit), the variants, and the store of trained source nets."""

import keras
import numpy as np
import pytest

from cnnlab import backend, data, paths, transfer
from cnnlab.convergence import Plateau
from cnnlab.models.convnet import POOL, conv_stack
from cnnlab.suite.kernel import CHECK_ENV
from cnnlab.train import compile_sgd, fit_steps, seed_everything
from cnnlab.transfer import (check_variant, copy_layers, stored_model, stored_run, trained_net, trained_run,
                             transfer_builds, weight_blocks)

LAYOUT = [4, POOL, 8, POOL]


def small_net(seed, batch_norm=False):
    """Four weight layers: two convs, one hidden dense layer, the classifier."""
    return conv_stack(LAYOUT, classes=3, dense=[6], init="he_normal", batch_norm=batch_norm, seed=seed)


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    x = rng.random((64, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    return data.Dataset("tiny", x, y, x[:16], y[:16], ("a", "b", "c"))


def kernel(model, name):
    return keras.ops.convert_to_numpy(model.get_layer(name).kernel)


def fitted(model, dataset, steps=3):
    compile_sgd(model, 0.1)
    fit_steps(model, dataset, steps, steps, None, batch_size=16, seed=0, verbose=0)
    return model


def test_weight_blocks_pair_each_conv_with_its_batch_norm():
    blocks = weight_blocks(small_net(0, batch_norm=True))
    assert [[layer.name for layer in block] for block in blocks] == [
        ["hidden_1", "hidden_1_bn"], ["hidden_2", "hidden_2_bn"], ["hidden_3"]]


@pytest.mark.parametrize("n, frozen, trainable", [(1, True, 6), (2, True, 4), (3, True, 2), (3, False, 8)])
def test_copy_counts_trainable_weights_exactly(n, frozen, trainable):
    source, target = small_net(0), small_net(1)
    copy_layers(source, target, n, frozen)
    assert len(target.trainable_weights) == trainable  # kernel and bias of each of the 4 layers, 8 in all
    for block_s, block_t in zip(weight_blocks(source)[:n], weight_blocks(target)[:n]):
        for a, b in zip(block_s[0].get_weights(), block_t[0].get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(kernel(source, "logits"), kernel(target, "logits"))


def test_frozen_layers_do_not_move_in_a_fit_and_the_rest_do(tiny):
    source = small_net(0)
    target = fitted(copy_layers(source, small_net(1), 2, frozen=True), tiny)
    for name in ("hidden_1", "hidden_2"):
        for a, b in zip(source.get_layer(name).get_weights(), target.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    untouched = small_net(1)
    assert not np.array_equal(kernel(untouched, "hidden_3"), kernel(target, "hidden_3"))
    tuned = fitted(copy_layers(source, small_net(1), 2, frozen=False), tiny)
    assert not np.array_equal(kernel(source, "hidden_1"), kernel(tuned, "hidden_1"))


def test_frozen_batch_norm_keeps_the_source_statistics_and_runs_in_inference_mode(tiny):
    source = fitted(small_net(0, batch_norm=True), tiny)
    stats = [w.copy() for w in source.get_layer("hidden_1_bn").get_weights()]  # gamma, beta, moving mean, variance
    target = fitted(copy_layers(source, small_net(1, batch_norm=True), 1, frozen=True), tiny)
    for a, b in zip(stats, target.get_layer("hidden_1_bn").get_weights()):
        np.testing.assert_array_equal(a, b)
    # the layer above was trained: its moving statistics moved
    fresh = small_net(1, batch_norm=True).get_layer("hidden_2_bn").get_weights()
    assert not np.array_equal(fresh[2], target.get_layer("hidden_2_bn").get_weights()[2])
    # inference mode while training: the frozen block's output in a training call equals its inference output
    x = tiny.x_train[:8]
    bn = target.get_layer("hidden_1_bn")
    conv_out = target.get_layer("hidden_1")(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn(conv_out, training=True)),
                               keras.ops.convert_to_numpy(bn(conv_out, training=False)), atol=1e-6)


def test_copy_refuses_out_of_range_and_mismatched_layers():
    with pytest.raises(ValueError,
                       match=r"^cannot transfer 4 layers: the nets share at most 3 \(allowed: 1 to that\)$"):
        copy_layers(small_net(0), small_net(1), 4, frozen=True)
    with pytest.raises(ValueError, match=r"cannot transfer 0 layers"):
        copy_layers(small_net(0), small_net(1), 0, frozen=True)
    wider = conv_stack([5, POOL, 8, POOL], classes=3, dense=[6])
    with pytest.raises(ValueError, match=r"^layer 'hidden_1' differs in shape between the nets"):
        copy_layers(small_net(0), wider, 1, frozen=True)


def test_variants_name_their_source_and_freezing():
    assert [check_variant(v) for v in ("BnB", "BnB+", "AnB", "AnB+")] == [
        ("B", True), ("B", False), ("A", True), ("A", False)]
    with pytest.raises(ValueError, match=r"^unknown transfer variant 'AnA' \(allowed: BnB, BnB\+, AnB, AnB\+\)$"):
        check_variant("AnA")


def test_transfer_builds_copy_from_the_seed_s_source():
    sources = {"A": {0: small_net(10), 1: small_net(11)}, "B": {0: small_net(20), 1: small_net(21)}}
    builds = transfer_builds(small_net, lambda m: compile_sgd(m, 0.1), sources, [1, 3], ["AnB", "BnB+"])
    assert list(builds) == [("AnB", 1), ("AnB", 3), ("BnB+", 1), ("BnB+", 3)]
    model = builds[("BnB+", 3)](1)
    np.testing.assert_array_equal(kernel(model, "hidden_3"), kernel(sources["B"][1], "hidden_3"))
    assert len(model.trainable_weights) == 8 and len(builds[("AnB", 3)](0).trainable_weights) == 2


def test_stored_model_trains_once_then_loads_the_same_weights(tmp_path, tiny):
    calls = []

    def train():
        calls.append(1)
        return fitted(small_net(0), tiny)

    first, reused_first = stored_model("net", {"seed": 0}, train, tmp_path)
    second, reused_second = stored_model("net", {"seed": 0}, train, tmp_path)
    assert (reused_first, reused_second, len(calls)) == (False, True, 1)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.predict(tiny.x_test, verbose=0), second.predict(tiny.x_test, verbose=0))
    stored_model("net", {"seed": 1}, train, tmp_path)
    assert len(calls) == 2
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".keras", ".keras"]  # no partial file left behind


def test_a_retrained_source_net_equals_the_stored_one(tmp_path, tiny, monkeypatch):
    """Reusing a stored net changes no number: training again from the seed gives the same weights."""
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    build = lambda s: compile_sgd(small_net(s), 0.1)  # noqa: E731
    stored, _ = trained_net("base", {}, build, tiny, 4, seed=5, batch_size=16)
    seed_everything(5)
    again = build(5)
    fit_steps(again, tiny, 4, 4, None, batch_size=16, seed=5, verbose=0)
    for a, b in zip(stored.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    loaded, reused = trained_net("base", {}, build, tiny, 4, seed=5, batch_size=16)
    assert [p.parent for p in tmp_path.rglob("*.keras")] == [tmp_path / "models"]
    assert reused and all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), again.get_weights()))


def test_the_stored_nets_key_covers_every_variable_a_check_run_sets():
    """A check run's source nets differ from the main run's: its environment is part of their key."""
    assert set(backend.NUMERIC_ENV) == set(CHECK_ENV)


def test_the_stored_nets_key_covers_the_precision():
    recipe = dict(seed=0)
    try:
        backend.use_precision("mixed_bfloat16")
        bf16 = transfer._stem("net", recipe)
    finally:
        backend.use_precision("float32")
    assert transfer._stem("net", recipe) != bf16


def test_stored_run_keeps_every_net_and_the_record_and_reuses_them(tmp_path, tiny):
    calls = []

    def train():
        calls.append(1)
        return {"final": fitted(small_net(0), tiny), "half": small_net(0)}, {"stop": "plateau", "trained": 3}

    nets, record, reused = stored_run("net", {"seed": 0}, train, tmp_path)
    again, record_again, reused_again = stored_run("net", {"seed": 0}, train, tmp_path)
    assert (reused, reused_again, len(calls)) == (False, True, 1)
    assert record == record_again == {"stop": "plateau", "trained": 3}
    assert list(again) == ["final", "half"]
    for label in nets:
        for a, b in zip(nets[label].get_weights(), again[label].get_weights()):
            np.testing.assert_array_equal(a, b)
    assert sorted(p.name.split(".", 1)[1] for p in tmp_path.iterdir()) == ["final.keras", "half.keras", "json"]


@pytest.fixture(scope="module")
def held_out(tiny):
    rng = np.random.default_rng(1)
    return data.Dataset("tiny", tiny.x_train, tiny.y_train, tiny.x_test, tiny.y_test, tiny.class_names,
                        x_val=rng.random((16, 28, 28, 1), dtype=np.float32), y_val=rng.integers(0, 3, 16))


def test_trained_run_trains_to_its_plateau_and_keeps_the_weights_at_half_the_run(tmp_path, held_out, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    build = lambda s: compile_sgd(small_net(s), 0.1)  # noqa: E731
    plateau = Plateau("val_accuracy", 0.5, 2)  # a gain of half the held-out images never comes: stops at 3 measurements
    run = trained_run("base", {}, build, held_out, 40, 2, plateau, seed=5, batch_size=16)
    assert not run.reused
    assert {k: run.record[k] for k in ("stop", "at_plateau", "trained", "half_at", "diverged_at_step")} == dict(
        stop="plateau", at_plateau=True, trained=6, half_at=4, diverged_at_step=None)
    seed_everything(5)
    again = build(5)
    curve = fit_steps(again, held_out, 40, 2, (held_out.x_val, held_out.y_val), 16, 5, verbose=0, plateau=plateau)
    for a, b in zip(run.half.get_weights(), curve["half_weights"]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(run.model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    loaded = trained_run("base", {}, build, held_out, 40, 2, plateau, seed=5, batch_size=16)
    assert loaded.reused and loaded.record == run.record
    np.testing.assert_array_equal(kernel(loaded.half, "logits"), kernel(run.half, "logits"))


def test_a_stored_run_is_keyed_on_its_plateau_settings(tmp_path, held_out, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    build = lambda s: compile_sgd(small_net(s), 0.1)  # noqa: E731
    runs = [trained_run("base", {}, build, held_out, 8, 2, plateau, seed=0, batch_size=16)
            for plateau in (Plateau("val_accuracy", 0.5, 2), Plateau("val_accuracy", 0.5, 3),
                            Plateau("val_loss", 0.5, 2), Plateau("val_accuracy", 0.5, 2))]
    assert [run.reused for run in runs] == [False, False, False, True]
    assert len(list((tmp_path / "models").glob("*.json"))) == 3


def test_trained_run_refuses_data_without_a_held_out_split(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    with pytest.raises(ValueError, match=r"^'base' trains to a plateau on held-out training images: the dataset has "
                                         r"none \(x_val\)$"):
        trained_run("base", {}, lambda s: compile_sgd(small_net(s), 0.1), tiny, 8, 2, Plateau(), seed=0)
