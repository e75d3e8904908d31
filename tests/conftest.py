"""Shared fixtures: a toy workspace (one tiny notebook and its parameter file) for runner tests, and every
experiment run once in the smoke profile for the experiments' claim checks."""

import json
import os

import nbformat
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TOY_PARAMETERS = """profile = "quick"
seed = 0
output_dir = ""
n = 3
rate = 0.5
fail = False
sleep_s = 0.0
"""

TOY_BODY = """import time
from cnnlab.rules import exact
from cnnlab.suite.results import Record
rec = Record("99_toy", "toy", output_dir)
print(f"toy run n={n} seed={seed}")
time.sleep(sleep_s)
if fail:
    raise RuntimeError("asked to fail")
rec.metric("n_times_rate", n * rate)
rec.claim("toy.n", "n is three", 3, n, "items", exact(3), source="test")
rec.save()
"""

TOY_YAML = """title: Toy experiment
datasets: []
profiles:
  smoke: {n: 2}
  quick: {}
  full: {n: 4, rate: 1}
"""


def write_toy(root, body=TOY_BODY, yaml_text=TOY_YAML):
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    (root / "params").mkdir(parents=True, exist_ok=True)
    params_cell = nbformat.v4.new_code_cell(TOY_PARAMETERS, metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Toy"), params_cell,
                                         nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "notebooks" / "99_toy.ipynb")
    (root / "params" / "99_toy.yaml").write_text(yaml_text)


@pytest.fixture
def toy_root(tmp_path, monkeypatch):
    """A workspace with the toy experiment; cnnlab.paths point into it."""
    from cnnlab import paths

    write_toy(tmp_path)
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setattr(paths, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(paths, "PARAMS", tmp_path / "params")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(paths, "RUNS", tmp_path / "results" / "runs")
    monkeypatch.setenv("CNNLAB_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory):
    """Run every experiment in the smoke profile into a temporary results folder, once per test session."""
    from cnnlab import paths
    from cnnlab.suite import params, runner

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "RUNS", tmp_path_factory.mktemp("runs"))
        mp.setenv("CNNLAB_CACHE", str(tmp_path_factory.mktemp("cache")))  # the kernels' stored nets
        outcomes = {exp.name: runner.run(exp, "smoke", force=True) for exp in params.discover()}
    return {name: dict(json.loads((o.run_dir / "results.json").read_text()), run_dir=o.run_dir)
            for name, o in outcomes.items()}


def claims_of(results):
    """The claims of a run by id."""
    return {c["id"]: c for c in results["claims"]}


def table_of(results, name):
    """A table a run recorded, as a DataFrame."""
    import pandas as pd

    return pd.read_csv(results["run_dir"] / results["tables"][name])
