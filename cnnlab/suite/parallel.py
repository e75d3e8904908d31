"""`cnnlab reproduce --jobs N`: several experiments at once, each a `cnnlab run` process of its own.

Every run keeps the threads it would have alone (the same floating-point path, so the same numbers); what
overlaps is the time a run leaves the cores idle (kernel start-up, imports, Python between the steps). Each
run's full output goes to its log beside its run folder (`results/runs/<experiment>/<profile>.log`); the
terminal gets one line when a run starts and one when it ends. The longest runs start first; a run whose results are current is reported cached without a process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cnnlab import paths
from cnnlab.suite.schema import load_results
from cnnlab.suite.params import resolve
from cnnlab.suite.runner import RunFailed, clock, current_key, run_dir


def log_path(exp, profile: str, check: bool = False) -> Path:
    """Where a parallel run's output goes: beside its run folder."""
    folder = run_dir(exp, profile, check)
    return folder.with_name(f"{folder.name}.log")


def longest_first(experiments, previous: dict) -> list:
    """The experiments by the duration of their `previous` results (name -> results or None), longest first
    (never run: first, in their order)."""
    return sorted(experiments, key=lambda exp: -(previous[exp.name] or {}).get("duration_s", float("inf")))


def run_all(experiments, profile: str, jobs: int, force: bool = False, check: bool = False, out=None,
            workers: int = 1, cluster: str | None = None) -> None:
    """Run `experiments` with at most `jobs` at once, each training its paired runs `workers` at a time (or on
    the Ray cluster at `cluster`); raise RunFailed naming every run that failed, after the others finished. An
    interrupt stops every running one (each cleans up as an interrupted run does)."""
    out = sys.stdout if out is None else out
    previous = {exp.name: load_results(run_dir(exp, profile, check)) for exp in experiments}
    order = longest_first(experiments, previous)
    total, waiting, running, failed = len(order), [], {}, []
    for position, exp in enumerate(order, 1):  # a current result needs no process of its own
        folder = run_dir(exp, profile, check)
        key = None if force else current_key(exp, resolve(exp, profile), check, previous[exp.name])
        if key:
            print(f"[{position}/{total} {exp.name} {folder.name}] cached: results.json matches (key {key}), skipped",
                  file=out, flush=True)
        else:
            waiting.append((position, exp))
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                position, exp = waiting.pop(0)
                running[exp.name] = _start(exp, profile, force, check, position, total, out, workers, cluster)
            time.sleep(0.5)
            for name, (process, log, label, started) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                last = _last_line(log)
                if process.returncode == 0:
                    print(f"{label} {last}", file=out, flush=True)
                else:
                    print(f"{label} FAILED after {clock(time.monotonic() - started)}: {last}", file=out, flush=True)
                    failed.append(f"{name} ({last}; log {paths.rel(log)})")
    except KeyboardInterrupt:
        for process, *_ in running.values():
            process.terminate()
        for process, *_ in running.values():
            process.wait()
        raise
    if failed:
        raise RunFailed(f"{len(failed)} of {total} runs failed: " + "; ".join(failed))


def _start(exp, profile: str, force: bool, check: bool, position: int, total: int, out, workers: int,
           cluster: str | None):
    log = log_path(exp, profile, check)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "cnnlab", "run", exp.name, "--profile", profile, "--workers", str(workers)]
    command += ["--force"] * force + ["--check"] * check + (["--cluster", cluster] if cluster else [])
    label = f"[{position}/{total} {exp.name} {run_dir(exp, profile, check).name}]"
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=paths.ROOT,
                                   env=dict(os.environ, PYTHONUNBUFFERED="1"))
    print(f"{label} started, log {paths.rel(log)}", file=out, flush=True)
    return process, log, label, time.monotonic()


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    done = [line for line in lines if " done in " in line or " cached: " in line]
    if done:
        return done[-1].split("] ", 1)[-1]
    return lines[-1] if lines else "no output"
