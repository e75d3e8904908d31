"""Shared fixtures: a toy workspace (one tiny notebook and its parameter file) for runner tests, fake and toy
runs for the report's tests, and every experiment run once in the smoke profile for the experiments' claim
checks."""

import fcntl
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path

import nbformat
import pandas as pd
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


# a toy notebook with a table, a figure and five claims of every kind, for the report
REPORT_BODY = """import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from cnnlab.compare import above, paired_ratio
from cnnlab.rules import at_least, exact, within
from cnnlab.suite.results import Record
rec = Record("99_toy", "toy", output_dir)
rec.table("sizes", pd.DataFrame({"layer": ["conv|1", "fc"], "params": [1234567, n]}))
fig, ax = plt.subplots()
ax.plot([0, n])
rec.figure("line", fig)
rec.claim("toy.n", "n is three", 3, n, "items", exact(3), source="test")
rec.claim("toy.rate", "rate is about a half", 0.5, rate * 1.1, "", within(0.5, 0.01, 0.1), source="slide 7",
          note="ten percent off")
rec.claim("toy.big", "big count", 1234567, 1234567.0, "params", at_least(1e6), source="test")
rec.claim("toy.info", "reported only", None, None, "", None, source="test")
rec.claim("toy.seeds", "b is faster", 6, paired_ratio([None, 300, 280], [100, 100, 100], cap=400), "x",
          above(3.0), source="test")
rec.save()
"""


