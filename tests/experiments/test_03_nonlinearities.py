"""Experiment 03 in the smoke profile: steps to a threshold, censored where never reached."""

from conftest import claims_of


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
