"""Every notebook is stored clean and runs in the smoke profile through the runner users use."""

import ast
import json
import math
import re

import nbformat
import pytest

from cnnlab import paths
from cnnlab.suite import params, runner
from cnnlab.compare import decide_again
from cnnlab.suite.claim_text import VERDICTS

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
        ("03", "thresholds=[0.25, 25]", "key 'thresholds' must be list[float], each finite, above 0 and below 1, non-empty"),
        ("04", "margin_pp=0", "key 'margin_pp' must be float, finite, above 0, got 0 (int)"),
    ],
)
def test_nonsensical_values_are_refused_before_any_kernel_starts(experiment, override, message, tmp_path,
                                                                  monkeypatch, capsys):
    from cnnlab.suite.cli import main

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    assert main(["run", experiment, "--profile", "smoke", "-p", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "runs").exists()


def test_every_params_file_has_its_notebook():
    assert [e.name for e in params.discover()] == [p.stem for p in NOTEBOOKS]


def claim_sources(tree: ast.AST) -> list[tuple[int, ast.expr | None]]:
    """The line and the `source` argument (keyword or seventh positional; None when absent) of every
    `<record>.claim(...)` call in `tree`."""
    found = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "claim":
            given = {k.arg: k.value for k in call.keywords} | dict(enumerate(call.args))
            found.append((call.lineno, given.get("source", given.get(6))))
    return found


CLAIMING = sorted(paths.PACKAGE.glob("experiments/*.py")) + [paths.PACKAGE / "sweep.py"] + NOTEBOOKS


@pytest.mark.parametrize("path", CLAIMING, ids=lambda p: p.name)
def test_every_claim_names_its_source(path):
    if path.suffix == ".ipynb":
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    else:
        cells = [path.read_text()]
    for cell in cells:
        for line, source in claim_sources(ast.parse(cell)):
            assert source is not None, f"{path.name}:{line}: a claim without a source"
            blank = isinstance(source, ast.Constant) and not str(source.value).strip()
            assert not blank, f"{path.name}:{line}: a claim with an empty source"


def test_a_claim_without_a_source_is_found():
    calls = ast.parse('rec.claim("a.x", "s", 1, 1, "", None)\nrec.claim("a.y", "s", 1, 1, "", None, " ")\n'
                      'rec.claim("a.z", "s", 1, 1, "", None, source=SOURCE)')
    [(_, missing), (_, blank), (_, named)] = claim_sources(calls)
    assert missing is None and blank.value == " " and named.id == "SOURCE"


# What a run came out as is rendered from its claims; prose says what is measured and how it is decided. These
# phrases state an outcome by hand.
OUTCOME_BY_HAND = re.compile(
    r"\b(?:does|do|did) not reproduce|\bconditions (?:it|they) (?:does|do)\b|\b(?:turns?|turned) out\b|"
    r"\b(?:stays?|stayed|comes? out|came out|ends? up|ended up) (?:far |well )?(?:below|above|behind|ahead)|"
    r"\b(?:has|have) stopped\b|\bwe (?:find|found|see|saw|observe)\b|\b(?:shows?|showed) that\b", re.I)
def outcomes_by_hand(text: str) -> list[str]:
    """The sentences of `text` that state an outcome by hand."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [s for s in sentences if OUTCOME_BY_HAND.search(s)]


def readme_experiments() -> str:
    text = (paths.ROOT / "README.md").read_text()
    start = text.index("\n## Experiments\n")
    return text[start:text.index("\n## ", start + 1)]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_prose_states_an_outcome_by_hand(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    assert [s for c in cells if c.cell_type == "markdown" for s in outcomes_by_hand(c.source)] == []


def test_readme_experiments_state_no_outcome_by_hand():
    assert outcomes_by_hand(readme_experiments()) == []


def test_an_outcome_stated_by_hand_is_found():
    text = ("Where a lecture claim does not reproduce at the quick budget, the notebook says under which conditions "
            "it does. The mean IUs stay far below the paper's. The rate drops where the error has stopped falling. "
            "Each sweep is decided by the claim's rule: reproduced at 3x or more.")
    assert len(outcomes_by_hand(text)) == 3


def test_smoke_runs_record_finite_claims_with_rules(smoke_results):
    for name, results in smoke_results.items():
        exp = params.find(name)
        prefix = results["claims"][0]["id"].split(".")[0]
        assert results["profile"] == "smoke" and results["params"]["profile"] == "smoke"
        assert results["cache_key"] == runner.cache_key(exp, params.resolve(exp, "smoke"), modules=results["modules"])
        assert "suite/results.py" in results["modules"] and "suite/runner.py" not in results["modules"]
        for claim in results["claims"]:
            assert claim["id"].startswith(prefix + ".")
            assert claim["verdict"] in VERDICTS and claim["rule"]
            assert claim["source"].strip(), f"{claim['id']} names no source"
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


def test_every_training_notebook_takes_a_precision_that_reaches_its_nets(smoke_results, tmp_path, monkeypatch):
    trained = [exp.name for exp in params.discover() if "precision" in exp.specs]
    assert trained == [exp.name for exp in params.discover()][1:]  # all but 01, which trains nothing
    assert all(params.find(name).specs["precision"].choices == ("float32", "mixed_bfloat16") for name in trained)
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    outcome = runner.run(params.find("10"), "smoke", {"precision": "mixed_bfloat16"}, force=True)
    results = json.loads((outcome.run_dir / "results.json").read_text())
    bf16 = {c["id"]: c["measured"] for c in results["claims"]}
    f32 = {c["id"]: c["measured"] for c in smoke_results["10_visualisation"]["claims"]}
    assert results["params"]["precision"] == "mixed_bfloat16"
    assert bf16.keys() == f32.keys() and bf16 != f32  # the same claims, other numbers: the nets computed in bf16


@pytest.mark.parametrize("experiment, parameters, names", [
    ("04", ("configs", "sweep_configs"), "cnnlab.models.vgg:CONFIGS"),
    ("05", ("heads", "compare_heads"), "cnnlab.models.heads:HEADS"),
    ("08", ("variants", "dissimilar_variants"), "cnnlab.transfer:VARIANTS"),
])
def test_the_names_a_notebook_allows_are_those_its_library_builds(experiment, parameters, names):
    import importlib

    module, constant = names.split(":")
    built = tuple(getattr(importlib.import_module(module), constant))
    assert all(params.find(experiment).specs[name].choices == built for name in parameters)
