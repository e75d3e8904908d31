"""Experiment 04 in the smoke profile: the VGG comparisons, paired over seeds."""

import pytest
from conftest import claims_of, table_of


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
