"""Experiment 06 in the smoke profile: exact parameter counts, the paired degradation comparisons recomputed
from the runs table, and the lesion tables."""

import pytest
from conftest import claims_of, table_of

pytestmark = pytest.mark.xdist_group("06_resnet")  # its tests share one worker, which runs its smoke notebook


def test_parameters_are_exact_and_comparisons_paired(smoke_results):
    results = smoke_results["06_resnet"]
    claims = claims_of(results)
    params = table_of(results, "parameters")
    assert params.depth.tolist() == [20, 56]
    assert params.resnet_a.tolist() == [269_722, 853_018] and (params.plain == params.resnet_a).all()
    assert (params.resnet_b - params.resnet_a).tolist() == [(16 * 32 + 32 * 64) + 2 * (32 + 64)] * 2  # 1x1 + BN
    assert claims["resnet.params.20"]["verdict"] == "reproduced"
    assert claims["resnet.params.plain_equals_residual"]["measured"] == 0
    runs = table_of(results, "runs")
    assert sorted(set(zip(runs.net, runs.depth))) == [("plain", 8), ("plain", 14), ("resnet", 8), ("resnet", 14)]
    assert runs.seed.tolist() == [0, 1] * 4
    assert results["workers"] == 2  # trained in worker processes (conftest), with the notebook's closures

    def ce(net, depth):
        return runs[(runs.net == net) & (runs.depth == depth)].sort_values("seed").train_ce.to_numpy()

    assert claims["resnet.degradation.train"]["per_seed"] == pytest.approx(list(ce("plain", 14) - ce("plain", 8)))
    assert claims["resnet.residual.fixes_degradation"]["per_seed"] == pytest.approx(
        list(ce("resnet", 14) - ce("plain", 14)))


def test_lesion_tables(smoke_results):
    results = smoke_results["06_resnet"]
    claims = claims_of(results)
    lesions = table_of(results, "lesions")
    resnet, plain = lesions[lesions.net == "resnet14"], lesions[lesions.net == "plain8"]
    assert (resnet.kind == "single").sum() == 6 and (plain.kind == "single").sum() == 1  # plain: no downsampling
    assert resnet[resnet.kind == "random"].k.tolist() == [1, 2]
    assert (lesions.increase == lesions.error - lesions.groupby("net").error.transform("first")).all()
    single = resnet[resnet.kind == "single"]
    assert claims["resnet.lesion.single_block_small"]["measured"] == pytest.approx(100 * single.increase.median())
    assert claims["resnet.lesion.plain_layer_to_chance"]["measured"] == pytest.approx(
        plain[plain.kind == "single"].error.mean())


def test_degradation_rests_on_runs_judged_at_their_cap_and_at_half_the_schedule(smoke_results):
    results = smoke_results["06_resnet"]
    claims, runs = claims_of(results), table_of(results, "runs")
    epochs = results["params"]["epochs"]
    steps = epochs * -(-results["params"]["n_train"] // results["params"]["batch_size"])
    assert (runs.trained == steps).all() and (runs.stop != "plateau").all()  # a fixed schedule runs to its cap
    assert (runs.half_at == steps // 2).all()
    plain = runs[runs.net == "plain"]
    claim = claims["resnet.degradation.train"]
    assert claim["at_plateau"] == [int(plain.at_plateau.sum()), 4]

    def half_ce(depth):
        return plain[plain.depth == depth].sort_values("seed").half_train_ce.to_numpy()

    assert claim["half_budget"]["measured"] == pytest.approx((half_ce(14) - half_ce(8)).mean())
    lesioned = claims["resnet.lesion.single_block_small"]
    assert lesioned["at_plateau"][1] == 1 and lesioned["half_budget"] is not None


def test_the_plateau_is_judged_at_the_final_rate_without_the_last_drop_itself():
    from cnnlab import convergence
    from cnnlab.experiments.resnet_degradation import last_phase_plateau

    # held-out cross-entropy of a plain-20 over 20 epochs of the quick schedule (the rate / 10 after epoch 15)
    val_loss = [2.313, 2.462, 15.399, 7.001, 2.747, 1.376, 1.673, 0.746, 0.957, 1.383,
                1.082, 0.689, 0.616, 0.619, 0.589, 0.575, 0.552, 0.548, 0.546, 0.545]
    plateau = last_phase_plateau(20, 0.01, 3)
    assert (plateau.monitor, plateau.patience, plateau.stop_early) == ("val_loss", 3, False)
    assert convergence.last_gain(val_loss, plateau) == pytest.approx(0.552 - 0.545)
    assert convergence.reached(val_loss, plateau)
    # a window over the whole last quarter would count the drop's own gain (0.589 -> 0.545) as still improving
    assert not convergence.reached(val_loss, convergence.Plateau("val_loss", 0.01, 5, stop_early=False))
    with pytest.raises(ValueError, match="patience must be between 1 and 4 with 20 epochs"):
        last_phase_plateau(20, 0.01, 5)
    with pytest.raises(ValueError, match="between 1 and 1 with 8 epochs"):
        last_phase_plateau(8, 0.01, 2)


def test_gradient_norms_are_the_training_gradient_of_each_conv_kernel_and_leave_the_net_unchanged():
    import keras
    import numpy as np
    import tensorflow as tf

    from cnnlab.experiments import resnet_degradation as exp
    from cnnlab.models.cifar_resnet import cifar_resnet

    model = cifar_resnet(8, residual=True, width_divisor=4, input_shape=(28, 28, 1), seed=0)
    x = np.random.default_rng(0).normal(size=(20, 28, 28, 1)).astype("float32")
    y = np.arange(20) % 10
    before = [v.numpy().copy() for v in model.variables]
    norms = exp.conv_gradient_norms(model, x, y, batch_size=10)
    convs = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(norms) == len(convs) == 7
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.variables))  # BN statistics untouched
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    summed = [np.zeros(k.shape) for k in convs]
    for start in (0, 10):
        with tf.GradientTape() as tape:
            value = loss(y[start:start + 10], model(x[start:start + 10], training=True))
        summed = [s + g.numpy() for s, g in zip(summed, tape.gradient(value, convs))]
        for v, a in zip(model.variables, before):
            v.assign(a)  # the reference's training-mode call moved the BN statistics: put them back
    assert norms == pytest.approx([np.linalg.norm(s / 2) for s in summed], rel=1e-4)
    assert exp.gradient_reach(norms) == pytest.approx(norms[0] / norms[-1])


def test_the_warm_up_must_end_before_the_half_budget_runs_first_drop():
    from cnnlab.experiments.resnet_degradation import check

    params = dict(n_train=256, batch_size=64, epochs=8, warmup_epochs=1)  # 4 steps an epoch, the drop at step 8
    check(params)
    with pytest.raises(ValueError, match="warmup_epochs must end before a quarter of the 8 epochs .* got 2"):
        check(dict(params, warmup_epochs=2))
