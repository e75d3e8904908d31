"""The `cnnlab` command line, in-process: list, run, report, reproduce, and how it refuses bad input."""

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from conftest import TOY_YAML, claim, fake_run, labels_as_images, write_toy

from cnnlab import paths
from cnnlab.suite import runner
from cnnlab.suite.cli import main


@pytest.fixture(autouse=True)
def stable_source(monkeypatch):
    """cnnlab's own source is part of the cache key; other people may edit it while these tests run."""
    monkeypatch.setattr(runner.paths, "package_digest", lambda *args: "fixed")


def one_error_line(capsys, *parts):
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cnnlab: error: "), err
    for part in parts:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    return out


def test_list(toy_root, capsys):
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert out.split() == ["99_toy", "Toy", "experiment", "[smoke,", "quick,", "full]"]
    assert err == ""


def test_list_refuses_a_broken_parameter_file(toy_root, capsys):
    write_toy(toy_root, yaml_text=TOY_YAML + "epochs: 3\n")
    assert main(["list"]) == 2
    one_error_line(capsys, "params/99_toy.yaml", "unknown key 'epochs'")


@pytest.mark.parametrize(
    "argv, parts",
    [
        (["run", "99", "-p", "epochs=3"], ["params/99_toy.yaml: -p", "unknown key 'epochs'", "allowed: fail, n,"]),
        (["run", "99", "-p", "n=abc"], ["params/99_toy.yaml: -p", "key 'n' must be int", '"abc" (str)']),
        (["run", "99", "-p", "fail=1"], ["key 'fail' must be bool"]),
        (["run", "42"], ["unknown experiment '42'", "allowed: 99_toy"]),
        (["run", "99", "-p", "n"], ["-p n: expected key=value"]),
    ],
)
def test_bad_input_is_refused_before_anything_runs(toy_root, capsys, argv, parts):
    assert main(argv) == 2
    assert one_error_line(capsys, *parts) == ""
    assert not (toy_root / "results").exists()


