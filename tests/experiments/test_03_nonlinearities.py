"""Experiment 03 in the smoke profile: steps to a threshold, censored where never reached."""

import pandas as pd
import pytest
from conftest import assert_holds_under, claims_of, table_of

pytestmark = pytest.mark.xdist_group("03_nonlinearities")  # its tests share one worker, which runs its smoke notebook


def test_nonlinearity_claims_mark_censored_steps(smoke_results):
    claims = claims_of(smoke_results["03_nonlinearities"])
    assert {"act.relu_faster.t25", "act.relu_faster.t10", "act.relu_faster_seeds.t25", "act.glorot.ratio.t25",
            "act.relu.never_fire.2012", "act.elu.mean_closer_to_zero"} <= set(claims)
    # 20 smoke steps reach no threshold: nothing is measured, and no number pretends otherwise
    for cid in ("act.relu_faster.t25", "act.relu_faster.t10"):
        assert claims[cid]["measured"] is None and claims[cid]["verdict"] == "not_applicable"
        assert "None" in claims[cid]["note"]
    assert claims["act.relu_faster.t25"]["expected"] == 6.0
    assert 0 <= claims["act.relu.never_fire.2012"]["measured"] <= 1
    assert claims["act.relu.never_fire.2012"]["verdict"] == "not_applicable"
    elu = claims["act.elu.mean_closer_to_zero"]
    assert elu["null"] == 1.0 and elu["log"] and len(elu["per_seed"]) == 2


def test_sweep_decides_every_condition_by_the_2012_rule(smoke_results):
    from cnnlab.compare import paired_ratio
    from cnnlab.experiments.nonlinearities import speed_rule, steps_column

    results = smoke_results["03_nonlinearities"]
    params, claims = results["params"], claims_of(results)
    table, runs = table_of(results, "sweep"), table_of(results, "sweep_runs")
    conditions = len(params["sweep_depths"]) * len(params["sweep_inits"])
    assert len(table) == conditions * len(params["sweep_thresholds"])
    assert len(runs) == conditions * 2 * params["n_seeds"]  # ReLU and tanh, every seed at the chosen rate
    assert set(table.relu_lr) | set(table.tanh_lr) <= set(params["sweep_lr_grid"])
    decided = 0
    for row in table.itertuples():
        mine = runs[(runs.depth == row.depth) & (runs.init_setting == row.init)]
        steps = {a: [None if pd.isna(v) else v for v in mine[mine.activation == a].sort_values("seed")[
            steps_column(row.threshold)]] for a in ("relu", "tanh")}
        ratio = paired_ratio(steps["tanh"], steps["relu"], cap=params["sweep_max_steps"])
        if ratio is None:
            assert row.verdict == "not_applicable"
            continue
        decided += 1
        assert row.mean == pytest.approx(ratio.mean) and row.verdict == speed_rule().decide(ratio)
    assert decided >= 1  # the smoke thresholds are within reach of 20 steps
    assert_holds_under(claims["act.holds_under.relu_faster"], table)
