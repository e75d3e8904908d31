"""What runs inside a worker, of this machine's pool (`cnnlab.tasks`) or of a Ray cluster (`cnnlab.cluster`):
a call's task, unpickled once per worker, under the Keras dtype policy of the process that sent it."""

from __future__ import annotations

import sys
from collections.abc import Callable

_tasks: dict[str, Callable] = {}  # in a worker: the task it has read, by digest


def dtype_policy() -> str | None:
    """The Keras dtype policy layers are built under here, or None where it is Keras's default (Keras not
    imported, or its `floatx`): a worker whose task builds no layers then never imports Keras."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    name = keras.config.dtype_policy().name
    return None if name == keras.config.floatx() else name


def run_item(digest: str, payload: Callable[[], bytes], policy: str | None, item):
    """In a worker (a process of this machine's pool, or a cluster's): `task(item)` of the task whose pickle
    `payload()` gives, unpickled once per worker and call (a configuration's traced model serves its further
    seeds; an earlier call's task and the models it traced are let go), under the Keras dtype policy `policy`."""
    if digest not in _tasks:
        import cloudpickle

        _tasks.clear()
        _tasks[digest] = cloudpickle.loads(payload())
    if policy is not None:
        import keras

        keras.config.set_dtype_policy(policy)
    elif "keras" in sys.modules:  # back to the default after an earlier call's policy
        keras = sys.modules["keras"]
        keras.config.set_dtype_policy(keras.config.floatx())
    return _tasks[digest](item)
