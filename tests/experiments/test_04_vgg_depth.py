"""Experiment 04 in the smoke profile: the VGG comparisons, paired over seeds."""

import numpy as np
import pandas as pd
import pytest
from conftest import assert_by_epoch_row, assert_holds_under, claims_of, table_of

pytestmark = pytest.mark.xdist_group("04_vgg_depth")  # its tests share one worker, which runs its smoke notebook


def test_vgg_claims_are_paired_over_seeds(smoke_results):
    results = smoke_results["04_vgg_depth"]
    claims = claims_of(results)
    assert {"vgg.lrn_no_help", "vgg.depth_not_worse.D", "vgg.depth_better.D", "vgg.shallow_5x5_worse"} <= set(claims)
    assert claims["vgg.lrn_no_help"]["expected"] == pytest.approx(0.1)
    assert claims["vgg.depth_not_worse.D"]["decided_by"] == {"rule": "not_above", "bound": 1.0}
    assert claims["vgg.depth_better.D"]["decided_by"] == {"rule": "below", "bound": -1.0}
    runs = table_of(results, "runs")
    error = {c: 100 * (1 - runs[runs.config == c].sort_values("seed").test_acc.to_numpy()) for c in ("A", "D")}
    assert claims["vgg.depth_better.D"]["per_seed"] == pytest.approx(list(error["D"] - error["A"]))
    assert {"runs", "trained"} <= set(results["tables"])


def test_averaged_posteriors_by_configuration_and_seed():
    from cnnlab.experiments.vgg_depth import Posteriors

    posteriors = Posteriors(None, [0, 1])
    # two nets: each right on one image only, sure of it, and unsure where wrong; averaged, both images right
    runs = pd.DataFrame(dict(config=["A", "A"], seed=[0, 1], test_acc=[0.5, 0.5],
                             posteriors=[np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([[0.4, 0.6], [0.1, 0.9]])],
                             half_posteriors=[np.array([[0.0, 1.0], [1.0, 0.0]]), None]))
    assert list(posteriors.keep(runs).columns) == ["config", "seed", "test_acc"]
    full = posteriors.averaged()
    assert full.to_dict("list") == dict(config=["A", "A"], seed=[0, 1], nets=[2, 2], single_error=[50.0, 50.0],
                                        ensemble_error=[0.0, 0.0])
    assert posteriors.averaged(at_half=True).to_dict("list") == dict(
        config=["A"], seed=[0], nets=[1], single_error=[100.0], ensemble_error=[100.0])


def test_model_averaging_claim_follows_from_its_table_and_the_runs(smoke_results):
    results = smoke_results["04_vgg_depth"]
    runs, table = table_of(results, "runs"), table_of(results, "model_averaging")
    claim = claims_of(results)["vgg.model_averaging"]
    assert table.config.tolist() == results["params"]["configs"] and (table.nets == len(set(runs.seed))).all()
    single = runs.assign(error=100 * (1 - runs.test_acc)).merge(table, on="config")
    assert (single.groupby("config").error.mean() - table.set_index("config").mean_single_error).abs().max() < 1e-9
    gain = (single.ensemble_error - single.error).groupby(single.seed).mean()
    assert claim["per_seed"] == pytest.approx(gain.sort_index().tolist())
    assert claim["about"] == "trained" and claim["at_plateau"] == [int(runs.at_plateau.sum()), len(runs)]


def test_budget_sweep_decides_every_size_and_epoch_by_the_depth_rule(smoke_results):
    from cnnlab.experiments.vgg_depth import depth_helps_rule

    results = smoke_results["04_vgg_depth"]
    params, claims = results["params"], claims_of(results)
    table, curves = table_of(results, "sweep"), table_of(results, "sweep_curves")
    deeper = [c for c in params["sweep_configs"] if c != "A"]
    assert len(table) == len(deeper) * len(params["sweep_n_train"]) * params["sweep_epochs"]
    assert len(curves) == len(params["sweep_configs"]) * len(params["sweep_n_train"]) * params["sweep_epochs"] * 2
    for row in table.itertuples():
        # A's accuracy minus the deeper net's is the deeper net's error minus A's
        assert_by_epoch_row(row, curves[curves.config.isin(["A", row.config])], {"n_train": row.n_train}, "config",
                            "A", row.config, depth_helps_rule(params["margin_pp"]))
        assert row.steps == row.epochs * -(-row.n_train // params["batch_size"])
    assert_holds_under(claims["vgg.holds_under.depth_better.D"], table[table.config == "D"])
    epochs = table[table.config == "D"].groupby("epochs")["mean"].mean()
    assert claims["vgg.trend.D.epochs"]["measured"] == pytest.approx(epochs.iloc[-1] - epochs.iloc[0])


def test_each_claim_rests_on_its_runs_at_plateau_and_at_half_of_them(smoke_results):
    results = smoke_results["04_vgg_depth"]
    claims, runs = claims_of(results), table_of(results, "runs")
    pair = runs[runs.config.isin(["A", "D"])]
    claim = claims["vgg.depth_better.D"]
    assert claim["about"] == "trained" and claim["at_plateau"] == [int(pair.at_plateau.sum()), len(pair)] == [
        claim["at_plateau"][0], 4]
    half = {c: 100 * (1 - runs[runs.config == c].sort_values("seed").half_test_acc.to_numpy()) for c in ("A", "D")}
    assert claim["half_budget"]["measured"] == pytest.approx((half["D"] - half["A"]).mean())
    assert set(runs.stop) <= {"plateau", "cap"} and (runs.trained <= results["params"]["epochs"]).all()
    assert (runs.half_at == (runs.trained + 1) // 2).all()
    if claim["at_plateau"][0] < 4:
        assert claim["verdict"] in ("inconclusive", "not_applicable") and claim["budget_limited"]
