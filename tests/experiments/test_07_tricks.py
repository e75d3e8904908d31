"""Experiment 07 in the smoke profile: every table has its nets and seeds, the derived columns follow from the
measured ones, and each paired claim is recomputed from its table."""

import pytest
from conftest import claims_of, table_of

SEEDS = [0, 1]


def _side(table, column, net):
    return table[table.net == net].sort_values("seed")[column].to_numpy()


def test_batch_norm_table_and_claims(smoke_results):
    results = smoke_results["07_tricks"]
    claims = claims_of(results)
    bn = table_of(results, "batch_norm")
    assert bn.net.tolist() == [net for net in ("baseline", "bn", "bn_x5", "sigmoid", "sigmoid_bn") for _ in SEEDS]
    assert bn.seed.tolist() == SEEDS * 5
    baseline = bn[bn.net == "baseline"]
    assert (baseline.target_error == baseline.best_error).all()  # the baseline's own best is its target
    assert baseline.steps_to_target.notna().all()  # ... which it reached
    relu = bn[bn.net.isin(["baseline", "bn", "bn_x5"])]
    assert (relu.groupby("seed").target_error.nunique() == 1).all()  # one target per seed
    assert claims["tricks.bn.sigmoid_with"]["per_seed"] == pytest.approx(
        list(100 * (_side(bn, "final_error", "sigmoid_bn") - _side(bn, "final_error", "sigmoid"))))
    assert claims["tricks.bn.sigmoid_without"]["measured"] == pytest.approx(_side(bn, "final_error", "sigmoid").min())


def test_dropout_and_augmentation_tables_and_claims(smoke_results):
    results = smoke_results["07_tricks"]
    claims = claims_of(results)
    dropout, augment = table_of(results, "dropout"), table_of(results, "augmentation")
    assert dropout.net.tolist() == ["plain"] * 2 + ["dropout"] * 2 + ["dropout_maxnorm"] * 2
    assert augment.net.tolist() == ["plain"] * 2 + ["augmented"] * 2
    assert dropout.params.nunique() == 1 and augment.params.nunique() == 1  # regularisers add no weights
    for table in (dropout, augment):
        assert (table.gap == table.test_error - table.train_error).all()
        assert table.seed.tolist() == SEEDS * (len(table) // 2)
    assert claims["tricks.dropout.test_error"]["per_seed"] == pytest.approx(
        list(100 * (_side(dropout, "test_error", "dropout") - _side(dropout, "test_error", "plain"))))
    assert claims["tricks.dropout.max_norm"]["per_seed"] == pytest.approx(
        list(100 * (_side(dropout, "test_error", "dropout_maxnorm") - _side(dropout, "test_error", "dropout"))))
    assert claims["tricks.augment.gap"]["per_seed"] == pytest.approx(
        list(100 * (_side(augment, "gap", "augmented") - _side(augment, "gap", "plain"))))
    assert claims["tricks.augment.test_flip"]["per_seed"] == pytest.approx(
        list(100 * (_side(augment, "test_error_flip", "augmented") - _side(augment, "test_error", "augmented"))))


def test_learning_rate_drop_is_paired_up_to_the_drop(smoke_results):
    results = smoke_results["07_tricks"]
    claims = claims_of(results)
    lr = table_of(results, "lr_drop")
    assert lr.net.tolist() == ["constant"] * 2 + ["drop"] * 2
    # the same seed and the same rate until the drop: the two nets are the same net up to there
    assert (_side(lr, "plateau_error", "constant") == _side(lr, "plateau_error", "drop")).all()
    assert (lr.end_error == lr.final_error).all()  # the smoke profile's window is one measurement
    assert claims["tricks.lr_drop.step_down"]["per_seed"] == pytest.approx(
        list(100 * (_side(lr, "end_error", "drop") - _side(lr, "plateau_error", "drop"))))
    assert claims["tricks.lr_drop.beats_constant"]["per_seed"] == pytest.approx(
        list(100 * (_side(lr, "end_error", "drop") - _side(lr, "end_error", "constant"))))
