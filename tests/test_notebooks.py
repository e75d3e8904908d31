"""Every notebook is stored clean and runs in the smoke profile through the runner users use."""

import json
import math

import nbformat
import pytest

from cnnlab import params, paths, runner
from cnnlab.compare import decide_again
from cnnlab.results import VERDICTS

NOTEBOOKS = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean_with_header_and_parameters(notebook):
    nb = nbformat.read(notebook, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {notebook.stem[:2]} ")
    assert "parameters" in nb.cells[1].metadata.get("tags", [])
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit notebooks without outputs"
    assert (paths.PARAMS / f"{notebook.stem}.yaml").exists()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_documents_every_parameter_with_a_type_and_a_help_line(notebook):
    import papermill

    documented = papermill.inspect_notebook(str(notebook))
    assert list(documented) == list(params.notebook_parameters(notebook)[0])
    for name, parameter in documented.items():
        assert parameter["inferred_type_name"] != "None" and parameter["help"], name


@pytest.mark.parametrize(
    "experiment, override, message",
    [
        ("02", "n_seeds=0", "params/02_init_variance.yaml: -p: key 'n_seeds' must be int, at least 1, got 0 (int)"),
        ("01", 'grid_widths=["a", 3]', "params/01_architecture_arithmetic.yaml: -p: key 'grid_widths' must be "
                                       'list[int], each at least 1, non-empty, got ["a", 3] (list)'),
        ("01", "grid_widths=[]", "params/01_architecture_arithmetic.yaml: -p: key 'grid_widths' must be list[int], "
                                 "each at least 1, non-empty, got [] (list)"),
        ("02", "train_epochs=0", "params/02_init_variance.yaml: -p: key 'train_epochs' must be int, at least 1, got 0"),
        ("02", "train_epochs=-1", "key 'train_epochs' must be int, at least 1, got -1 (int)"),
        ("03", "max_steps=-5", "params/03_nonlinearities.yaml: -p: key 'max_steps' must be int, at least 1, got -5"),
        ("03", "thresholds=[0.25, 25]", "key 'thresholds' must be list[float], each above 0 and below 1, non-empty"),
        ("04", "margin_pp=0", "key 'margin_pp' must be float, above 0, got 0 (int)"),
    ],
)
def test_nonsensical_values_are_refused_before_any_kernel_starts(experiment, override, message, tmp_path,
                                                                  monkeypatch, capsys):
    from cnnlab.__main__ import main

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    assert main(["run", experiment, "--profile", "smoke", "-p", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "runs").exists()


def test_every_params_file_has_its_notebook():
    assert [e.name for e in params.discover()] == [p.stem for p in NOTEBOOKS]


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    """Run every experiment in the smoke profile into a temporary results folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "RUNS", tmp_path_factory.mktemp("runs"))
        outcomes = {exp.name: runner.run(exp, "smoke", force=True) for exp in params.discover()}
    return {name: dict(json.loads((o.run_dir / "results.json").read_text()), run_dir=o.run_dir)
            for name, o in outcomes.items()}


def test_smoke_runs_record_finite_claims_with_rules(smoke_results):
    for name, results in smoke_results.items():
        exp = params.find(name)
        prefix = results["claims"][0]["id"].split(".")[0]
        assert results["profile"] == "smoke" and results["params"]["profile"] == "smoke"
        assert results["cache_key"] == runner.cache_key(exp, params.resolve(exp, "smoke"))
        for claim in results["claims"]:
            assert claim["id"].startswith(prefix + ".")
            assert claim["verdict"] in VERDICTS and claim["rule"]
            assert claim["verdict"] == "not_applicable" or math.isfinite(claim["measured"])


def test_every_comparison_is_decided_from_the_per_seed_values_it_stores(smoke_results):
    decided = 0
    for name, results in smoke_results.items():
        n_seeds = params.resolve(params.find(name), "smoke").get("n_seeds")
        for claim in results["claims"]:
            if "per_seed" not in claim:
                continue
            assert claim["n_seeds"] + claim["seeds_left_out"] == n_seeds == 2, claim["id"]
            low, high = claim["interval"]
            assert low <= claim["measured"] <= high, claim["id"]
            if claim["verdict"] != "not_applicable":
                assert decide_again(claim) == claim["verdict"], claim["id"]
                decided += 1
    assert decided >= 15


def _claims(results):
    return {c["id"]: c for c in results["claims"]}


def test_arith_exact_counts(smoke_results):
    claims = _claims(smoke_results["01_architecture_arithmetic"])
    assert len(claims) == 97
    exact_values = {
        "arith.outsize.grid": 0,
        "arith.example.params": 456,
        "arith.example.mults": 352_800,
        "arith.example.output": 4_704,
        "arith.alexnet.shapes": 0,
        "arith.vgg16.layer_weights": 0,
        "arith.vgg.equals_keras.D": 138_357_544,
        "arith.vgg.equals_keras.E": 143_667_240,
        "arith.resnet.equals_keras.50": 25_636_712,
        "arith.alphago.params": 3_882_793,
        "arith.alphago.positions": 361,
        "arith.inception.naive.output": 672,
        "arith.inception.bottleneck.output": 480,
        "arith.rf.three_3x3": 7,
        "arith.alexnet2.conv2_neurons": 186_624,
    }
    for cid, value in exact_values.items():
        assert claims[cid]["measured"] == value, cid
        assert claims[cid]["verdict"] == "reproduced", cid
    assert claims["arith.inception.naive.macs"]["measured"] == pytest.approx(854.196224)
    assert claims["arith.vgg.params.A"]["measured"] == pytest.approx(132.863336)
    assert claims["arith.resnet.flops.18"]["measured"] == pytest.approx(1.814073344)


def test_arith_flags_the_published_numbers_that_contradict_their_architecture(smoke_results):
    claims = _claims(smoke_results["01_architecture_arithmetic"])
    inconsistent = {cid for cid, c in claims.items() if c["source_inconsistent"]}
    assert {"arith.alexnet2.conv1_neurons", "arith.vgg16.activations", "arith.googlenet.params.conv1",
            "arith.inception.bottleneck.macs", "arith.googlenet.five_million"} <= inconsistent
    assert claims["arith.alexnet2.conv1_neurons"]["measured"] == 55 * 55 * 96
    assert claims["arith.inception.bottleneck.macs"]["measured"] == pytest.approx(271.351808)
    assert all(claims[cid]["verdict"] != "reproduced" for cid in inconsistent)


def test_init_propagation_claims(smoke_results):
    claims = _claims(smoke_results["02_init_variance"])
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


def test_nonlinearity_claims_mark_censored_steps(smoke_results):
    claims = _claims(smoke_results["03_nonlinearities"])
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


def test_vgg_claims_are_paired_over_seeds(smoke_results):
    results = smoke_results["04_vgg_depth"]
    claims = _claims(results)
    assert {"vgg.lrn_no_help", "vgg.depth_not_worse.D", "vgg.depth_better.D", "vgg.shallow_5x5_worse"} <= set(claims)
    assert claims["vgg.lrn_no_help"]["expected"] == pytest.approx(0.1)
    assert claims["vgg.depth_not_worse.D"]["decided_by"] == {"rule": "not_above", "bound": 1.0}
    assert claims["vgg.depth_better.D"]["decided_by"] == {"rule": "below", "bound": -1.0}
    runs = _table(results, "runs")
    error = {c: 100 * (1 - runs[runs.config == c].sort_values("seed").test_acc.to_numpy()) for c in ("A", "D")}
    assert claims["vgg.depth_better.D"]["per_seed"] == pytest.approx(list(error["D"] - error["A"]))
    assert {"runs", "trained"} <= set(results["tables"])


def test_gap_head_counts_are_exact_and_comparisons_paired(smoke_results):
    results = smoke_results["05_googlenet_gap"]
    claims = _claims(results)
    assert claims["gap.head_params.formula"]["measured"] == 0
    ratio = claims["gap.head_params.ratio"]
    assert ratio["measured"] == pytest.approx(1_608_458 / 1_290) and ratio["verdict"] == "reproduced"
    share = claims["gap.googlenet.fc_share"]
    assert share["measured"] == pytest.approx(209_621_992 / 215_595_544)
    runs = _table(results, "runs")
    for backbone in ("convnet", "convnet_deeper", "mini_googlenet"):
        acc = {h: runs[(runs.backbone == backbone) & (runs["head"] == h)].sort_values("seed").test_acc.to_numpy()
               for h in ("fc", "gap")}
        claim = claims[f"gap.accuracy.{backbone}.gap"]
        assert claim["per_seed"] == pytest.approx(list(100 * (acc["gap"] - acc["fc"])))
        assert claim["decided_by"] == {"rule": "not_below", "bound": -1.0}
    assert {"gap.fc_overfits_more", "gap.dropout_helps_fc", "gap.dropout_narrows_fc_gap", "gap.closing.convnet"} <= set(
        claims)


def _table(results, name):
    import pandas as pd

    return pd.read_csv(results["run_dir"] / results["tables"][name])
