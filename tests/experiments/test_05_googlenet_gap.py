"""Experiment 05 in the smoke profile: exact head counts and paired head comparisons."""

import pytest
from conftest import claims_of, table_of


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
