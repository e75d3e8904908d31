"""Executing a notebook in its kernel with papermill: the kernel's environment (and a check run's other
floating-point path), one progress line per code cell with the notebook's output beneath it, TensorFlow's
start-up lines sent to the run's kernel.log, an interrupted notebook marked as such, and the cells' times."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import nbformat

from cnnlab import paths
from cnnlab.cluster import CLUSTER_ENV, check_address
from cnnlab.tasks import WORKERS_ENV
from cnnlab.suite.params import Experiment
from cnnlab.suite.process import stderr_to

KERNEL_ENV = {"MPLBACKEND": "Agg"}


# the kernel's logging, unless the environment sets it: TensorFlow's C++ log without its info lines, no Python
# warnings (TF_CPP_MIN_LOG_LEVEL=0 brings the info lines back into the run's kernel.log)
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}


# A check run takes another floating-point path, as another CPU would: one thread, no oneDNN kernels. Where a
# claim's verdict differs between a run and its check run, the report gives the weaker of the two.
CHECK_ENV = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1",
             "TF_ENABLE_ONEDNN_OPTS": "0"}


# The kernel's own log (transport warnings, shutdown notices) is noise here; cell errors still surface. What native
# libraries write to the kernel's stderr (TensorFlow's and absl's start-up lines, which no variable silences) goes
# to the run's kernel.log, not into the notebook.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL", "--IPKernelApp.capture_fd_output=False"]


class RunFailed(RuntimeError):
    """A notebook that raised: the message names the cell's error and the executed notebook's path."""


def clock(seconds: float) -> str:
    """Seconds as m:ss."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class _Progress(logging.Handler):
    """Prints papermill's 'Executing Cell N' of each code cell as one line with elapsed and estimated
    remaining time, and the notebook's own output lines indented beneath it."""

    def __init__(self, label: str, code_cells: list[int], estimate_s: float | None, out):
        super().__init__(logging.INFO)
        self.label, self.code_cells, self.estimate, self.out = label, code_cells, estimate_s, out
        self.start = time.monotonic()
        self.cell = 0  # the code cell running now (1-based), 0 before the first
        self._pending = ""

    def _stamp(self) -> str:
        elapsed = time.monotonic() - self.start
        left = f", ~{clock(self.estimate - elapsed)} left" if self.estimate and self.estimate > elapsed else ""
        return f"{clock(elapsed)} elapsed{left}"

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Executing Cell"):
            number = int(message.removeprefix("Executing Cell").strip("- "))
            if number in self.code_cells:
                position = self.cell = self.code_cells.index(number) + 1
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


def _executed_code_cells(notebook: Path) -> list[int]:
    """1-based numbers of the code cells as papermill counts them, its injected cell (after the
    parameters cell) included."""
    kinds = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        kinds.append(cell.cell_type)
        if "parameters" in cell.metadata.get("tags", []):
            kinds.append("code")
    return [i for i, kind in enumerate(kinds, 1) if kind == "code"]


def execute(exp: Experiment, params: dict, label: str, estimate_s: float | None, out=None,
            check: bool = False, workers: int = 1, cluster: str | None = None) -> Path:
    """Execute the notebook into params['output_dir'] (on the check run's floating-point path when `check`,
    its paired runs `workers` at a time, or as tasks on the Ray cluster at `cluster`: `cnnlab.tasks`) and
    return the executed notebook's path."""
    out = sys.stdout if out is None else out  # looked up now, not at import: it may have been redirected since
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    target = Path(params["output_dir"]) / f"{exp.name}.ipynb"
    progress = _Progress(label, _executed_code_cells(exp.notebook), estimate_s, out)
    logger = logging.getLogger("papermill")
    logger.addHandler(progress)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # the kernel imports the cnnlab whose source the cache key hashed, whatever else the environment has installed
    quiet = {key: os.environ.get(key, value) for key, value in QUIET_ENV.items()}
    path = [str(paths.PACKAGE.parent)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    where = {WORKERS_ENV: str(workers), CLUSTER_ENV: cluster or ""}
    kernel_env = dict(quiet, **KERNEL_ENV, **(CHECK_ENV if check else {}), **where, PYTHONPATH=os.pathsep.join(path))
    saved_env = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    try:
        with stderr_to(target.with_name("kernel.log")):
            papermill.execute_notebook(
                str(exp.notebook), str(target), parameters=params, kernel_name="python3",
                progress_bar=False, log_output=True, stdout_file=progress, cwd=str(paths.NOTEBOOKS),
                extra_arguments=KERNEL_ARGUMENTS,
            )
    except PapermillExecutionError as err:
        raise RunFailed(f"{exp.name}: cell {err.exec_count} raised {err.ename}: {err.evalue}") from None
    except DeadKernelError:
        raise RunFailed(f"{exp.name}: the kernel died in cell {progress.cell}/{len(progress.code_cells)} "
                        f"({_why_the_kernel_died(cluster)})") from None
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


def _why_the_kernel_died(cluster: str | None) -> str:
    """What most likely stopped a kernel that died: its cluster gone (a Ray driver exits with its node), or else
    memory or native code."""
    if cluster:
        try:
            check_address(cluster)
        except ValueError:
            return f"the Ray cluster at {cluster} went away mid-run: no Ray head answers there now"
    return "out of memory, or a crash in native code: the end of its kernel.log may say"


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


def cell_seconds(notebook: Path) -> list[dict]:
    """Papermill's duration of each executed code cell: its number among the code cells (the injected
    parameters cell included), its first line and its seconds."""
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    return [dict(cell=i, source=_first_line(c.source), seconds=round(c.metadata["papermill"]["duration"], 2))
            for i, c in enumerate(cells, 1) if (c.metadata.get("papermill") or {}).get("duration") is not None]


def _first_line(source: str, width: int = 48) -> str:
    line = next((line.strip() for line in source.splitlines() if line.strip() and not line.startswith("#")), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def slowest_cells(results: dict, n: int = 3) -> str:
    """Where a run's time went, in one line: its `n` slowest cells and the rest (kernel start-up, papermill)."""
    cells = sorted(results.get("cells") or [], key=lambda c: -c["seconds"])
    rest = results["duration_s"] - sum(c["seconds"] for c in cells)
    slow = ", ".join(f"cell {c['cell']} ({c['source']}) {clock(c['seconds'])}" for c in cells[:n])
    return f"slowest: {slow}; kernel start-up and the rest {clock(rest)}"
