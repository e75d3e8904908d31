"""Run experiment notebooks (executed by `cnnlab.suite.kernel`): cache, and results only for finished runs.

A run lives in `results/runs/<experiment>/<profile>/`: the executed notebook, its tables and figures,
and `results.json`. Before anything starts, every dataset the experiment declares is found, checked and
fingerprinted (a DataError otherwise), and a file where the run folder or `<profile>.failed/` belongs is refused.
A new run executes into a fresh `.<profile>.partial-<pid>/` beside it and replaces the run folder only once it
has finished with a saved record (its executed notebook then names the run folder, relative to the repository),
and removes an older `<profile>.failed/`; a failed or interrupted run leaves the previous results as they were
and its own notebook in `<profile>.failed/`. An OS lock on `.<profile>.lock` (naming its owner's pid) keeps two
runs of one experiment and profile apart. A run whose cache key matches the existing results.json is skipped at
once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import nbformat

from cnnlab import backends, data, paths
from cnnlab.suite.atomic import write_json_atomic
from cnnlab.suite.claim_text import verdict_counts
from cnnlab.suite.kernel import CHECK_ENV, RunFailed, cell_seconds, clock, execute, slowest_cells
from cnnlab.suite.params import Experiment, resolve
from cnnlab.suite.results import CHECK_SUFFIX, RECORD_FILE, RESULTS_FILE
from cnnlab.suite.schema import load_results


class RunBusy(RunFailed):
    """The same experiment and profile is being run by another process."""


@dataclass(frozen=True)
class Outcome:
    experiment: str
    status: str  # "cached" or "done"
    run_dir: Path
    duration_s: float


def run_folder(profile: str, check: bool = False) -> str:
    """The name of a run's folder: the profile, with `-check` after it for a check run and `-<backend>` for a
    backend other than TensorFlow, so such runs neither overwrite nor stand in for each other."""
    backend = backends.selected()
    return profile + (CHECK_SUFFIX if check else "") + ("" if backend == "tensorflow" else f"-{backend}")


def run_dir(exp: Experiment, profile: str, check: bool = False) -> Path:
    """`results/runs/<experiment>/<run_folder(profile, check)>`."""
    return paths.RUNS / exp.name / run_folder(profile, check)


def versions() -> dict:
    """Versions that change results: Python, TensorFlow, Keras, cnnlab, the Keras backend and, for JAX or
    PyTorch, its package."""
    backend = backends.selected()
    found = {"python": platform.python_version(), "backend": backend}
    other = (backends.package(backend),) if backend in backends.BACKENDS and backend != "tensorflow" else ()
    for package in ("tensorflow", "keras", "cnnlab") + other:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found


def _code_cells(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def cache_key(exp: Experiment, params: dict, check: bool = False, modules=None, hashes: dict | None = None,
              code: list[str] | None = None) -> str:
    """Hash of the notebook's code (`code`, its code cells read earlier, or as they are now), the resolved
    parameters, cnnlab's source (only the `modules` the run imported, when known: an edit elsewhere in the
    package leaves its results current; `hashes` are the source's hashes taken earlier), the datasets, versions
    and, for a check run, its environment."""
    parts = {
        "check": CHECK_ENV if check else None,
        "code": _code_cells(exp.notebook) if code is None else code,
        "params": {k: v for k, v in params.items() if k != "output_dir"},
        "cnnlab": paths.package_digest(modules, hashes),
        "data": {name: data.fingerprint(name) for name in exp.datasets},
        "versions": {k: v for k, v in versions().items()
                     if k in ("tensorflow", "keras", "backend", *backends.OTHER_PACKAGES)},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def run(
    exp: Experiment,
    profile: str = "quick",
    overrides: dict | None = None,
    seed: int | None = None,
    force: bool = False,
    position: tuple[int, int] = (1, 1),
    out=None,
    check: bool = False,
    workers: int = 1,
    cluster: str | None = None,
) -> Outcome:
    """Run one experiment unless its results are cached; raise RunFailed when the notebook fails. A check
    run (`check`) takes another floating-point path (CHECK_ENV) into its own folder. The notebook trains its
    paired runs `workers` at a time, or as tasks on the Ray cluster at `cluster` (`cnnlab.tasks`: the same
    numbers, so not part of the cache key)."""
    out = sys.stdout if out is None else out  # looked up now, not at import: it may have been redirected since
    params = resolve(exp, profile, overrides, seed)
    # the source and notebook this run starts from, whatever is edited while it runs
    hashes, code = paths.source_hashes(), _code_cells(exp.notebook)
    folder = run_dir(exp, profile, check)
    failed = folder.with_name(f"{folder.name}.failed")
    label = f"[{position[0]}/{position[1]} {exp.name} {folder.name}]"
    _check_data(exp, folder)
    previous = load_results(folder)
    key = current_key(exp, params, check, previous, hashes, code)
    if key and not force:
        print(f"{label} cached: results.json matches (key {key}), skipped", file=out, flush=True)
        return Outcome(exp.name, "cached", folder, 0.0)
    estimate = previous.get("duration_s") if previous else None
    _refuse_files_in_the_way(f"{exp.name} {folder.name}", folder, failed)
    with _locked(folder, f"{exp.name} {folder.name}"):
        for stale in folder.parent.glob(f".{folder.name}.partial-*"):  # left by killed runs (the lock is ours)
            shutil.rmtree(stale)
        work = paths.emptied(folder.with_name(f".{folder.name}.partial-{os.getpid()}"))
        params["output_dir"] = str(work)
        print(f"{label} running {paths.rel(exp.notebook)}", file=out, flush=True)
        try:
            results = _execute_and_record(exp, profile, params, (hashes, code), label, estimate, out, check,
                                          workers, cluster)
        except BaseException as err:
            _relocate(work / f"{exp.name}.ipynb", work, failed)
            _replace(work, failed)
            if isinstance(err, KeyboardInterrupt):
                print(f"{label} interrupted: no results.json written; the partial notebook is in {paths.rel(failed)}",
                      file=out, flush=True)
                raise
            if isinstance(err, RunFailed):
                raise RunFailed(f"{err}; executed notebook kept at {paths.rel(failed / (exp.name + '.ipynb'))}; "
                                f"{_previous_results(folder)}") from None
            raise
        _relocate(work / f"{exp.name}.ipynb", work, folder)
        _replace(work, folder)
        if failed.exists():  # an earlier run's failure, stale beside this result
            shutil.rmtree(failed)
    print(f"{label} done in {clock(results['duration_s'])}: {verdict_counts(results['claims'])}", file=out,
          flush=True)
    print(f"{label} {slowest_cells(results)}", file=out, flush=True)
    return Outcome(exp.name, "done", folder, results["duration_s"])


def _check_data(exp: Experiment, folder: Path) -> None:
    """Find, check and fingerprint every dataset `exp` declares (data.fingerprint, cached for the cache key), before
    anything starts; its DataError says that the run did not start and what it left of the results in `folder`."""
    try:
        for name in exp.datasets:
            data.fingerprint(name)
    except data.DataError as err:
        raise data.DataError(f"{err}; {exp.name} {folder.name} not run, {_previous_results(folder)}") from None


def _previous_results(folder: Path) -> str:
    """What a run that did not finish leaves of the results before it, in words."""
    return "the previous results are untouched" if folder.exists() else "there are no earlier results"


def _refuse_files_in_the_way(what: str, folder: Path, failed: Path) -> None:
    """RunFailed, before anything starts, when something other than a folder stands where the run's results or its
    failed notebook go: cnnlab did not write it, so it is neither replaced nor removed."""
    for path, role in ((folder, "results"), (failed, "failed notebook")):
        if path.exists() and not path.is_dir():
            raise RunFailed(f"{paths.rel(path)} is not a folder, where {what} keeps its {role}: move it away "
                            "(nothing was run)")


def current_key(exp: Experiment, params: dict, check: bool, previous: dict | None, hashes: dict | None = None,
                code: list[str] | None = None):
    """The cache key of the `previous` results when they are still current for `params` and the source and
    notebook as they are (or as `hashes` and `code` say), else None."""
    if not previous:
        return None
    key = cache_key(exp, params, check, previous.get("modules"), hashes, code)
    return key if previous.get("cache_key") == key else None


def _execute_and_record(exp: Experiment, profile: str, params: dict, source: tuple, label: str, estimate, out,
                        check: bool, workers: int, cluster: str | None) -> dict:
    """Run the notebook into params['output_dir'] and write its results.json there, its cache key from the
    cnnlab modules the kernel imported and the notebook's code, as `source` (hashes, code cells) holds them from
    when the run started; return the results."""
    work = Path(params["output_dir"])
    started = datetime.now(timezone.utc)
    begin = time.monotonic()
    try:
        notebook = execute(exp, params, label, estimate, out, check, workers, cluster)
        record_path = work / RECORD_FILE
        if not record_path.exists():
            raise RunFailed(f"{exp.name}: the notebook finished without saving its record (Record.save())")
        record = json.loads(record_path.read_text())
        modules = record.pop("modules", None)
        results = dict(
            experiment=exp.name,
            profile=profile,
            check_run=check,
            workers=workers,
            params={k: v for k, v in params.items() if k != "output_dir"},
            seeds=record.pop("seeds", None) or [params["seed"]],
            cache_key=cache_key(exp, params, check, modules, *source),
            modules=modules,
            versions=versions(),
            started=started.isoformat(timespec="seconds"),
            duration_s=round(time.monotonic() - begin, 1),
            cells=cell_seconds(notebook),
            notebook=str(notebook.relative_to(work)),
            **{k: v for k, v in record.items() if k != "experiment"},
        )
        write_json_atomic(work / RESULTS_FILE, results)
    finally:
        (work / RECORD_FILE).unlink(missing_ok=True)
    return results


def _relocate(notebook: Path, work: Path, folder: Path) -> None:
    """Show the executed `notebook` as the reader finds it: its temporary `work` folder (the injected
    `output_dir`, the record's save line, paths a cell printed), absolute or relative, named as the run `folder`
    it is renamed to, and every other path inside the repository relative to it."""
    if not notebook.exists():
        return
    text = notebook.read_text()
    final = paths.rel(folder)
    # the work folder absolute, then relative (the one ends with the other), then the repository's own prefix;
    # never inside a figure's base64 text, where a short path could occur by chance
    for old, new in ((str(work), final), (paths.rel(work), final), (f"{paths.ROOT}{os.sep}", "")):
        text = re.sub(r"(?<![A-Za-z0-9+/=])" + re.escape(json.dumps(old)[1:-1]), lambda _: json.dumps(new)[1:-1],
                      text)
    notebook.write_text(text)


def _replace(source: Path, target: Path) -> None:
    """Put the finished folder `source` at `target`; an earlier `target` is removed only after."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    source.rename(target)
    if old.exists():
        shutil.rmtree(old)


@contextlib.contextmanager
def _locked(folder: Path, what: str):
    """Hold an OS lock (`flock`) on `.<profile>.lock` beside the run folder while running: the kernel releases it
    when the process dies, so a lock left by a crash, or naming a pid reused since, blocks nothing. The file
    names the owner's pid for the message; RunBusy while another live run holds it."""
    lock = folder.with_name(f".{folder.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except IsADirectoryError:
            raise RunFailed(f"{paths.rel(lock)} is a folder where {what}'s lock file belongs: remove it "
                            f"(rm -r {paths.rel(lock)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunBusy(f"{what} is already running in process {owner} ({paths.rel(lock)}): wait for it to "
                          "finish, or stop it") from None
        if _same_file(fd, lock):
            break
        os.close(fd)  # the owner before us removed the file after we opened it: lock the one there now
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    # a run killed between the two renames of _replace left its predecessor as .<profile>.old
    old = folder.with_name(f".{folder.name}.old")
    if old.exists() and not folder.exists():
        old.rename(folder)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open `fd` is still the file at `path`."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
