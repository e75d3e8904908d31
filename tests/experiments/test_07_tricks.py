"""Experiment 07: the helpers of its protocol (held-out images, a level reached, test errors over a few
measurements) exactly, then the smoke profile: every table has its nets and seeds, the derived columns follow
from the measured ones, each paired claim is recomputed from its table, and each trained claim carries the
evidence of the runs behind it."""

import keras
import numpy as np
import pytest
from conftest import claims_of, table_of

from cnnlab.experiments import tricks as exp

pytestmark = pytest.mark.xdist_group("07_tricks")  # its tests share one worker, which runs its smoke notebook

SEEDS = [0, 1]


def _side(table, column, net):
    return table[table.net == net].sort_values("seed")[column].to_numpy()


# --- the protocol's helpers ------------------------------------------------------------------------------------


def test_smoothed_best_is_the_lowest_trailing_mean():
    assert exp.smoothed_best([0.5, 0.1, 0.4, 0.2, 0.3], 2) == pytest.approx(0.25)  # means 0.5 0.3 0.25 0.3 0.25
    assert exp.smoothed_best([0.5, 0.1, 0.4], 1) == pytest.approx(0.1)


class _Net:
    stop_training = False


def test_stop_at_level_stops_when_the_trailing_mean_reaches_it():
    stop, net = exp.StopAtLevel(0.2, smooth=2), _Net()
    stop.set_model(net)
    for accuracy, stopped in ((0.7, False), (0.85, False), (0.85, True)):  # errors 0.3, 0.15 (mean 0.225), 0.15
        stop.on_epoch_end(0, {"val_accuracy": accuracy})
        assert net.stop_training is stopped
    assert stop.errors == pytest.approx([0.3, 0.15, 0.15])


def test_held_out_images_are_apart_from_the_training_images():
    ds = exp.held_out(300, 200, seed=0)
    assert (len(ds.x_train), len(ds.x_val)) == (300, 200)
    assert len(ds.y_train) == 300 and len(ds.y_val) == 200
    assert abs(float(ds.x_train.mean())) < 1e-4  # standardised by the training part's statistics
    train = {row.tobytes() for row in ds.x_train}
    assert not any(row.tobytes() in train for row in ds.x_val if row.any())


