"""cnnlab.tasks: paired runs one after another or at once in worker processes, in order, with the same results."""

import numpy as np
import pytest

from cnnlab import tasks


def test_workers_compute_a_closure_in_the_items_order():
    offsets = np.arange(5) * 10  # travels with the closure, by value

    def task(i):
        return int(offsets[i]) + i

    assert list(tasks.ordered(task, range(5), workers=2)) == [0, 11, 22, 33, 44] == list(tasks.ordered(task, range(5)))
    assert 0 < tasks.workers_peak_mb() < 4096


def test_a_task_that_fails_in_a_worker_raises_here():
    def task(i):
        if i == 1:
            raise ValueError(f"bad item {i}")
        return i

    with pytest.raises(ValueError, match="bad item 1"):
        list(tasks.ordered(task, [0, 1, 2], workers=2))


def test_workers_must_be_at_least_one():
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        list(tasks.ordered(abs, [1], workers=0))


def test_the_default_workers_come_from_the_environment_the_runner_sets(monkeypatch):
    monkeypatch.delenv("CNNLAB_WORKERS", raising=False)
    assert tasks.default_workers() == 1
    monkeypatch.setenv("CNNLAB_WORKERS", "3")
    assert tasks.default_workers() == 3
    monkeypatch.setenv("CNNLAB_WORKERS", "two")
    with pytest.raises(ValueError, match="CNNLAB_WORKERS must be a whole number of at least 1, got 'two'"):
        list(tasks.ordered(abs, [1]))


def test_without_a_cluster_ray_is_not_imported():
    import os
    import subprocess
    import sys

    code = ("import sys; from cnnlab import tasks, train; assert list(tasks.ordered(abs, [-1, -2])) == [1, 2]; "
            "print('ray' in sys.modules)")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={k: v for k, v in os.environ.items() if k != "CNNLAB_CLUSTER"})
    assert found.stdout.split() == ["False"]

