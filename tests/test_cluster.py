"""cnnlab.cluster: paired runs as tasks on a Ray cluster of two nodes on this machine (`make test-cluster`;
skipped where Ray is not installed, as in `make test`)."""

import numpy as np
import pytest

ray_cluster_utils = pytest.importorskip("ray.cluster_utils", reason="the cluster extra: pip install -e '.[cluster]'")

import keras  # noqa: E402

from cnnlab import cluster, data, train  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    """A Ray head and a second node, one CPU each, as separate processes on this machine."""
    import ray

    nodes = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def test_runs_on_the_cluster_give_the_numbers_of_the_runs_here_and_use_both_nodes(two_nodes, monkeypatch):
    with monkeypatch.context() as mp:
        mp.delenv("CNNLAB_DATA", raising=False)
        small = data.prepare(n_train=512, seed=0)
    probe = (small.x_train[:100], small.y_train[:100])
    weights = dict(describe=lambda model, run: {"w": [w.copy() for w in model.get_weights()]})

    def net(seed, width=4):  # defined here: a task carries its test's functions by value, not by module name
        return train.compile_sgd(keras.Sequential([
            keras.Input((28, 28, 1)), keras.layers.Conv2D(width, 3), keras.layers.BatchNormalization(),
            keras.layers.ReLU(), keras.layers.Dropout(0.3, seed=seed), keras.layers.Flatten(),
            keras.layers.Dense(10)]), 0.05)

    builds = {"a": net, "b": lambda seed: net(seed, width=5)}
    here = train.run_steps(builds, [0, 1], small, 40, 20, probe, 64, **weights)
    monkeypatch.setenv(cluster.CLUSTER_ENV, two_nodes.address)
    there = train.run_steps(builds, [0, 1], small, 40, 20, probe, 64, **weights)
    assert [(r["config"], r["seed"]) for r in there] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    for one, other in zip(here, there, strict=True):
        assert one["curve"] == other["curve"]
        assert all(np.array_equal(a, b) for a, b in zip(one["w"], other["w"], strict=True))
    record = cluster.record()
    assert record["address"] == two_nodes.address and len(record["nodes"]) == 2
    assert [t["item"] for t in record["tasks"]] == ["('a', 0)", "('a', 1)", "('b', 0)", "('b', 1)"]
    assert len({t["node"] for t in record["tasks"]}) == 2  # both nodes ran tasks


@pytest.mark.parametrize("experiment", ["02", "04", "08"])
def test_a_notebook_run_through_the_cluster_records_it_and_gives_the_numbers_of_a_run_here(two_nodes, tmp_path,
                                                                                            monkeypatch, experiment):
    import json

    import pandas as pd

    from cnnlab import paths
    from cnnlab.suite import params, runner

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    found = {}
    for where in ("here", "cluster"):
        monkeypatch.setattr(paths, "RUNS", tmp_path / where)
        outcome = runner.run(params.find(experiment), "smoke", force=True,
                             cluster=two_nodes.address if where == "cluster" else None)
        found[where] = (json.loads((outcome.run_dir / "results.json").read_text()), outcome.run_dir)
    (here, here_dir), (there, there_dir) = found["here"], found["cluster"]
    assert here["cluster"] is None and there["cluster"]["address"] == two_nodes.address
    assert len({t["node"] for t in there["cluster"]["tasks"]}) == 2  # both nodes ran runs
    assert [(c["id"], c["measured"], c["verdict"]) for c in here["claims"]] == \
           [(c["id"], c["measured"], c["verdict"]) for c in there["claims"]]
    for name, table in here["tables"].items():
        ours, theirs = pd.read_csv(here_dir / table), pd.read_csv(there_dir / there["tables"][name])
        # wall times differ, and 08's second run loads the source nets the first stored (`reused`), by their key
        other = [c for c in ours.columns if c.startswith("s_per") or c.endswith("epoch_s") or c == "reused"]
        assert ours.drop(columns=other).equals(theirs.drop(columns=other)), name


def test_a_node_that_dies_mid_run_has_its_task_run_again_elsewhere_and_the_cluster_stops_whole(tmp_path):
    import threading
    import time

    from cnnlab import tasks

    nodes = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    head = nodes.head_node.node_id
    pids = [p.process.pid for node in (nodes.head_node, second) for kind in node.all_processes.values() for p in kind]
    started = tmp_path / "started"
    started.mkdir()

    def task(i):  # seeded, so a run again elsewhere gives the same value
        import ray

        (started / f"{i}-{ray.get_runtime_context().get_node_id()}").touch()
        time.sleep(3)
        return float(np.random.default_rng(i).normal(size=1000).sum())

    def kill_the_second_node_once_busy():
        while not any(p.name.endswith(second.node_id) for p in started.iterdir()):
            time.sleep(0.1)
        nodes.remove_node(second)

    killer = threading.Thread(target=kill_the_second_node_once_busy)
    killer.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(cluster.CLUSTER_ENV, nodes.address)
            found = list(tasks.ordered(task, range(4)))
    finally:
        killer.join()
        import ray

        ray.shutdown()
        nodes.shutdown()
    assert found == [task_value(i) for i in range(4)]  # complete and unchanged
    killed = {p.name.split("-")[0] for p in started.iterdir() if p.name.endswith(second.node_id)}
    assert killed and all((started / f"{i}-{head}").exists() for i in killed)  # run again
    time.sleep(1)
    assert [pid for pid in pids if _alive(pid)] == []  # every node's processes stopped


def task_value(i):
    return float(np.random.default_rng(i).normal(size=1000).sum())


def _alive(pid):
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_node_that_finds_other_data_is_refused_in_one_line_naming_it(tmp_path, monkeypatch):
    from cnnlab import tasks

    nodes = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))  # the second node's processes find no Fashion-MNIST there
        second = nodes.add_node(num_cpus=1)
        monkeypatch.delenv("CNNLAB_DATA")
        nodes.wait_for_nodes()
        monkeypatch.setenv(cluster.CLUSTER_ENV, nodes.address)
        with pytest.raises(ValueError) as refused:
            list(tasks.ordered(abs, [1, 2]))
    finally:
        import ray

        ray.shutdown()
        nodes.shutdown()
    line = str(refused.value)
    assert "\n" not in line and line.startswith(f"cluster node {second.node_ip_address} ({second.node_id[:12]}) "
                                                "differs from this machine in dataset fashion_mnist (unreadable: ")