def test_mean_test_error_averages_over_weights_and_keeps_the_model_own():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, use_bias=False)])
    own = [np.array([[2.0, 0.0], [0.0, 3.0]], dtype="float32")]
    model.set_weights(own)
    right, wrong = [np.eye(2, dtype="float32")], [-np.eye(2, dtype="float32")]
    test = (np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32"), np.array([0, 1]))
    assert exp.mean_test_error(model, [right, wrong, right, right], test) == pytest.approx(0.25)
    np.testing.assert_array_equal(model.get_weights()[0], own[0])


def test_scaled_kernels_leave_a_bn_layer_output_as_it_was_and_scale_the_logits():
    from cnnlab.models import conv_stack

    # conv, BN, ReLU twice, then the dense classifier: in training mode (batch statistics) BN undoes any scale
    # of the kernel before it, so only the classifier's own kernel scales the logits (its bias starts at zero);
    # x10 against x100, where BN's epsilon (1e-3) is negligible beside the conv outputs' variance
    x = np.random.default_rng(0).normal(size=(16, 28, 28, 1)).astype("float32")
    def logits(scale):
        model = exp.scaled_kernels(conv_stack([4, "M", 4, "M"], batch_norm=True, seed=0, init="glorot_uniform"), scale)
        return keras.ops.convert_to_numpy(model(x, training=True)), model

    (base, _), (scaled, model) = logits(10.0), logits(100.0)
    np.testing.assert_allclose(scaled, 10.0 * base, rtol=1e-3, atol=1e-2)  # logits of about 100
    gammas = [w for w in model.weights if "gamma" in w.path]
    assert gammas and all(np.all(keras.ops.convert_to_numpy(g) == 1.0) for g in gammas)  # BN's own weights as built


def test_fluctuation_is_the_spread_of_successive_differences_in_the_second_half_after_the_drop():
    errors = [0.5, 0.4, 0.3, 0.29, 0.31, 0.30, 0.2, 0.22, 0.20, 0.24]  # measured at steps 10, 20, ..., 100
    run = dict(drop_at=20, curve=dict(step=list(range(10, 101, 10)), error=errors))
    # 8 measurements after the drop: the last 4 (0.2, 0.22, 0.20, 0.24) give the differences +0.02, -0.02, +0.04
    assert exp.fluctuation(run) == pytest.approx(float(np.std([0.02, -0.02, 0.04])))
    short = dict(drop_at=70, curve=run["curve"])  # 3 measurements after the drop: all of them
    assert exp.fluctuation(short) == pytest.approx(float(np.std([-0.02, 0.04])))
    assert exp.fluctuation(dict(drop_at=80, curve=run["curve"])) is None  # 2 are too few


# --- the smoke profile -----------------------------------------------------------------------------------------


def test_batch_norm_table_and_claims(smoke_results):
    results = smoke_results["07_tricks"]
    claims = claims_of(results)
    bn = table_of(results, "batch_norm")
    assert bn.net.tolist() == [net for net in ("baseline", "bn", "bn_x5", "sigmoid", "sigmoid_bn") for _ in SEEDS]
    assert bn.seed.tolist() == SEEDS * 5
    baseline = bn[bn.net == "baseline"]
    assert (baseline.target_error == baseline.best_error).all()  # the baseline's own best is its target
    assert baseline.steps_to_target.notna().all()  # ... which it reached
    assert baseline.stop.isin(["plateau", "cap"]).all()  # trained towards its plateau
    relu = bn[bn.net.isin(["baseline", "bn", "bn_x5"])]
    assert (relu.groupby("seed").target_error.nunique() == 1).all()  # one target per seed
    faster = bn[bn.net.isin(["bn", "bn_x5"])]
    reached = faster.steps_to_target.notna()
    assert (faster.steps_to_target[reached] == faster.trained[reached]).all()  # a BN net stops at the target
    for name in ("fewer_steps", "higher_rate", "higher_rate_helps"):
        claim = claims[f"tricks.bn.{name}"]
        assert claim["about"] == "training" and claim["half_budget"] is None
        assert claim["at_plateau"] == [int(baseline.at_plateau.sum()), len(SEEDS)]  # the baseline's runs
    sigmoid = bn[bn.net.isin(["sigmoid", "sigmoid_bn"])]
    assert claims["tricks.bn.sigmoid_with"]["at_plateau"] == [int(sigmoid.at_plateau.sum()), 2 * len(SEEDS)]
    assert claims["tricks.bn.sigmoid_with"]["about"] == "trained"
    assert claims["tricks.bn.sigmoid_with"]["per_seed"] == pytest.approx(
        list(100 * (_side(bn, "test_error", "sigmoid_bn") - _side(bn, "test_error", "sigmoid"))))
    assert claims["tricks.bn.sigmoid_with"]["half_budget"]["measured"] == pytest.approx(
        np.mean(100 * (_side(bn, "half_test_error", "sigmoid_bn") - _side(bn, "half_test_error", "sigmoid"))))
    assert claims["tricks.bn.sigmoid_without"]["measured"] == pytest.approx(_side(bn, "test_error", "sigmoid").min())
    assert claims["tricks.bn.sigmoid_without"]["half_budget"]["measured"] == pytest.approx(
        _side(bn, "half_test_error", "sigmoid").min())


def test_initial_scale_table_and_claim(smoke_results):
    results = smoke_results["07_tricks"]
    params, scales = results["params"], table_of(results, "init_scale")
    assert len(scales) == 2 * len(params["init_scales"]) * len(SEEDS)
    assert scales.net.unique().tolist() == ["baseline", "bn"] and sorted(scales.scale.unique()) == params["init_scales"]
    spread = {net: scales[scales.net == net].groupby("seed").error.agg(lambda e: e.max() - e.min()).to_numpy()
              for net in ("baseline", "bn")}
    claim = claims_of(results)["tricks.bn.init_scale"]
    assert claim["per_seed"] == pytest.approx(list(100 * (spread["baseline"] - spread["bn"])))
    assert "about" not in claim  # a reading of early training at a fixed step, not of trained nets


def test_dropout_and_augmentation_tables_and_claims(smoke_results):
    results = smoke_results["07_tricks"]
    claims = claims_of(results)
    dropout, augment = table_of(results, "dropout"), table_of(results, "augmentation")
    assert dropout.net.tolist() == ["plain"] * 2 + ["dropout"] * 2 + ["dropout_maxnorm"] * 2 + ["batch_norm"] * 2
    assert augment.net.tolist() == ["plain"] * 2 + ["augmented"] * 2
    # dropout, max-norm and augmentation add no weights
    assert dropout[dropout.net != "batch_norm"].params.nunique() == 1 and augment.params.nunique() == 1
    # averaged over dropout masks only where there are masks
    assert dropout.test_error_mc.notna().tolist() == [False] * 2 + [True] * 4 + [False] * 2
    for table in (dropout, augment):
        assert (table.gap == table.test_error - table.train_error).all()
        assert (table.half_gap == table.half_test_error - table.half_train_error).all()
        assert table.seed.tolist() == SEEDS * (len(table) // 2)
        assert (table.half_at <= table.trained).all()
    assert claims["tricks.dropout.test_error"]["per_seed"] == pytest.approx(
        list(100 * (_side(dropout, "test_error", "dropout") - _side(dropout, "test_error", "plain"))))
    assert claims["tricks.dropout.test_error"]["half_budget"]["measured"] == pytest.approx(
        np.mean(100 * (_side(dropout, "half_test_error", "dropout") - _side(dropout, "half_test_error", "plain"))))
    assert claims["tricks.dropout.max_norm"]["per_seed"] == pytest.approx(
        list(100 * (_side(dropout, "test_error", "dropout_maxnorm") - _side(dropout, "test_error", "dropout"))))
    both = dropout[dropout.net.isin(["plain", "dropout"])]
    assert claims["tricks.dropout.gap"]["at_plateau"] == [int(both.at_plateau.sum()), 2 * len(SEEDS)]
    assert claims["tricks.augment.gap"]["per_seed"] == pytest.approx(
        list(100 * (_side(augment, "gap", "augmented") - _side(augment, "gap", "plain"))))
    assert claims["tricks.augment.test_flip"]["per_seed"] == pytest.approx(
        list(100 * (_side(augment, "test_error_flip", "augmented") - _side(augment, "test_error", "augmented"))))
    assert claims["tricks.dropout.weight_scaling"]["per_seed"] == pytest.approx(
        list(100 * (_side(dropout, "test_error", "dropout") - _side(dropout, "test_error_mc", "dropout"))))
    assert claims["tricks.dropout.weight_scaling"]["half_budget"]["measured"] == pytest.approx(np.mean(
        100 * (_side(dropout, "half_test_error", "dropout") - _side(dropout, "half_test_error_mc", "dropout"))))
    assert claims["tricks.bn.regulariser"]["per_seed"] == pytest.approx(
        list(100 * (_side(dropout, "gap", "batch_norm") - _side(dropout, "gap", "plain"))))
    augmented = augment[augment.net == "augmented"]
    assert claims["tricks.augment.test_flip"]["at_plateau"] == [int(augmented.at_plateau.sum()), len(SEEDS)]
    for claim in (c for c in claims.values()
                  if c["id"].startswith(("tricks.dropout.", "tricks.augment.")) or c["id"] == "tricks.bn.regulariser"):
        assert claim["about"] == "trained" and claim["half_budget"] is not None


def test_learning_rate_drop_is_paired_up_to_the_drop(smoke_results):
    results = smoke_results["07_tricks"]
    claims = claims_of(results)
    lr = table_of(results, "lr_drop")
    assert lr.net.tolist() == ["drop", "constant"] * 2
    # one net up to its plateau, then two branches: the same state before the drop, as many steps after it
    for column in ("plateau_error", "drop_at", "trained", "half_at"):
        assert (_side(lr, column, "constant") == _side(lr, column, "drop")).all()
    assert (lr.drop_at < lr.half_at).all() and (lr.half_at <= lr.trained).all()
    assert claims["tricks.lr_drop.step_down"]["per_seed"] == pytest.approx(
        list(100 * (_side(lr, "end_error", "drop") - _side(lr, "plateau_error", "drop"))))
    assert claims["tricks.lr_drop.step_down"]["half_budget"]["measured"] == pytest.approx(
        np.mean(100 * (_side(lr, "half_end_error", "drop") - _side(lr, "plateau_error", "drop"))))
    assert claims["tricks.lr_drop.beats_constant"]["per_seed"] == pytest.approx(
        list(100 * (_side(lr, "end_error", "drop") - _side(lr, "end_error", "constant"))))
    assert claims["tricks.lr_drop.step_down"]["at_plateau"] == [int(_side(lr, "at_plateau", "drop").sum()), 2]
    assert claims["tricks.lr_drop.beats_constant"]["at_plateau"] == [int(lr.at_plateau.sum()), 4]
    calmer = claims["tricks.lr_drop.calmer"]
    assert calmer["about"] == "training" and calmer["at_plateau"] == [int(lr.at_plateau.sum()), 4]
