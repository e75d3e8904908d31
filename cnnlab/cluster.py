"""Paired runs as tasks on a Ray cluster (`cnnlab run --cluster ADDRESS`, which the kernel reads from
`CNNLAB_CLUSTER`): each (configuration, seed) run is a Ray task, gathered in the order given. The cnnlab source
travels with the tasks (Ray's `runtime_env` `py_modules`), so every node runs the code the run was keyed on,
and the floating-point settings of this process (`backend.NUMERIC_ENV`) go with them; before the first task,
every node's code digest and dataset fingerprints are compared with this process's (`check_nodes`). A task whose
node dies is run again elsewhere (Ray's retries); a cluster that goes away fails the run with `ClusterLost`.
Without an address Ray is not imported."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import time
from collections.abc import Callable, Iterator

from cnnlab import paths

CLUSTER_ENV = "CNNLAB_CLUSTER"
RETRIES = 3  # a task whose node died runs again elsewhere, up to this many times

_placements: list[dict] = []  # per task gathered: the item, its node, its seconds
_connected: list[str] = []  # the address this process's Ray driver is connected to


class ClusterLost(RuntimeError):
    """The cluster stopped answering while a run's tasks were out (its head, or this machine's node, went away)."""


def address() -> str | None:
    """The cluster this process's runs go to (`CNNLAB_CLUSTER`), or None."""
    return os.environ.get(CLUSTER_ENV) or None


def check_address(where: str, timeout_s: float = 3.0) -> None:
    """ValueError, in one line, unless Ray is installed and something answers at `where` (host:port of a
    cluster's head; "auto" and ray:// addresses are left to Ray): said before any kernel starts."""
    if importlib.util.find_spec("ray") is None:
        raise ValueError(f"--cluster {where}: Ray is not installed here (pip install -e '.[cluster]')")
    if where == "auto" or "://" in where:
        return
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--cluster {where}: not host:port (the head's address, as `ray start --head` prints it)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ValueError(f"--cluster {where}: no Ray head answers there ({err.strerror or err})") from None


def ordered(task: Callable, items: list, where: str) -> Iterator:
    """`task(item)` for every item as a Ray task on the cluster at `where`, yielded in the items' order."""
    import cloudpickle
    import ray

    from cnnlab.backend import NUMERIC_ENV
    from cnnlab.worker import dtype_policy

    if _connected != [where]:
        if ray.is_initialized():
            ray.shutdown()
        env = {name: os.environ[name] for name in NUMERIC_ENV if name in os.environ}
        ray.init(address=where, runtime_env={"py_modules": [str(paths.PACKAGE)], "env_vars": env},
                 log_to_driver=False, logging_level="ERROR")
        _connected[:] = [where]
        check_nodes()
    gpus = any(node["Resources"].get("GPU") for node in ray.nodes() if node["Alive"])
    remote = ray.remote(_run_remote).options(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
                                             max_retries=RETRIES)
    payload = cloudpickle.dumps(task)
    shared = ray.put(payload)
    digest = hashlib.sha256(payload).hexdigest()
    refs = [remote.remote(shared, digest, dtype_policy(), item) for item in items]
    for item, ref in zip(items, refs):
        try:
            node, seconds, result = ray.get(ref)
        except ray.exceptions.RayTaskError:
            raise  # the task's own exception, as a run here raises it
        except ray.exceptions.RayError as err:
            _connected.clear()
            reason = " ".join(str(err).split())[:160]
            raise ClusterLost(f"the Ray cluster at {where} went away mid-run, at task {item!r}: "
                              f"{type(err).__name__} ({reason})") from None
        _placements.append(dict(item=repr(item), node=node, seconds=round(seconds, 1)))
        yield result


def check_nodes() -> None:
    """ValueError, in one line naming the node and what differs, unless every live node of the cluster this
    process is connected to imports the same cnnlab source and finds the same offline datasets as this process."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ours = _node_facts()
    nodes = [node for node in ray.nodes() if node["Alive"]]
    facts = ray.get([ray.remote(_node_facts).options(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote()
        for node in nodes])
    for node, theirs in zip(nodes, facts):
        differs = [what for what in ours if theirs[what] != ours[what]]
        if differs:
            raise ValueError(f"cluster node {node['NodeManagerAddress']} ({node['NodeID'][:12]}) differs from this "
                             "machine in " + ", ".join(f"{what} ({theirs[what]} there, {ours[what]} here)"
                                                        for what in differs))


def _node_facts() -> dict:
    """What decides a run besides its parameters, as this process finds it: the cnnlab source's digest and each
    offline dataset's fingerprint (or why it cannot be read)."""
    from cnnlab import data

    facts = {"cnnlab source": paths.package_digest()[:12]}
    for name in data.offline_datasets():
        try:
            facts[f"dataset {name}"] = data.fingerprint(name)
        except data.DataError as err:
            facts[f"dataset {name}"] = f"unreadable: {err}"
    return facts


def record() -> dict | None:
    """What the cluster did for this process's runs: its address, its nodes and devices, and which node ran
    each task for how long (None when no task went to a cluster)."""
    if not _placements:
        return None
    import ray

    nodes = [dict(node=n["NodeID"], host=n["NodeManagerAddress"], alive=n["Alive"],
                  cpus=n["Resources"].get("CPU", 0), gpus=n["Resources"].get("GPU", 0)) for n in ray.nodes()]
    return dict(address=address(), nodes=nodes, tasks=list(_placements))


def _run_remote(payload: bytes, digest: str, policy: str | None, item):
    import ray

    from cnnlab.worker import run_item

    began = time.monotonic()
    result = run_item(digest, lambda: payload, policy, item)
    return ray.get_runtime_context().get_node_id(), time.monotonic() - began, result
