"""Run experiment notebooks with papermill: cache, progress, and results only for finished runs.

A run lives in `results/runs/<experiment>/<profile>/`: the executed notebook, its tables and figures,
and `results.json`, which is written last and only when every cell succeeded. A run whose cache key
matches the existing results.json is skipped at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import nbformat

from cnnlab import data, paths
from cnnlab.params import Experiment, resolve
from cnnlab.results import RECORD_FILE, RESULTS_FILE, load_results, write_json_atomic

KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
# The kernel's own log (transport warnings, shutdown notices) is noise here; cell errors still surface.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


class RunFailed(RuntimeError):
    """A notebook that raised: the message names the cell's error and the executed notebook's path."""


@dataclass(frozen=True)
class Outcome:
    experiment: str
    status: str  # "cached" or "done"
    run_dir: Path
    duration_s: float


def run_dir(exp: Experiment, profile: str) -> Path:
    return paths.RUNS / exp.name / profile


def versions() -> dict:
    """Versions that change results: Python, TensorFlow, Keras, cnnlab."""
    found = {"python": platform.python_version()}
    for package in ("tensorflow", "keras", "cnnlab"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found


def _code_cells(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _package_source() -> str:
    digest = hashlib.sha256()
    for path in sorted(paths.PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(paths.PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(exp: Experiment, params: dict) -> str:
    """Hash of the notebook's code, the resolved parameters, cnnlab's source, the datasets and versions."""
    parts = {
        "code": _code_cells(exp.notebook),
        "params": {k: v for k, v in params.items() if k != "output_dir"},
        "cnnlab": _package_source(),
        "data": {name: data.fingerprint(name) for name in exp.datasets},
        "versions": {k: v for k, v in versions().items() if k in ("tensorflow", "keras")},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class _Progress(logging.Handler):
    """Prints papermill's 'Executing Cell N' of each code cell as one line with elapsed and estimated
    remaining time, and the notebook's own output lines indented beneath it."""

    def __init__(self, label: str, code_cells: list[int], estimate_s: float | None, out):
        super().__init__(logging.INFO)
        self.label, self.code_cells, self.estimate, self.out = label, code_cells, estimate_s, out
        self.start = time.monotonic()
        self._pending = ""

    def _stamp(self) -> str:
        elapsed = time.monotonic() - self.start
        left = f", ~{_clock(self.estimate - elapsed)} left" if self.estimate and self.estimate > elapsed else ""
        return f"{_clock(elapsed)} elapsed{left}"

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Executing Cell"):
            number = int(message.removeprefix("Executing Cell").strip("- "))
            if number in self.code_cells:
                position = self.code_cells.index(number) + 1
                print(f"{self.label} cell {position}/{len(self.code_cells)} ({self._stamp()})", file=self.out,
                      flush=True)

    def write(self, text: str):
        """The notebook's stdout, line by line."""
        self._pending += text.replace("\r", "\n")
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                print(f"    {line}", file=self.out, flush=True)

    def flush(self):
        pass


