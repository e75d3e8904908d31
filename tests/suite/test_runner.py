"""cnnlab.runner on the toy notebook: results.json, the cache, failures and interruptions."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from conftest import TOY_BODY, write_toy

from cnnlab import backends
from cnnlab.suite import params, runner
from cnnlab.suite.results import RESULTS_FILE

RESULT_KEYS = {"experiment", "profile", "params", "seeds", "cache_key", "versions", "started", "duration_s",
               "metrics", "tables", "figures", "claims"}


@pytest.fixture
def stable_source(monkeypatch):
    """cnnlab's own source is part of the cache key; other people may edit it while these tests run."""
    monkeypatch.setattr(runner.paths, "package_digest", lambda *args: "fixed")


def run(profile="quick", overrides=None, seed=None, force=False):
    out = io.StringIO()
    outcome = runner.run(params.find("99"), profile, overrides, seed, force, out=out)
    return outcome, out.getvalue()


def results_of(root, profile="quick"):
    return json.loads((root / "results" / "runs" / "99_toy" / profile / RESULTS_FILE).read_text())


def test_run_writes_results_json(toy_root, stable_source):
    outcome, printed = run("smoke", seed=4)
    folder = toy_root / "results" / "runs" / "99_toy" / "smoke"
    assert outcome.status == "done" and outcome.experiment == "99_toy" and outcome.run_dir == folder
    assert outcome.duration_s > 0
    assert sorted(p.name for p in folder.iterdir()) == ["99_toy.ipynb", "results.json"]  # no record.json
    res = results_of(toy_root, "smoke")
    assert RESULT_KEYS <= set(res)
    assert res["experiment"] == "99_toy" and res["profile"] == "smoke"
    assert res["params"] == dict(profile="smoke", seed=4, n=2, rate=0.5, fail=False, sleep_s=0.0)
    assert res["seeds"] == [4]
    assert res["cache_key"] == runner.cache_key(params.find("99"), params.resolve(params.find("99"), "smoke",
                                                                                   seed=4))
    assert set(res["versions"]) == {"python", "tensorflow", "keras", "cnnlab", "backend"}
    assert res["versions"]["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert res["versions"]["keras"].startswith("3.") and res["versions"]["cnnlab"] == "0.1.0"
    assert res["started"].endswith("+00:00") and "T" in res["started"]
    assert 0 < res["duration_s"] < 60
    assert res["metrics"] == {"n_times_rate": 1.0}
    assert 20 < res["peak_rss_mb"] < 2048  # the kernel's peak resident memory, MiB
    assert res["tables"] == {} and res["figures"] == []
    assert res["notebook"] == "99_toy.ipynb"
    [claim] = res["claims"]
    assert claim["id"] == "toy.n" and claim["measured"] == 2.0 and claim["verdict"] == "not_reproduced"
    assert claim["rule"] == "measured == 3"
    # progress a person can follow
    assert "[1/1 99_toy smoke] running notebooks/99_toy.ipynb" in printed
    assert "[1/1 99_toy smoke] cell 3/3 (" in printed and "cell 4/" not in printed  # code cells only
    assert "    toy run n=2 seed=4" in printed
    done, slowest = printed.rstrip().splitlines()[-2:]
    assert done.startswith("[1/1 99_toy smoke] done in 0:0") and done.endswith("1 not_reproduced")
    assert slowest.startswith("[1/1 99_toy smoke] slowest: cell ") and "kernel start-up and the rest 0:" in slowest
    # what the run depends on: the cnnlab modules its kernel imported, and where its seconds went
    assert {"__init__.py", "paths.py", "rules.py", "suite/__init__.py", "suite/results.py"} <= set(res["modules"])
    assert "suite/runner.py" not in res["modules"] and "train.py" not in res["modules"]
    assert [c["cell"] for c in res["cells"]] == [1, 2, 3] and res["cells"][2]["source"] == "import time"
    # the executed notebook has the injected parameters and the outputs
    executed = nbformat.read(folder / "99_toy.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert "toy run n=2 seed=4" in json.dumps(executed.cells[-1].outputs)


def test_second_run_is_cached_and_force_reruns(toy_root, stable_source):
    first, _ = run()
    key = results_of(toy_root)["cache_key"]
    started = results_of(toy_root)["started"]
    second, printed = run()
    assert second.status == "cached" and second.duration_s == 0.0
    assert printed == f"[1/1 99_toy quick] cached: results.json matches (key {key}), skipped\n"
    assert results_of(toy_root)["started"] == started
    time.sleep(1.1)  # `started` has one-second resolution
    third, printed = run(force=True)
    assert third.status == "done" and "running" in printed and "cached" not in printed
    assert results_of(toy_root)["cache_key"] == key and results_of(toy_root)["started"] != started


def test_slowest_cells_are_printed_and_stored(toy_root, stable_source):
    _, printed = run(overrides={"sleep_s": 1.2})
    cells = results_of(toy_root)["cells"]
    assert cells[2]["seconds"] >= 1.2 and max(cells, key=lambda c: c["seconds"])["cell"] == 3
    assert "[1/1 99_toy quick] slowest: cell 3 (import time) 0:01, cell " in printed


def test_only_the_modules_a_run_imported_enter_its_cache_key(toy_root, monkeypatch):
    run()
    source = runner.paths.source_hashes()
    monkeypatch.setattr(runner.paths, "source_hashes", lambda: dict(source, **{"suite/report.py": "edited"}))
    assert run()[0].status == "cached"  # the toy notebook never imports the report
    monkeypatch.setattr(runner.paths, "source_hashes", lambda: dict(source, **{"rules.py": "edited"}))
    assert run()[0].status == "done"
    assert run()[0].status == "cached"


def test_changed_override_reruns(toy_root, stable_source):
    run()
    outcome, printed = run(overrides={"n": 5})
    assert outcome.status == "done" and "toy run n=5" in printed
    res = results_of(toy_root)
    assert res["params"]["n"] == 5 and res["claims"][0]["measured"] == 5.0
    assert run(overrides={"n": 5})[0].status == "cached"


def key_for(profile="quick", overrides=None, seed=None):
    exp = params.find("99")
    return runner.cache_key(exp, params.resolve(exp, profile, overrides, seed))


def edit_notebook(root, edit):
    path = root / "notebooks" / "99_toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    edit(nb)
    nbformat.write(nb, path)


def test_a_notebook_edited_while_it_runs_keys_the_run_on_the_code_that_ran(toy_root, stable_source, monkeypatch):
    before = key_for()
    execute = runner.execute

    def edited_meanwhile(*args, **kwargs):  # papermill has read the notebook; the user saves an edit
        edit_notebook(toy_root, lambda nb: nb.cells.append(nbformat.v4.new_code_cell("print('new')")))
        return execute(*args, **kwargs)

    monkeypatch.setattr(runner, "execute", edited_meanwhile)
    assert run()[0].status == "done"
    assert results_of(toy_root)["cache_key"] == before != key_for()
    monkeypatch.setattr(runner, "execute", execute)
    assert run()[0].status == "done"  # the edit was never run: not a cache hit


def test_cache_key_changes_with_what_changes_results(toy_root, stable_source):
    base = key_for()
    assert key_for() == base
    assert key_for(overrides={"n": 4}) != base
    assert key_for(overrides={"rate": 0.25}) != base
    assert key_for(seed=1) != base
    assert key_for("full") != base and key_for("smoke") != key_for("full")
    # output_dir is where, not what: it does not change the key
    assert key_for(overrides={"output_dir": "/elsewhere"}) == base
    # a markdown-only edit keeps the key, a code edit changes it
    edit_notebook(toy_root, lambda nb: setattr(nb.cells[0], "source", "# Toy, reworded"))
    assert key_for() == base
    edit_notebook(toy_root, lambda nb: nb.cells.append(nbformat.v4.new_markdown_cell("More prose")))
    assert key_for() == base
    edit_notebook(toy_root, lambda nb: setattr(nb.cells[2], "source", nb.cells[2].source + "\nprint('more')\n"))
    assert key_for() != base


def test_cache_key_covers_cnnlab_source_and_versions(toy_root, tmp_path_factory, monkeypatch):
    package = tmp_path_factory.mktemp("pkg")
    (package / "mod.py").write_text("X = 1\n")
    monkeypatch.setattr(runner.paths, "PACKAGE", package)
    base = key_for()
    assert key_for() == base
    (package / "mod.py").write_text("X = 2\n")
    changed = key_for()
    assert changed != base
    # a run's own modules: an edit to another module leaves its key, one to its modules or their loss does not
    exp, resolved = params.find("99"), params.resolve(params.find("99"), "quick")
    own = runner.cache_key(exp, resolved, modules=["mod.py"])
    (package / "other.py").write_text("Y = 1\n")
    assert runner.cache_key(exp, resolved, modules=["mod.py"]) == own and key_for() != changed
    (package / "mod.py").write_text("X = 3\n")
    assert runner.cache_key(exp, resolved, modules=["mod.py"]) != own
    assert runner.cache_key(exp, resolved, modules=["gone.py"]) != runner.cache_key(exp, resolved, modules=[])
    monkeypatch.setattr(runner, "versions", lambda: {"python": "3.11.0", "tensorflow": "9.9", "keras": "3.15.1"})
    assert key_for() != changed


def test_code_edit_reruns(toy_root, stable_source):
    run()
    edit_notebook(toy_root, lambda nb: setattr(nb.cells[0], "source", "# Toy, reworded"))
    assert run()[0].status == "cached"
    write_toy(toy_root, TOY_BODY.replace("n * rate", "n * rate * 2"))
    outcome, _ = run()
    assert outcome.status == "done"
    assert results_of(toy_root)["metrics"] == {"n_times_rate": 3.0}


def assert_failed_run(root):
    runs = root / "results" / "runs" / "99_toy"
    before = {p.name: p.read_bytes() for p in (runs / "quick").iterdir()} if (runs / "quick").exists() else None
    with pytest.raises(runner.RunFailed) as info:
        run(overrides={"fail": True})
    message = str(info.value)
    assert message == ("99_toy: cell 3 raised RuntimeError: asked to fail; executed notebook kept at "
                       "results/runs/99_toy/quick.failed/99_toy.ipynb; "
                       + ("the previous results are untouched" if before else "there are no earlier results"))
    assert sorted(p.name for p in (runs / "quick.failed").iterdir()) == ["99_toy.ipynb"]
    executed = nbformat.read(runs / "quick.failed" / "99_toy.ipynb", as_version=4)
    assert executed.metadata.papermill.exception is True
    [injected] = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'output_dir = "results/runs/99_toy/quick.failed"' in injected.source
    assert "asked to fail" in json.dumps(executed.cells[-1].outputs)
    after = {p.name: p.read_bytes() for p in (runs / "quick").iterdir()} if (runs / "quick").exists() else None
    assert after == before  # byte for byte, or still absent
    assert sorted(p.name for p in runs.iterdir()) == sorted(["quick.failed"] + (["quick"] if before else []))


def test_kernel_native_stderr_goes_to_kernel_log(toy_root, stable_source, monkeypatch):
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # which a kernel takes as a reason to leave its stderr alone
    write_toy(toy_root, "import os\nos.write(2, b'native start-up message\\n')\n" + TOY_BODY)
    outcome, printed = run()
    assert "native start-up message" not in printed
    executed = nbformat.read(outcome.run_dir / "99_toy.ipynb", as_version=4)
    assert "native start-up message" not in json.dumps(executed.cells[-1].outputs)  # nor in the notebook
    assert (outcome.run_dir / "kernel.log").read_text() == "native start-up message\n"


@pytest.mark.parametrize("level", [None, "0"])
def test_the_kernel_logs_quietly_unless_the_environment_says_otherwise(toy_root, stable_source, monkeypatch, level):
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    if level is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    write_toy(toy_root, "import os\nprint('log', os.environ.get('TF_CPP_MIN_LOG_LEVEL'), "
                        "os.environ.get('PYTHONWARNINGS'))\n" + TOY_BODY)
    _, printed = run()
    assert f"    log {level or '2'} ignore\n" in printed
    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == level  # the runner's own environment is left as it was


def test_the_executed_notebook_names_the_run_folder_relative_to_the_repository(toy_root, stable_source):
    figure = f"base64 of a figure: AAA{toy_root}/BBB"  # a path there is chance, not a path
    write_toy(toy_root, TOY_BODY.replace("rec.save()", "print('tables in', rec.output_dir / 'tables')\n"
                                         f"display({{'image/png': '{figure}'}}, raw=True)\nrec.finish()"))
    outcome, _ = run()
    text = (outcome.run_dir / "99_toy.ipynb").read_text()
    assert text.count(figure) == text.count(str(toy_root)) == 2  # in the cell and in its output, untouched
    text = text.replace(figure, "")
    executed = nbformat.reads(text, as_version=4)
    [injected] = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'output_dir = "results/runs/99_toy/quick"' in injected.source
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert "tables in results/runs/99_toy/quick/tables\n" in printed
    assert printed.endswith("1 reproduced\nrecord saved in results/runs/99_toy/quick/\n")
    where = text.find("partial-")
    assert where < 0 and str(toy_root) not in text, text[where - 200:where + 50]


def test_failing_notebook_raises_and_writes_no_results(toy_root, stable_source):
    assert_failed_run(toy_root)


def test_failing_rerun_keeps_the_previous_results(toy_root, stable_source):
    run()
    assert results_of(toy_root)["params"]["fail"] is False
    assert_failed_run(toy_root)
    assert results_of(toy_root)["params"]["fail"] is False
    assert run()[0].status == "cached"  # the good run still counts


def test_a_successful_run_removes_the_failed_notebook_of_an_earlier_run(toy_root, stable_source):
    assert_failed_run(toy_root)
    assert run()[0].status == "done"
    assert sorted(p.name for p in (toy_root / "results" / "runs" / "99_toy").iterdir()) == ["quick"]


def test_a_kernel_that_dies_fails_the_run_in_one_line_and_leaves_the_previous_results(toy_root, stable_source):
    run()
    previous = (toy_root / "results" / "runs" / "99_toy" / "quick" / RESULTS_FILE).read_bytes()
    write_toy(toy_root, TOY_BODY.replace('raise RuntimeError("asked to fail")',
                                         "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    with pytest.raises(runner.RunFailed) as info:
        run(overrides={"fail": True})
    assert str(info.value) == ("99_toy: the kernel died in cell 3/3 (out of memory, or a crash in native code: the "
                               "end of its kernel.log may say); executed notebook kept at "
                               "results/runs/99_toy/quick.failed/99_toy.ipynb; the previous results are untouched")
    assert (toy_root / "results" / "runs" / "99_toy" / "quick" / RESULTS_FILE).read_bytes() == previous
    assert (toy_root / "results" / "runs" / "99_toy" / "quick.failed" / "99_toy.ipynb").exists()


def test_notebook_without_record_save_fails(toy_root, stable_source):
    write_toy(toy_root, TOY_BODY.replace("rec.save()", "pass"))
    with pytest.raises(runner.RunFailed, match="99_toy: the notebook finished without saving its record"):
        run()
    assert not (toy_root / "results" / "runs" / "99_toy" / "quick" / RESULTS_FILE).exists()


def test_bad_parameters_run_nothing(toy_root):
    with pytest.raises(params.ParamError, match="unknown key 'epochs'"):
        run(overrides={"epochs": 2})
    assert not (toy_root / "results").exists()


def start_toy_run(root, *args, blocked=()):
    """`cnnlab run 99 ARGS` in a subprocess, the signals `blocked` blocked in it as a parent's mask would be;
    returns it once its sleeping cell is running."""
    env = dict(os.environ, CNNLAB_ROOT=str(root), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "run", "99", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, blocked))
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "toy run" in line:  # the sleep cell is running
            return proc
    proc.wait()
    raise AssertionError(f"the toy run ended early: {lines}")


@pytest.fixture
def reaper():
    """Subprocesses a test started are killed at its end, whatever happened."""
    procs = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig, blocked", [(signal.SIGINT, ()), (signal.SIGTERM, ()),
                                         (signal.SIGTERM, (signal.SIGTERM,))])  # a mask from the parent
def test_interrupted_run_leaves_the_previous_results(toy_root, stable_source, reaper, sig, blocked):
    run(force=True)
    folder = toy_root / "results" / "runs" / "99_toy" / "quick"
    before = (folder / RESULTS_FILE).read_bytes()
    proc = start_toy_run(toy_root, "-p", "sleep_s=30", "--force", blocked=blocked)
    reaper.append(proc)
    assert (folder.with_name(f".quick.partial-{proc.pid}") / "99_toy.ipynb").exists()
    start = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert time.monotonic() - start < 20  # it stopped, it did not sleep on
    out, err = proc.communicate(timeout=60)  # the pipes close once the kernel it started has gone too
    assert proc.returncode == 130  # kill (SIGTERM) is handled like Ctrl-C
    assert ("[1/1 99_toy quick] interrupted: no results.json written; the partial notebook is in "
            "results/runs/99_toy/quick.failed") in out
    assert err == "cnnlab: interrupted\n"
    # the partial notebook stays beside, marked failed; the previous result is untouched
    executed = nbformat.read(folder.with_name("quick.failed") / "99_toy.ipynb", as_version=4)
    assert executed.metadata.papermill.exception is True
    assert executed.cells[0].source.startswith("**Interrupted**")
    assert not (folder.with_name("quick.failed") / RESULTS_FILE).exists()
    assert (folder / RESULTS_FILE).read_bytes() == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["quick", "quick.failed"]


def test_a_second_concurrent_run_is_refused_with_one_line(toy_root, reaper):
    first = start_toy_run(toy_root, "-p", "sleep_s=30")
    reaper.append(first)
    env = dict(os.environ, CNNLAB_ROOT=str(toy_root), TF_CPP_MIN_LOG_LEVEL="2")
    second = subprocess.run([sys.executable, "-m", "cnnlab", "run", "99"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 1
    assert second.stderr == (f"cnnlab: error: 99_toy quick is already running in process {first.pid} "
                             "(results/runs/99_toy/.quick.lock): wait for it to finish, or stop it\n")
    assert first.poll() is None  # the first run goes on, its folder untouched
    assert (toy_root / "results" / "runs" / "99_toy" / f".quick.partial-{first.pid}" / "99_toy.ipynb").exists()


def test_a_stale_lock_is_taken_over(toy_root, stable_source):
    lock = toy_root / "results" / "runs" / "99_toy" / ".quick.lock"
    lock.parent.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{dead.pid}\n")
    assert run()[0].status == "done"
    assert not lock.exists()


def test_a_lock_naming_a_live_process_that_holds_no_lock_blocks_nothing(toy_root, stable_source):
    lock = toy_root / "results" / "runs" / "99_toy" / ".quick.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(f"{os.getpid()}\n")  # alive (this test), as a pid reused after a crash would be
    assert run()[0].status == "done"
    assert not lock.exists()


def test_a_folder_where_the_lock_belongs_is_one_line_naming_the_fix(toy_root, stable_source):
    lock = toy_root / "results" / "runs" / "99_toy" / ".quick.lock"
    lock.mkdir(parents=True)
    with pytest.raises(runner.RunFailed) as info:
        run()
    assert str(info.value) == ("results/runs/99_toy/.quick.lock is a folder where 99_toy quick's lock file belongs: "
                               "remove it (rm -r results/runs/99_toy/.quick.lock)")
    assert sorted(p.name for p in lock.parent.iterdir()) == [".quick.lock"]  # nothing run, nothing written


def test_kill_9_at_any_cell_leaves_the_previous_results_byte_identical(toy_root, reaper):
    """Fault injection: runs killed with SIGKILL at random moments, from start-up to the last cell; afterwards
    the previous results.json is byte-identical and the next run recomputes and succeeds."""
    import random

    run_toy = [sys.executable, "-m", "cnnlab", "run", "99", "--force"]
    env = dict(os.environ, CNNLAB_ROOT=str(toy_root), TF_CPP_MIN_LOG_LEVEL="2")
    assert subprocess.run(run_toy, env=env, capture_output=True, timeout=120).returncode == 0
    folder = toy_root / "results" / "runs" / "99_toy" / "quick"
    before = (folder / RESULTS_FILE).read_bytes()
    start = time.monotonic()
    probe = start_toy_run(toy_root, "--force", "-p", "sleep_s=30")  # how long until the last cell runs
    reach_last_cell = time.monotonic() - start
    probe.kill()
    probe.wait()
    rng = random.Random(7)
    for _ in range(4):
        proc = subprocess.Popen(run_toy + ["-p", "sleep_s=30"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        reaper.append(proc)
        time.sleep(rng.uniform(0.05, 1.2) * reach_last_cell)  # start-up, kernel launch, a cell, or the last one
        proc.kill()
        proc.wait()
        assert (folder / RESULTS_FILE).read_bytes() == before
    done = subprocess.run(run_toy, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "done in" in done.stdout
    assert (folder / RESULTS_FILE).read_bytes() != before  # recomputed: a new start time
    assert sorted(p.name for p in folder.parent.iterdir()) == ["quick"]  # no lock, no partial folder left


def test_the_kernel_imports_the_cnnlab_the_runner_hashed(toy_root, stable_source, tmp_path_factory, monkeypatch):
    shadow = tmp_path_factory.mktemp("other_checkout")
    (shadow / "cnnlab").mkdir()
    (shadow / "cnnlab" / "__init__.py").write_text("raise ImportError('the cnnlab of another checkout')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow))  # as an environment installed from elsewhere would put it first
    write_toy(toy_root, "import cnnlab\nprint('kernel cnnlab', cnnlab.__file__)\n" + TOY_BODY)
    _, printed = run()
    assert f"    kernel cnnlab {runner.paths.PACKAGE / '__init__.py'}\n" in printed
    assert os.environ["PYTHONPATH"] == str(shadow)  # the runner's own environment is left as it was


def test_the_keras_backend_names_the_run_folder_and_enters_the_cache_key(toy_root, stable_source, monkeypatch,
                                                                         tmp_path):
    exp = params.find("99")
    resolved = params.resolve(exp, "quick")
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-config"))
    assert backends.selected() == "tensorflow"
    assert runner.run_dir(exp, "quick") == toy_root / "results" / "runs" / "99_toy" / "quick"
    tf_key = runner.cache_key(exp, resolved)
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "keras.json").write_text('{"backend": "torch"}')
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert backends.selected() == "torch"
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # the variable wins over the config file, as in Keras
    assert backends.selected() == "jax"
    assert runner.run_dir(exp, "quick") == toy_root / "results" / "runs" / "99_toy" / "quick-jax"
    jax_key = runner.cache_key(exp, resolved)
    assert jax_key != tf_key
    installed = runner.metadata.version
    monkeypatch.setattr(runner.metadata, "version", lambda p: "0.0.1" if p == "jax" else installed(p))
    assert runner.versions()["jax"] == "0.0.1" and "torch" not in runner.versions()
    assert runner.cache_key(exp, resolved) != jax_key  # another JAX, another result


def test_a_check_run_takes_the_other_floating_point_path_into_its_own_folder(toy_root, stable_source, monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    write_toy(toy_root, "import os\nprint('onednn', os.environ.get('TF_ENABLE_ONEDNN_OPTS'), "
                        "os.environ.get('TF_NUM_INTRAOP_THREADS'))\n" + TOY_BODY)
    main, printed_main = run()
    outcome = runner.run(params.find("99"), "quick", check=True, out=io.StringIO())
    checked = json.loads((outcome.run_dir / RESULTS_FILE).read_text())
    assert outcome.run_dir == main.run_dir.with_name("quick-check")
    assert checked["check_run"] is True and results_of(toy_root)["check_run"] is False
    assert checked["cache_key"] != results_of(toy_root)["cache_key"]
    executed = nbformat.read(outcome.run_dir / "99_toy.ipynb", as_version=4)
    assert "onednn 0 1" in json.dumps(executed.cells[-1].outputs)
    assert "    onednn None None\n" in printed_main  # the main run keeps the defaults
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ  # and the runner's own environment is left as it was


def test_the_workers_reach_the_kernel_and_the_record_but_not_the_cache_key(toy_root, stable_source):
    write_toy(toy_root, "import os\nprint('workers', os.environ.get('CNNLAB_WORKERS'))\n" + TOY_BODY)
    out = io.StringIO()
    outcome = runner.run(params.find("99"), "quick", workers=3, out=out)
    assert "    workers 3\n" in out.getvalue() and results_of(toy_root)["workers"] == 3
    again, printed = run()  # one worker: the same numbers, so the same key
    assert again.status == "cached" and again.run_dir == outcome.run_dir
    assert "CNNLAB_WORKERS" not in os.environ  # the runner's own environment is left as it was