def write_toy(root, body=TOY_BODY, yaml_text=TOY_YAML, name="99_toy", markdown="# Toy"):
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    (root / "params").mkdir(parents=True, exist_ok=True)
    params_cell = nbformat.v4.new_code_cell(TOY_PARAMETERS, metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(markdown), params_cell,
                                         nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    (root / "params" / f"{name}.yaml").write_text(yaml_text)


def labels_as_images(folder):
    """A CNNLAB_DATA folder of Debian's Fashion-MNIST whose training images file is a copy of its training labels
    file, as a slip of the hand makes it."""
    import shutil

    from cnnlab import data

    folder.mkdir(parents=True)
    for stem in data.IDX_FILES.values():
        (folder / f"{stem}.gz").symlink_to(data.DEBIAN_DIR / f"{stem}.gz")
    (folder / "train-images-idx3-ubyte.gz").unlink()
    shutil.copy(data.DEBIAN_DIR / "train-labels-idx1-ubyte.gz", folder / "train-images-idx3-ubyte.gz")
    return folder


def use_workspace(mp, root):
    """Point cnnlab.paths (and the kernels' $CNNLAB_ROOT) at the workspace `root`, through the MonkeyPatch `mp`."""
    from cnnlab import paths

    mp.setattr(paths, "ROOT", root)
    mp.setattr(paths, "NOTEBOOKS", root / "notebooks")
    mp.setattr(paths, "PARAMS", root / "params")
    mp.setattr(paths, "RESULTS", root / "results")
    mp.setattr(paths, "RUNS", root / "results" / "runs")
    mp.setenv("CNNLAB_ROOT", str(root))


@pytest.fixture
def toy_root(tmp_path, monkeypatch):
    """A workspace with the toy experiment; cnnlab.paths point into it."""
    write_toy(tmp_path)
    use_workspace(monkeypatch, tmp_path)
    return tmp_path


def run_two_toys(root, mp, markdown="# Toy"):
    """Run, in the workspace `root`, 98_other (the plain toy, n=4: not reproduced) and 99_toy (REPORT_BODY:
    a table, a figure, five claims), quick profile; cnnlab's source digest fixed through the MonkeyPatch `mp`."""
    from cnnlab.suite import params, runner

    mp.setattr(runner.paths, "package_digest", lambda *args: "fixed")
    write_toy(root, name="98_other")
    write_toy(root, REPORT_BODY, markdown=markdown)
    out = io.StringIO()
    runner.run(params.find("98"), "quick", {"n": 4}, out=out)
    runner.run(params.find("99"), "quick", out=out)


def fake_run(root, experiment, profile, claims, tables=None, params=None, **extra):
    """A results.json written by hand (no notebook, no figures) for `experiment` in `profile`, with `extra`
    fields."""
    from cnnlab.suite.atomic import write_json_atomic

    folder = root / "results" / "runs" / experiment / profile
    write_json_atomic(folder / "results.json", dict(
        experiment=experiment, profile=profile, params=params or {}, seeds=[0, 1], cache_key="k",
        versions={"tensorflow": "2.21.0", "keras": "3.15.1"}, started="2026-01-01T00:00:00+00:00",
        duration_s=12.4, metrics={}, tables=tables or {}, figures=[], claims=claims, **extra))


def claim(id, verdict, **extra):
    """A claim as results.json stores it."""
    return dict(dict(id=id, source="s", statement=f"about {id}", expected=1, measured=2, unit="", verdict=verdict,
                     rule="r", note=""), **extra)


class SmokeRuns(Mapping):
    """Every experiment in the smoke profile, each run the first time a test asks for it and once per test
    session, however many pytest-xdist workers share the session: the first worker to ask runs it under a lock
    in the session's shared `root`, the others wait for it and read its results."""

    def __init__(self, root):
        from cnnlab.suite import params

        self.root, self.experiments, self.read = root, {exp.name: exp for exp in params.discover()}, {}

    def __getitem__(self, name):
        if name not in self.read:
            self.read[name] = self._run_once(self.experiments[name])
        return self.read[name]

    def __iter__(self):
        return iter(self.experiments)

    def __len__(self):
        return len(self.experiments)

    def _run_once(self, experiment):
        from cnnlab import paths
        from cnnlab.suite import runner

        runs, done = self.root / "runs", self.root / f"{experiment.name}.done"
        with open(self.root / f"{experiment.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(paths, "RUNS", runs)
                    mp.setenv("CNNLAB_CACHE", str(self.root / "cache"))  # the kernels' stored nets
                    workers = 2 if experiment.name == "06_resnet" else 1  # one notebook takes the workers' path
                    done.write_text(str(runner.run(experiment, "smoke", force=True, workers=workers).run_dir))
        run_dir = Path(done.read_text())
        return dict(json.loads((run_dir / "results.json").read_text()), run_dir=run_dir)


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory, worker_id):
    """Every experiment's smoke run by name (`SmokeRuns`), in a temporary results folder shared by the session's
    workers (one of its own without pytest-xdist)."""
    if worker_id == "master":
        return SmokeRuns(tmp_path_factory.mktemp("smoke"))
    shared = tmp_path_factory.getbasetemp().parent / "smoke"
    shared.mkdir(exist_ok=True)
    return SmokeRuns(shared)


def claims_of(results):
    """The claims of a run by id."""
    return {c["id"]: c for c in results["claims"]}


def table_of(results, name):
    """A table a run recorded, as a DataFrame."""
    import pandas as pd

    return pd.read_csv(results["run_dir"] / results["tables"][name])


def assert_holds_under(claim, table):
    """A sweep's "holds under" claim counts exactly the table's conditions where the claim was reproduced."""
    assert claim["measured"] == (table.verdict == "reproduced").sum()
    assert claim["expected"] == f">= 1 of {len(table)} conditions"
    assert claim["verdict"] in ("reproduced", "partial", "inconclusive", "not_reproduced")



def assert_by_epoch_row(row, curves, where: dict, by, a, b, rule):
    """A row of a by-epoch sweep table is, per seed, `a`'s test accuracy minus `b`'s in percentage points, read
    from the `curves` rows matching `where` at the row's epoch, and decided by `rule`."""
    from cnnlab.compare import paired_difference

    at = curves[(curves.epoch == row.epochs) & (curves[list(where)] == pd.Series(where)).all(axis=1)]
    accuracy = {side: at[at[by] == side].sort_values("seed").val_accuracy.to_numpy() for side in (a, b)}
    difference = paired_difference(accuracy[a], accuracy[b], scale=100)
    assert len(accuracy[a]) == len(accuracy[b]) >= 2
    assert row.mean == pytest.approx(difference.mean)
    assert row.verdict == rule.decide(difference)
