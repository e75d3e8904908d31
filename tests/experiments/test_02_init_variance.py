"""Experiment 02 in the smoke profile: propagation at init and the training claims."""

from conftest import claims_of


def test_init_propagationclaims_of(smoke_results):
    claims = claims_of(smoke_results["02_init_variance"])
    assert all(cid.startswith("init.") for cid in claims)
    for net, depth in [("mlp", 30), ("cnn", 20)]:
        assert claims[f"init.prop.{net}.heuristic.L{depth}"]["measured"] < 1e-5
        assert claims[f"init.prop.{net}.heuristic.L{depth}"]["verdict"] == "reproduced"
        assert claims[f"init.prop.{net}.glorot_normal.L20"]["measured"] < 1e-2
    assert 0.5 <= claims["init.prop.mlp.he_normal.L30"]["measured"] <= 2
    assert {"init.train.d30.glorot_stays_at_ln10", "init.train.d30.he_trains", "init.train.d30.he_leaves_plateau_first",
            "init.train.d22.he_earlier", "init.train.d22.glorot_converges", "init.tanh.glorot.act_per_layer",
            "init.tanh.heuristic.act_per_layer"} <= set(claims)
    # one smoke epoch: the 30-layer Glorot net has not left the plateau, and the claim says so
    stays = claims["init.train.d30.glorot_stays_at_ln10"]
    assert all(abs(loss - 2.3026) < 0.05 for loss in stays["per_seed"])
    assert stays["verdict"] == "reproduced"