@contextlib.contextmanager
def _stderr_to(path: Path):
    """Send this process's stderr (file descriptor 2, which the kernel inherits) to `path`: TensorFlow's
    C++ start-up messages land in the run's kernel.log instead of the terminal. An empty log is removed."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if path.exists() and path.stat().st_size == 0:
            path.unlink()


def _executed_code_cells(notebook: Path) -> list[int]:
    """1-based numbers of the code cells as papermill counts them, its injected cell (after the
    parameters cell) included."""
    kinds = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        kinds.append(cell.cell_type)
        if "parameters" in cell.metadata.get("tags", []):
            kinds.append("code")
    return [i for i, kind in enumerate(kinds, 1) if kind == "code"]


def execute(exp: Experiment, params: dict, label: str, estimate_s: float | None, out=None) -> Path:
    """Execute the notebook into params['output_dir'] and return the executed notebook's path."""
    out = sys.stdout if out is None else out  # looked up now, not at import: it may have been redirected since
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target = Path(params["output_dir"]) / f"{exp.name}.ipynb"
    progress = _Progress(label, _executed_code_cells(exp.notebook), estimate_s, out)
    logger = logging.getLogger("papermill")
    logger.addHandler(progress)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # the kernel imports the cnnlab whose source the cache key hashed, whatever else the environment has installed
    kernel_env = dict(KERNEL_ENV, PYTHONPATH=os.pathsep.join(
        [str(paths.PACKAGE.parent)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    saved_env = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    try:
        with _stderr_to(target.with_name("kernel.log")):
            papermill.execute_notebook(
                str(exp.notebook), str(target), parameters=params, kernel_name="python3",
                progress_bar=False, log_output=True, stdout_file=progress, cwd=str(paths.NOTEBOOKS),
                extra_arguments=KERNEL_ARGUMENTS,
            )
    except PapermillExecutionError as err:
        raise RunFailed(
            f"{exp.name}: cell {err.exec_count} raised {err.ename}: {err.evalue}; "
            f"executed notebook kept at {paths.rel(target)}"
        ) from None
    except KeyboardInterrupt:
        _mark_interrupted(target)
        raise
    finally:
        logger.removeHandler(progress)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return target


def _mark_interrupted(notebook: Path) -> None:
    """Mark a partial notebook as failed, as papermill marks one whose cell raised: papermill itself
    saves an interrupted notebook with every cell 'completed' and no exception."""
    if not notebook.exists():
        return
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata.setdefault("papermill", {})["exception"] = True
    note = nbformat.v4.new_markdown_cell("**Interrupted**: this run was stopped before it finished; "
                                         "no results.json was written.")
    note.metadata["tags"] = ["papermill-error-cell-tag"]
    nb.cells.insert(0, note)
    nbformat.write(nb, notebook)


def run(
    exp: Experiment,
    profile: str = "quick",
    overrides: dict | None = None,
    seed: int | None = None,
    force: bool = False,
    position: tuple[int, int] = (1, 1),
    out=None,
) -> Outcome:
    """Run one experiment unless its results are cached; raise RunFailed when the notebook fails."""
    out = sys.stdout if out is None else out  # looked up now, not at import: it may have been redirected since
    params = resolve(exp, profile, overrides, seed)
    key = cache_key(exp, params)
    folder = run_dir(exp, profile)
    label = f"[{position[0]}/{position[1]} {exp.name} {profile}]"
    previous = load_results(folder)
    if previous and previous.get("cache_key") == key and not force:
        print(f"{label} cached: results.json matches (key {key}), skipped", file=out, flush=True)
        return Outcome(exp.name, "cached", folder, 0.0)
    estimate = previous.get("duration_s") if previous else None
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    params["output_dir"] = str(folder)
    started = datetime.now(timezone.utc)
    print(f"{label} running {paths.rel(exp.notebook)}", file=out, flush=True)
    begin = time.monotonic()
    try:
        notebook = execute(exp, params, label, estimate, out)
        record_path = folder / RECORD_FILE
        if not record_path.exists():
            raise RunFailed(f"{exp.name}: the notebook finished without saving its record (Record.save())")
        record = json.loads(record_path.read_text())
        duration = time.monotonic() - begin
        results = dict(
            experiment=exp.name,
            profile=profile,
            params={k: v for k, v in params.items() if k != "output_dir"},
            seeds=record.pop("seeds", None) or [params["seed"]],
            cache_key=key,
            versions=versions(),
            started=started.isoformat(timespec="seconds"),
            duration_s=round(duration, 1),
            notebook=str(notebook.relative_to(folder)),
            **{k: v for k, v in record.items() if k != "experiment"},
        )
        write_json_atomic(folder / RESULTS_FILE, results)
    except KeyboardInterrupt:
        print(f"{label} interrupted: no results.json written", file=out, flush=True)
        raise
    finally:
        (folder / RECORD_FILE).unlink(missing_ok=True)
    print(f"{label} done in {_clock(duration)}: {_verdict_counts(results['claims'])}", file=out, flush=True)
    return Outcome(exp.name, "done", folder, duration)


def _verdict_counts(claims: list) -> str:
    counts = {}
    for claim in claims:
        counts[claim["verdict"]] = counts.get(claim["verdict"], 0) + 1
    return ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) or "no claims"