@pytest.mark.parametrize("argv, message", [
    (["run", "99", "--seed", "abc"], "cnnlab run: error: argument --seed: invalid int value: 'abc'"),
    (["run", "99", "--workers", "0"],
     "cnnlab run: error: argument --workers: must be a whole number of at least 1, got '0'"),
    *[([command, *(["99"] if command == "run" else []), "--profile", "huge"],
       f"cnnlab {command}: error: argument --profile: invalid choice: 'huge'")
      for command in ("run", "reproduce", "report")],
])
def test_bad_argument_type_or_choice_is_refused_by_argparse(toy_root, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (toy_root / "results").exists()


def test_run_then_report(toy_root, capsys):
    assert main(["run", "99", "--profile", "smoke"]) == 0
    out, err = capsys.readouterr()
    assert "[1/1 99_toy smoke] running notebooks/99_toy.ipynb" in out
    assert "    toy run n=2 seed=0" in out
    assert "[1/1 99_toy smoke] done in" in out and "1 not_reproduced\n[1/1 99_toy smoke] slowest: cell " in out
    results = json.loads((toy_root / "results" / "runs" / "99_toy" / "smoke" / "results.json").read_text())
    assert results["profile"] == "smoke" and results["params"]["n"] == 2
    [claim] = results["claims"]
    assert (claim["id"], claim["measured"], claim["verdict"]) == ("toy.n", 2.0, "not_reproduced")

    assert main(["run", "99", "--profile", "smoke"]) == 0
    assert "cached: results.json matches" in capsys.readouterr().out

    assert main(["report", "--profile", "smoke"]) == 0  # not the committed profile: its own folder, README untouched
    index = toy_root / "results" / "smoke" / "report" / "index.html"
    assert capsys.readouterr().out == (
        "wrote results/smoke/SCORECARD.md. Checked: 0 of 1 experiments. No check run was found, so no verdict was "
        "tested on another floating-point path and one near its rule's bounds may read otherwise in a checked "
        "scorecard (the committed one is checked): `make check-verdicts` runs the checks.\n"
        f"wrote results/smoke/report/index.html: open {index.as_uri()} in a browser\n")
    assert re.search(r'data-experiment="99_toy"\s+data-verdict="not_reproduced"', index.read_text())
    assert sorted(p.name for p in (toy_root / "results").iterdir()) == ["runs", "smoke"]
    scorecard = (toy_root / "results" / "smoke" / "SCORECARD.md").read_text()
    assert "# cnnlab scorecard (smoke profile)" in scorecard
    assert re.search(r"^\|\s*99_toy\s*\|\s*toy\.n\s*\|\s*n is three\s*\|\s*3 items\s*\|\s*2 items\s*\|"
                     r"\s*not_reproduced\s*\|$", scorecard, re.M), scorecard


def test_run_with_seed_and_overrides(toy_root, capsys):
    assert main(["run", "toy", "--seed", "7", "-p", "n=3", "-p", "rate=1"]) == 0
    results = json.loads((toy_root / "results" / "runs" / "99_toy" / "quick" / "results.json").read_text())
    assert results["params"] == dict(profile="quick", seed=7, n=3, rate=1.0, fail=False, sleep_s=0.0)
    assert results["seeds"] == [7]
    assert results["claims"][0]["verdict"] == "reproduced"
    assert "toy run n=3 seed=7" in capsys.readouterr().out


def test_failing_run_exits_1_with_the_cell_error(toy_root, capsys):
    assert main(["run", "99", "-p", "fail=true"]) == 1
    one_error_line(capsys, "99_toy: cell", "raised RuntimeError: asked to fail",
                   "executed notebook kept at results/runs/99_toy/quick.failed/99_toy.ipynb")
    assert not (toy_root / "results" / "runs" / "99_toy" / "quick" / "results.json").exists()


def test_report_without_results(toy_root, capsys):
    assert main(["report"]) == 1
    one_error_line(capsys, "no results for profile 'quick'")
    assert not (toy_root / "results" / "SCORECARD.md").exists()


def test_reproduce_runs_everything_then_reports(toy_root, capsys):
    assert main(["reproduce", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "[1/1 99_toy smoke] running" in out
    assert "all 1 experiments in" in out
    assert "\nwrote results/smoke/SCORECARD.md. Checked: 0 of 1 experiments. No check run was found" in out
    assert out.rstrip().endswith(f"wrote results/smoke/report/index.html: open "
                                 f"{(toy_root / 'results' / 'smoke' / 'report' / 'index.html').as_uri()} in a browser")
    assert "| 99_toy " in (toy_root / "results" / "smoke" / "SCORECARD.md").read_text()


def test_reproduce_on_another_backend_runs_beside_tensorflow_and_leaves_the_report_alone(toy_root, capsys,
                                                                                         monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert main(["reproduce", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "[1/1 99_toy smoke-jax] running" in out
    assert out.rstrip().endswith("no report: it reads the TensorFlow runs; `cnnlab verdicts smoke smoke-jax` "
                                 "compares these runs' verdicts with TensorFlow's")
    results = json.loads((toy_root / "results" / "runs" / "99_toy" / "smoke-jax" / "results.json").read_text())
    assert results["versions"]["backend"] == "jax"
    assert not (toy_root / "results" / "SCORECARD.md").exists()


def test_reproduce_runs_only_the_experiments_named(toy_root, capsys):
    write_toy(toy_root, name="98_other")
    assert main(["reproduce", "99", "--profile", "smoke"]) == 0
    assert "all 1 experiments in" in capsys.readouterr().out
    assert not (toy_root / "results" / "runs" / "98_other").exists()
    assert (toy_root / "results" / "runs" / "99_toy" / "smoke" / "results.json").exists()


def test_reproduce_with_jobs_gives_one_line_per_run_start_and_end_and_a_log_each(toy_root, capsys):
    write_toy(toy_root, name="98_other")
    assert main(["reproduce", "--profile", "smoke", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    for name in ("98_other", "99_toy"):
        log = toy_root / "results" / "runs" / name / "smoke.log"
        assert f"[1/1 {name} smoke] running notebooks/{name}.ipynb" in log.read_text()
        assert re.search(rf"^\[[12]/2 {name} smoke\] started, log results/runs/{name}/smoke.log$", out, re.M)
        assert re.search(rf"^\[[12]/2 {name} smoke\] done in 0:\d\d: 1 not_reproduced$", out, re.M)
        assert (toy_root / "results" / "runs" / name / "smoke" / "results.json").exists()
    assert len(out.splitlines()) == 4 + 1 + 2  # a start and an end per run, the total, the report (no README here)
    assert main(["reproduce", "--profile", "smoke", "--jobs", "2"]) == 0
    assert len(re.findall(r"cached: results.json matches", capsys.readouterr().out)) == 2


def test_reproduce_with_jobs_finishes_the_others_and_names_each_failure(toy_root, capsys):
    write_toy(toy_root, name="98_other", yaml_text=TOY_YAML.replace("smoke: {n: 2}", "smoke: {fail: true}"))
    assert main(["reproduce", "--profile", "smoke", "--jobs", "2"]) == 1
    out = one_error_line(capsys, "1 of 2 runs failed: 98_other (", "log results/runs/98_other/smoke.log")
    assert re.search(r"^\[[12]/2 98_other smoke\] FAILED after 0:\d\d: ", out, re.M)
    assert (toy_root / "results" / "runs" / "99_toy" / "smoke" / "results.json").exists()
    assert not (toy_root / "results" / "SCORECARD.md").exists()  # no report from a suite with a failed run


@pytest.mark.parametrize("damage", [
    '{"experiment": "99_toy", "claims": [{"id"', "{}",
    '{"experiment": "99_toy", "profile": "quick", "cache_key": "k", "seeds": 5, "versions": [], "duration_s": null, '
    '"tables": {}, "figures": [], "claims": []}'])
def test_a_damaged_results_file_is_recomputed_by_run_and_skipped_by_report(toy_root, capsys, damage):
    results = toy_root / "results" / "runs" / "99_toy" / "quick" / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text(damage)
    assert main(["report"]) == 1  # nothing intact to report on
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("cnnlab: warning: results/runs/99_toy/quick/results.json is damaged (")
    assert err[1].startswith("cnnlab: error: no results for profile 'quick'") and len(err) == 2
    assert main(["run", "99"]) == 0  # no --force needed: a damaged record is no cache hit
    out, err = capsys.readouterr()
    assert err.splitlines()[0].endswith("; treated as no result") and "done in" in out
    assert json.loads(results.read_text())["claims"][0]["id"] == "toy.n"
    assert main(["report"]) == 0
    assert capsys.readouterr().err == ""


def test_show_prints_each_parameter_with_what_it_allows_and_each_profile(toy_root, capsys):
    assert main(["show", "99"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("99_toy: Toy experiment\nnotebook notebooks/99_toy.ipynb, profiles in params/99_toy.yaml\n")
    assert "\nn: int\n    smoke  2  (from the params file)\n    quick  3\n    full   4  (from the params file)\n" in out
    assert "\nrate: float, finite\n    smoke  0.5\n    quick  0.5\n    full   1.0  (from the params file)\n" in out
    assert "\nseed:" not in out and "\noutput_dir:" not in out  # the runner's own keys
    assert main(["show", "42"]) == 2
    one_error_line(capsys, "unknown experiment '42'")


def test_verdicts_compare_two_sets_of_runs_by_folder_name(toy_root, capsys):
    """`cnnlab verdicts smoke smoke-jax`: the same runs on two backends, claim by claim."""
    fake_run(toy_root, "01_a", "smoke", [claim("a.x", "reproduced"), claim("a.y", "partial")])
    fake_run(toy_root, "02_b", "smoke", [claim("b.x", "inconclusive")])
    fake_run(toy_root, "01_a", "smoke-jax", [claim("a.x", "reproduced"), claim("a.y", "not_reproduced")])
    fake_run(toy_root, "02_b", "smoke-jax", [claim("b.x", "inconclusive")])
    assert main(["verdicts", "smoke", "smoke-jax"]) == 0
    assert capsys.readouterr().out.splitlines() == ["01_a a.y: partial -> not_reproduced",
                                                    "1 of 3 claims changed verdict"]
    assert main(["verdicts", "smoke", "smoke-torch"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'smoke-torch' is neither a scorecard file nor a run folder" in err


def test_a_file_where_a_run_folder_belongs_is_one_line_naming_the_fix(toy_root, capsys):
    (toy_root / "results" / "runs").mkdir(parents=True)
    (toy_root / "results" / "runs" / "99_toy").write_text("not a folder")
    assert main(["run", "99", "--profile", "smoke"]) == 1
    one_error_line(capsys, "results/runs/99_toy", "(something stands where a folder belongs: move it away)")
    assert (toy_root / "results" / "runs" / "99_toy").read_text() == "not a folder"


@pytest.mark.parametrize("earlier", [False, True])
@pytest.mark.parametrize("dataset", ["nonexistent", "labels as images"])
def test_a_dataset_that_cannot_be_used_stops_the_run_before_anything_starts(toy_root, capsys, monkeypatch, dataset,
                                                                             earlier):
    write_toy(toy_root, yaml_text=TOY_YAML.replace("datasets: []", "datasets: [fashion_mnist]"))
    folder = toy_root / "nonexistent" if dataset == "nonexistent" else labels_as_images(toy_root / "slip")
    monkeypatch.setenv("CNNLAB_DATA", str(folder))
    if earlier:
        fake_run(toy_root, "99_toy", "quick", [claim("toy.n", "reproduced")])
    before = {p: p.read_bytes() for p in (toy_root / "results").rglob("*") if p.is_file()} if earlier else None
    start = time.monotonic()
    assert main(["run", "99"]) == 1
    assert time.monotonic() - start < 5  # no kernel started
    what = (f"CNNLAB_DATA={folder} lacks train-images-idx3-ubyte, " if dataset == "nonexistent" else
            f"{folder}/train-images-idx3-ubyte.gz: x_train has shape (60000,), expected (60000, 28, 28) (")
    one_error_line(capsys, what, "; 99_toy quick not run, " + (
        "the previous results are untouched" if earlier else "there are no earlier results"))
    if earlier:  # byte for byte, and nothing beside them
        assert {p: p.read_bytes() for p in (toy_root / "results").rglob("*") if p.is_file()} == before
    else:
        assert not (toy_root / "results").exists()


@pytest.mark.parametrize("name, role", [("quick", "results"), ("quick.failed", "failed notebook")])
def test_a_file_where_the_run_or_its_failed_notebook_goes_is_refused_before_anything_runs(toy_root, capsys, name,
                                                                                          role):
    runs = toy_root / "results" / "runs" / "99_toy"
    runs.mkdir(parents=True)
    (runs / name).write_text("a note of mine")
    assert main(["run", "99"]) == 1
    one_error_line(capsys, f"results/runs/99_toy/{name} is not a folder, where 99_toy quick keeps its {role}: move "
                           "it away (nothing was run)")
    assert sorted(p.name for p in runs.iterdir()) == [name] and (runs / name).read_text() == "a note of mine"


def test_sigterm_keeps_the_partial_notebook_in_place_of_an_earlier_failure_and_leaves_nothing_else(
        toy_root, capsys, monkeypatch):
    failed = toy_root / "results" / "runs" / "99_toy" / "quick.failed"
    failed.mkdir(parents=True)
    (failed / "99_toy.ipynb").write_text("an earlier failure")

    def killed(exp, params, *args):
        (Path(params["output_dir"]) / f"{exp.name}.ipynb").write_text("partial notebook")
        os.kill(os.getpid(), signal.SIGTERM)  # `kill`, while a cell runs
        time.sleep(30)

    monkeypatch.setattr(runner, "execute", killed)
    assert main(["run", "99"]) == 130
    assert capsys.readouterr().err == "cnnlab: interrupted\n"
    assert sorted(p.name for p in failed.parent.iterdir()) == ["quick.failed"]  # no lock, .old or partial folder
    assert [p.name for p in failed.iterdir()] == ["99_toy.ipynb"]
    assert (failed / "99_toy.ipynb").read_text() == "partial notebook"


@pytest.mark.parametrize("error, line", [
    (PermissionError(1, "Operation not permitted"), "results/.report-quick.partial: operation not permitted (check its "
     "permissions and attributes (an immutable file: chattr -i))"),
    (FileNotFoundError(2, "No such file or directory"), "results/.report-quick.partial: no such file or directory"),
])
def test_a_file_system_error_in_a_command_is_one_line_and_changes_nothing(toy_root, capsys, monkeypatch, error, line):
    from cnnlab import paths

    fake_run(toy_root, "01_a", "quick", [claim("a.x", "reproduced")])
    assert main(["report"]) == 0
    before = {p: p.read_bytes() for p in (toy_root / "results").rglob("*") if p.is_file()}
    capsys.readouterr()

    def refused(folder):  # as an immutable results/ (chattr +i) or a folder removed under it would
        error.filename = str(folder)
        raise error

    monkeypatch.setattr(paths, "emptied", refused)
    assert main(["report"]) == 1
    assert capsys.readouterr().err == f"cnnlab: error: {line}\n"
    assert {p: p.read_bytes() for p in (toy_root / "results").rglob("*") if p.is_file()} == before


def test_a_file_system_error_is_one_line_with_its_path_and_fix(toy_root):
    from cnnlab.suite.cli import os_error_text

    err = PermissionError(13, "Permission denied", str(toy_root / "results" / "SCORECARD.md"))
    assert os_error_text(err) == "results/SCORECARD.md: permission denied (check its permissions)"
    assert os_error_text(OSError(28, "No space left on device")) == (
        "no space left on device (free some disk space and run again)")
    assert os_error_text(OSError("A Message of our own")) == "A Message of our own"


def test_the_dead_kernel_or_interrupted_cell_of_an_interrupt_is_not_logged_again():
    import logging

    from nbclient.exceptions import CellExecutionError, DeadKernelError

    from cnnlab.suite.cli import KERNEL_STOPPED

    def record(error):
        try:
            raise error
        except type(error):
            return logging.LogRecord("asyncio", logging.ERROR, "", 0, "Task exception was never retrieved", None,
                                     sys.exc_info())

    assert not KERNEL_STOPPED.filter(record(DeadKernelError("Kernel died")))
    assert not KERNEL_STOPPED.filter(record(CellExecutionError("traceback", "KeyboardInterrupt", "")))
    assert KERNEL_STOPPED.filter(record(CellExecutionError("traceback", "ValueError", "a cell's own error")))
    assert KERNEL_STOPPED.filter(record(RuntimeError("anything else")))


def test_a_rule_between_parameters_is_one_line_before_a_kernel_even_when_its_module_imports_keras():
    import subprocess

    done = subprocess.run([sys.executable, "-m", "cnnlab", "run", "04", "-p", "sweep_configs=[D]"], cwd=paths.ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["cnnlab: error: params/04_vgg_depth.yaml: sweep_configs must hold A, the net "
                                        "the deeper ones are compared with; got ['D']"]


def test_the_default_workers_share_the_cores_among_the_runs_at_once_and_the_full_profile_takes_one():
    from cnnlab.suite.cli import workers_for

    assert [workers_for("quick", jobs, cores=2) for jobs in (1, 2, 4)] == [2, 1, 1]
    assert [workers_for("smoke", jobs, cores=16) for jobs in (1, 2, 4)] == [4, 4, 4]
    assert workers_for("full", 1, cores=16) == 1


@pytest.mark.parametrize("argv, part", [
    (["run", "99", "--cluster", "127.0.0.1:1"], "--cluster 127.0.0.1:1: no Ray head answers there"),
    (["reproduce", "--cluster", "head"], "--cluster head: not host:port"),
])
def test_a_cluster_that_cannot_be_reached_is_one_line_before_anything_runs(toy_root, capsys, monkeypatch, argv, part):
    import importlib.util

    find_spec = importlib.util.find_spec  # as where the cluster extra is installed

    def ray_installed(name, *args):
        return object() if name == "ray" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", ray_installed)
    assert main(argv) == 2
    assert one_error_line(capsys, part) == ""
    assert not (toy_root / "results").exists()


def test_a_cluster_without_ray_installed_is_one_line_before_anything_runs(toy_root, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    assert main(["run", "99", "--cluster", "127.0.0.1:6379"]) == 2
    assert one_error_line(capsys, "--cluster 127.0.0.1:6379: Ray is not installed here (pip install -e "
                                  "'.[cluster]')") == ""
    assert not (toy_root / "results").exists()
