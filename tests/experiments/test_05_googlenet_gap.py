"""Experiment 05 in the smoke profile: exact head counts and paired head comparisons."""

import pytest
from conftest import assert_by_epoch_row, assert_holds_under, claims_of, table_of

pytestmark = pytest.mark.xdist_group("05_googlenet_gap")  # its tests share one worker, which runs its smoke notebook


def test_gap_head_counts_are_exact_and_comparisons_paired(smoke_results):
    results = smoke_results["05_googlenet_gap"]
    claims = claims_of(results)
    assert claims["gap.head_params.formula"]["measured"] == 0
    ratio = claims["gap.head_params.ratio"]
    assert ratio["measured"] == pytest.approx(1_608_458 / 1_290) and ratio["verdict"] == "reproduced"
    share = claims["gap.googlenet.fc_share"]
    assert share["measured"] == pytest.approx(209_621_992 / 215_595_544)
    runs = table_of(results, "runs")
    for backbone in ("convnet", "convnet_deeper", "mini_googlenet"):
        acc = {h: runs[(runs.backbone == backbone) & (runs["head"] == h)].sort_values("seed").test_acc.to_numpy()
               for h in ("fc", "gap")}
        claim = claims[f"gap.accuracy.{backbone}.gap"]
        assert claim["per_seed"] == pytest.approx(list(100 * (acc["gap"] - acc["fc"])))
        assert claim["decided_by"] == {"rule": "not_below", "bound": -1.0}
    assert {"gap.fc_overfits_more", "gap.dropout_helps_fc", "gap.dropout_narrows_fc_gap", "gap.closing.convnet"} <= set(
        claims)


def test_sweep_decides_every_backbone_width_and_epoch_by_the_gap_rule(smoke_results):
    from cnnlab.experiments.googlenet_gap import gap_rule

    results = smoke_results["05_googlenet_gap"]
    params, claims = results["params"], claims_of(results)
    table, curves = table_of(results, "sweep"), table_of(results, "sweep_curves")
    assert list(table.backbone.unique()) == params["sweep_backbones"]
    assert list(table.width.unique()) == params["sweep_last_widths"]
    assert len(table) == len(params["sweep_backbones"]) * len(params["sweep_last_widths"]) * params["sweep_epochs"]
    for row in table.itertuples():
        assert_by_epoch_row(row, curves, {"backbone": row.backbone, "width": row.width}, "head", "gap", "fc",
                            gap_rule(params["margin_pp"]))
    assert_holds_under(claims["gap.holds_under.accuracy"], table)
    backbones = table.groupby("backbone", sort=False)["mean"].mean()
    assert claims["gap.trend.backbone"]["measured"] == pytest.approx(backbones.iloc[-1] - backbones.iloc[0])


def test_head_claims_rest_on_their_runs_at_plateau_and_at_half_of_them(smoke_results):
    results = smoke_results["05_googlenet_gap"]
    claims, runs = claims_of(results), table_of(results, "runs")
    pair = runs[(runs.backbone == "convnet") & runs["head"].isin(["fc", "gap"])].sort_values("seed")
    claim = claims["gap.accuracy.convnet.gap"]
    assert claim["about"] == "trained" and claim["at_plateau"] == [int(pair.at_plateau.sum()), len(pair)]
    half = {h: 100 * pair[pair["head"] == h].half_test_acc.to_numpy() for h in ("fc", "gap")}
    assert claim["half_budget"]["measured"] == pytest.approx((half["gap"] - half["fc"]).mean())
    assert set(runs.stop) <= {"plateau", "cap"} and (runs.trained <= results["params"]["epochs"]).all()
    assert (runs.half_at == (runs.trained + 1) // 2).all()
    if claim["at_plateau"][0] < len(pair):
        assert claim["verdict"] == "inconclusive" and claim["budget_limited"]
