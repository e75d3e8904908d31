"""Experiment 02 in the smoke profile: propagation at init and the training claims."""

import pytest
from conftest import claims_of, table_of

pytestmark = pytest.mark.xdist_group("02_init_variance")  # its tests share one worker, which runs its smoke notebook


def test_init_propagation_and_training_claims(smoke_results):
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


def test_each_propagation_claim_expects_the_theory_at_its_own_depth(toy_root):
    import pandas as pd

    from cnnlab import init
    from cnnlab.experiments import init_variance as exp
    from cnnlab.suite.results import Record

    schemes = list(exp.PROPAGATION_RULES)
    nets = {"mlp": (30, None, (256, 256))}
    table = pd.DataFrame([dict(net="mlp", scheme=s, depth=d, act_ratio=0.5, theory=init.relu_std_ratio(s, 256, 256, d))
                          for s in schemes for d in (20, 30)])
    curves = {"mlp": {s: pd.DataFrame(dict(act_ratio=[1.0, 0.5], grad_ratio=[1.0, 2.0])) for s in schemes}}
    rec = Record("02_init_variance", "init", toy_root)
    exp.propagation_claims(rec, table, curves, nets, probe_seeds=2, cnn_filters=16)
    expected = {c["id"]: c["expected"] for c in rec.claims}
    assert expected["init.prop.mlp.glorot_normal.L20"] == expected["init.prop.mlp.lecun_normal.L20"] == 0.0014
    for claim in ("glorot_normal.L30", "lecun_normal.L30", "glorot_normal.grad", "lecun_normal.grad"):
        assert expected[f"init.prop.mlp.{claim}"] == 4.3e-05
    assert expected["init.prop.mlp.heuristic.L20"] == 4.1e-08
    assert expected["init.prop.mlp.heuristic.L30"] == expected["init.prop.mlp.heuristic.grad"] == 5.2e-12
    assert expected["init.prop.mlp.he_normal.L30"] == expected["init.prop.mlp.he_normal.grad"] == 1.0


def test_saturating_units_claims_follow_from_the_gradient_table(smoke_results):
    results = smoke_results["02_init_variance"]
    claims = claims_of(results)
    table = table_of(results, "saturation")
    assert table.depth.tolist() == list(range(1, 31)) and (table.iloc[0, 1:] == 1).all()
    sigmoid, relu = 1 / table.sigmoid_grad_ratio.iloc[-1], 1 / table.relu_grad_ratio.iloc[-1]
    assert claims["init.saturation.sigmoid.per_layer"]["measured"] == pytest.approx(sigmoid ** (1 / 29))
    assert claims["init.saturation.sigmoid.per_layer"]["verdict"] == (
        "reproduced" if sigmoid ** (1 / 29) <= 0.25 else "not_reproduced")
    assert claims["init.saturation.sigmoid_vs_relu"]["measured"] == pytest.approx(sigmoid / relu)
    assert sigmoid < 1e-12 and 0.5 < relu < 2  # sigmoid's gradient vanishes through 29 layers, ReLU's (He) does not
