"""Paired runs as tasks: each (configuration, seed) run builds, trains and measures from its seed alone, so the
runs can go one after another in this process or several at once in worker processes (`ordered`), with the same
numbers either way. A worker keeps TensorFlow's usual threads (the floating-point path of a run alone: one
small net's steps leave much of a core idle, which a second run fills) and trains its share of the runs in the
order given, so that a configuration's model is traced once per worker. Workers are started fresh (`spawn`:
TensorFlow's threads do not survive a fork) with the parent's Keras dtype policy; the task travels to them by
value (`cloudpickle`: the notebook's closures included). How many workers a kernel uses, `cnnlab run --workers`
passes to it in `CNNLAB_WORKERS` (1 without it: a notebook opened by hand trains one run after another)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

from cnnlab import cluster
from cnnlab.memory import peak_rss_mb

WORKERS_ENV = "CNNLAB_WORKERS"
_task: Callable | None = None  # a worker's task, set by _start_worker
_peaks_mb: dict[int, float] = {}  # worker pid -> its peak resident memory, as last reported


def ordered(task: Callable, items: Iterable, workers: int | None = None) -> Iterator:
    """`task(item)` for every item, yielded in the items' order; with `workers` > 1 (default: `default_workers`)
    computed by that many worker processes at once, each result yielded as soon as those before it are in; on
    the Ray cluster the runner named (`cnnlab.cluster`), as its tasks. A task's exception is raised here; the
    workers still running are stopped."""
    items = list(items)
    if cluster.address() is not None:
        yield from cluster.ordered(task, items, cluster.address())
        return
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers == 1 or len(items) < 2:
        yield from map(task, items)
        return
    import cloudpickle
    import keras

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=context, initializer=_start_worker,
                             initargs=(cloudpickle.dumps(task), keras.config.dtype_policy().name)) as pool:
        futures = [pool.submit(_run, item) for item in items]
        try:
            for future in futures:
                pid, peak, result = future.result()
                _peaks_mb[pid] = peak
                yield result
        finally:
            for future in futures:
                future.cancel()


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


def _start_worker(task: bytes, dtype_policy: str) -> None:
    import cloudpickle
    import keras

    global _task
    keras.config.set_dtype_policy(dtype_policy)
    _task = cloudpickle.loads(task)


def _run(item):
    result = _task(item)
    return os.getpid(), peak_rss_mb(), result
