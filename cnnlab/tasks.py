"""Paired runs as tasks: each (configuration, seed) run builds, trains and measures from its seed alone, so the
runs can go one after another in this process or several at once in worker processes (`ordered`), with the same
numbers either way. A worker keeps TensorFlow's usual threads (the floating-point path of a run alone: one
small net's steps leave much of a core idle, which a second run fills) and trains its share of the runs in the
order given, so that a configuration's model is traced once per worker. Workers are started fresh (`spawn`:
TensorFlow's threads do not survive a fork) once per process and kept for its later calls; each call's task
travels to them by value (`cloudpickle`: the notebook's closures included) through a file each reads once, with
the parent's Keras dtype policy. How many workers a kernel uses, `cnnlab run --workers`
passes to it in `CNNLAB_WORKERS` (1 without it: a notebook opened by hand trains one run after another)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cnnlab import cluster, worker
from cnnlab.memory import peak_rss_mb

WORKERS_ENV = "CNNLAB_WORKERS"
_pool: dict = {}  # this process's workers, kept for its later calls: "executor", "size"
_peaks_mb: dict[int, float] = {}  # worker pid -> its peak resident memory, as last reported


def ordered(task: Callable, items: Iterable, workers: int | None = None) -> Iterator:
    """`task(item)` for every item, yielded in the items' order; with `workers` > 1 (default: `default_workers`)
    computed by that many worker processes at once, each result yielded as soon as those before it are in; on
    the Ray cluster the runner named (`cnnlab.cluster`), as its tasks. A task's exception is raised here, and the
    workers are let go (the next call starts new ones)."""
    items, where = list(items), cluster.address()
    if where is not None:
        yield from cluster.ordered(task, items, where)
        return
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers == 1 or len(items) < 2:
        yield from map(task, items)
        return
    import cloudpickle

    payload = cloudpickle.dumps(task)
    digest, policy = hashlib.sha256(payload).hexdigest(), worker.dtype_policy()
    with tempfile.NamedTemporaryFile(prefix="cnnlab-task-") as file:  # each worker reads it once
        file.write(payload)
        file.flush()
        pool = _workers(workers)
        futures = [pool.submit(_run, file.name, digest, policy, item) for item in items]
        try:
            for future in futures:
                pid, peak, result = future.result()
                _peaks_mb[pid] = peak
                yield result
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            _pool.clear()
            raise


def default_workers() -> int:
    """The workers this process's runs use: `CNNLAB_WORKERS`, else 1."""
    text = os.environ.get(WORKERS_ENV, "1")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{WORKERS_ENV} must be a whole number of at least 1, got '{text}'")
    return int(text)


def workers_peak_mb() -> float:
    """The sum of the peak resident memory of every worker this process has started (0 without any): what the
    runs took beside the process's own memory."""
    return round(sum(_peaks_mb.values()), 1)


def _workers(size: int) -> ProcessPoolExecutor:
    """This process's pool of `size` workers, started fresh (`spawn`) the first time and kept for later calls."""
    if _pool.get("size") != size:
        if _pool:
            _pool["executor"].shutdown(cancel_futures=True)
        _pool.update(executor=ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn")), size=size)
    return _pool["executor"]


def _run(path: str, digest: str, policy: str | None, item):
    return os.getpid(), peak_rss_mb(), worker.run_item(digest, Path(path).read_bytes, policy, item)
