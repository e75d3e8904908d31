"""cnnlab.suite.schema: results.json is read only when it has the runner's shape and names files inside its own
run folder; anything else is one warning line and no result."""

import os

import pytest

from cnnlab.suite.atomic import write_json_atomic
from cnnlab.suite.schema import load_results, read_results
from conftest import claim


def record(**changes):
    """A results.json record as the runner writes it, one table, one figure and one claim, with `changes`."""
    return dict(dict(
        experiment="01_x", profile="quick", check_run=False, params={"seed": 0}, seeds=[0, 1, 2], cache_key="k",
        modules=["train.py"], versions={"python": "3.11.2", "keras": "3.15.1"}, started="2026-01-01T00:00:00+00:00",
        duration_s=12.5, peak_rss_mb=800.0, cells=[{"cell": 1, "source": "x = 1", "seconds": 0.1}],
        notebook="01_x.ipynb", metrics={"loss": None}, tables={"runs": "tables/runs.csv"},
        figures=["figures/curve.png"],
        claims=[claim("x.a", "reproduced", per_seed=[1.0, None, 2.0], censored=["", "", ">="],
                      interval=[0.5, None], at_plateau=[3, 3], half_budget=None)],
    ), **changes)


def run_folder(tmp_path, content):
    """A run folder holding the table and figure `record()` names and `content` as its results.json."""
    (tmp_path / "tables").mkdir(parents=True)
    (tmp_path / "tables" / "runs.csv").write_text("a\n1\n")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "curve.png").write_bytes(b"png")
    if isinstance(content, str):
        (tmp_path / "results.json").write_text(content)
    else:
        write_json_atomic(tmp_path / "results.json", content)
    return tmp_path


def test_an_intact_record_is_read_as_written(tmp_path):
    assert read_results(tmp_path) == (None, "")  # no file: no result, nothing wrong
    run_folder(tmp_path, record())
    assert load_results(tmp_path) == record()


@pytest.mark.parametrize("content, problem", [
    ('{"experiment": "01", "cla', "not valid JSON (Unterminated string starting at: line 1 column 22 (char 21))"),
    ("[1, 2]", "the record: [1, 2] is not of type 'object'"),
    ("{}", "the record: 'experiment' is a required property"),
    (record(duration_s=None), "duration_s: None is not of type 'number'"),
    (record(seeds=5), "seeds: 5 is not of type 'array'"),
    (record(seeds=[]), "seeds: [] should be non-empty"),
    (record(versions=[]), "versions: [] is not of type 'object'"),
    (record(claims="none"), "claims: 'none' is not of type 'array'"),
    (record(claims=[claim("x.a", "proven")]),
     "claims/0/verdict: 'proven' is not one of ['reproduced', 'partial', 'inconclusive', 'not_reproduced', "
     "'not_applicable']"),
    (record(claims=[{"id": "b", "verdict": "partial"}]), "claims/0: 'statement' is a required property"),
    (record(claims=[claim("x.a", "reproduced", per_seed=[1.0])]), "claims/0: 'censored' is a dependency of 'per_seed'"),
    (record(tables={"runs": "../../../01_y/quick/tables/runs.csv"}),
     "its table 'runs' ../../../01_y/quick/tables/runs.csv is outside its run folder"),
    (record(figures=["/etc/hostname"]), "its figure /etc/hostname is outside its run folder"),
    (record(notebook="../x.ipynb"), "its notebook ../x.ipynb is outside its run folder"),
    (record(tables={"runs": "tables/gone.csv"}), "its table 'runs' tables/gone.csv is missing"),
    (record(figures=["figures"]), "its figure figures is missing"),
])
def test_a_damaged_results_file_is_no_result_with_one_warning(tmp_path, capsys, content, problem):
    run_folder(tmp_path, content)
    assert load_results(tmp_path) is None
    err = capsys.readouterr().err
    assert err == f"cnnlab: warning: {tmp_path / 'results.json'} is damaged ({problem}); treated as no result\n"


def test_a_link_out_of_the_run_folder_makes_the_record_damaged(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    folder = run_folder(tmp_path / "run", record(figures=["figures/curve.png", "figures/link.png"]))
    os.symlink(outside, folder / "figures" / "link.png")
    assert read_results(folder) == (None, "its figure figures/link.png is outside its run folder")


def test_a_folder_in_place_of_results_json_is_damaged_not_a_crash(tmp_path):
    (tmp_path / "results.json").mkdir()
    assert read_results(tmp_path) == (None, "cannot be read (Is a directory)")
