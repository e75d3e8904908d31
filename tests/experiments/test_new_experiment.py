"""README's "Adding an experiment", followed to the letter: in a copy of the project, an 11th experiment from its
four files and its row of `EXPERIMENTS` passes the layout and profile tests and its own smoke test, is refused
before a kernel on a bad parameter, and goes through `cnnlab run`, the scorecard and the report."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cnnlab import paths

pytestmark = pytest.mark.xdist_group("new_experiment")

MODULE = '''"""A fair die thrown `draws` times per seed: its mean face is (faces + 1) / 2."""

import numpy as np
import pandas as pd

from cnnlab.rules import within

FACES = {"d4": 4, "d6": 6, "d20": 20}


def check(params: dict) -> None:
    """Every face must be able to come up."""
    if params["draws"] < FACES[params["die"]]:
        raise ValueError(f"draws ({params['draws']}) must be at least the faces of a {params['die']}")


def throw(rec, die: str, draws: int, seeds: list[int]) -> pd.DataFrame:
    """Each seed's mean face as a table, and the claim on their mean."""
    faces = FACES[die]
    means = pd.DataFrame(dict(seed=seeds, mean=[float(np.random.default_rng(seed).integers(1, faces + 1, draws).mean())
                                                 for seed in seeds]))
    rec.table("means", means)
    rec.claim("dice.mean", f"a fair {die} averages its middle face", (faces + 1) / 2, float(means["mean"].mean()),
              "", within((faces + 1) / 2, 0.1, 0.3), source="the definition of a fair die")
    return means
'''

PARAMETERS = '''profile: str = "quick"  # the profile these values come from (the runner sets it)
seed: int = 0  # the first paired seed [at least 0]
output_dir: str = ""  # where the record goes ("": results/runs/<experiment>/interactive)
n_seeds: int = 3  # paired seeds [at least 1]
die: str = "d6"  # the die thrown [one of d4 | d6 | d20]
draws: int = 1000  # throws per seed [at least 1]'''

BODY = '''from cnnlab.experiments import dice
from cnnlab.suite.results import Record

rec, seeds = Record.start("11_dice", output_dir, seed, n_seeds)
dice.throw(rec, die, draws, seeds)
rec.finish()'''

YAML = """title: A fair die
datasets: []
profiles:
  smoke: {n_seeds: 2, die: d6, draws: 100}
  quick: {n_seeds: 3, die: d6, draws: 1000}
  full: {n_seeds: 5, die: d6, draws: 100000}
"""

TEST = '''import pytest

pytestmark = pytest.mark.xdist_group("11_dice")


def test_the_mean_face_is_decided_over_the_paired_seeds(smoke_results):
    run = smoke_results["11_dice"]
    assert run["seeds"] == [0, 1] and [c["id"] for c in run["claims"]] == ["dice.mean"]
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project (package, notebooks, parameter files, tests) with the 11th experiment added."""
    root = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    for folder in ("cnnlab", "notebooks", "params", "tests"):
        shutil.copytree(paths.PACKAGE.parent / folder, root / folder, ignore=ignore)
    shutil.copy(paths.PACKAGE.parent / "pyproject.toml", root)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 11 A fair die\n\n**Claim.** A fair die averages its middle face."),
        nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(BODY)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "notebooks" / "11_dice.ipynb")
    (root / "params" / "11_dice.yaml").write_text(YAML)
    (root / "cnnlab" / "experiments" / "dice.py").write_text(MODULE)
    (root / "tests" / "experiments" / "test_11_dice.py").write_text(TEST)
    table = root / "cnnlab" / "experiments" / "__init__.py"
    text = table.read_text()
    last = '    "10_visualisation": Names("visualisation", "vis"),\n'
    assert last in text
    table.write_text(text.replace(last, last + '    "11_dice": Names("dice", "dice"),\n'))
    return root


def in_project(root: Path, *argv: str) -> subprocess.CompletedProcess:
    """`python argv...` in the copy, importing its cnnlab and reading and writing its folders."""
    env = dict(os.environ, PYTHONPATH=str(root), CNNLAB_ROOT=str(root), CNNLAB_CACHE=str(root / "results" / "cache"))
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run([sys.executable, *argv], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_an_eleventh_experiment_passes_the_layout_profile_and_its_own_smoke_tests(project):
    done = in_project(project, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                      "tests/test_layout.py", "tests/suite/test_params.py::"
                      "test_every_profile_lists_every_value_it_runs_with_and_quick_is_the_notebooks_defaults[11_dice]",
                      "tests/experiments/test_11_dice.py")
    assert done.returncode == 0, done.stdout[-3000:]
    layout = (project / "tests" / "test_layout.py").read_text().count("\ndef test_")
    assert f"\n{layout + 2} passed in " in done.stdout  # the layout tests, the die's complete profiles, its smoke test


@pytest.mark.parametrize("override, message", [
    ("die=d7", 'params/11_dice.yaml: -p: key \'die\' must be str, one of d4, d6, d20, got "d7" (str)'),
    ("draws=3", "params/11_dice.yaml: draws (3) must be at least the faces of a d6"),
])
def test_an_eleventh_experiments_bad_parameter_is_one_line_before_a_kernel(project, override, message):
    done = in_project(project, "-m", "cnnlab", "run", "11", "-p", override)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"cnnlab: error: {message}\n")
    assert not (project / "results" / "runs" / "11_dice").exists()


def test_an_eleventh_experiment_runs_into_the_scorecard_and_the_report(project):
    run = in_project(project, "-m", "cnnlab", "run", "11")
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((project / "results" / "runs" / "11_dice" / "quick" / "results.json").read_text())
    [claim] = results["claims"]
    assert (claim["id"], claim["expected"], claim["verdict"], results["seeds"]) == ("dice.mean", 3.5, "reproduced",
                                                                                  [0, 1, 2])
    report = in_project(project, "-m", "cnnlab", "report")
    assert report.returncode == 0, report.stderr[-2000:]
    scorecard = (project / "results" / "SCORECARD.md").read_text()
    assert "dice.mean" in scorecard and "11_dice" in scorecard
    assert "dice.mean" in (project / "results" / "report" / "index.html").read_text()
