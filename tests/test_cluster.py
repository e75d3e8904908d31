"""cnnlab.cluster: paired runs as tasks on a Ray cluster of two nodes on this machine (`make test-cluster`;
skipped where Ray is not installed, as in `make test`)."""

import threading
import time

import numpy as np
import pytest

ray_cluster_utils = pytest.importorskip("ray.cluster_utils", reason="the cluster extra: pip install -e '.[cluster]'")

import keras  # noqa: E402
import ray  # noqa: E402
from conftest import TOY_YAML, use_workspace, write_toy  # noqa: E402

from cnnlab import cluster, data, train  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    """A Ray head and a second node, one CPU each, as separate processes on this machine."""
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


def smoke_run(experiment, root, cluster):
    """Run `experiment`'s smoke profile into `root` (its own trained-net store) through `cluster`, read as the
    `smoke_results` fixture reads the runs here: results.json with its `run_dir`."""
    import json

    from cnnlab import paths
    from cnnlab.suite import params, runner

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_CACHE", str(root / "cache"))
        mp.setattr(paths, "RUNS", root / "runs")
        outcome = runner.run(params.find(experiment), "smoke", force=True, cluster=cluster)
    return dict(json.loads((outcome.run_dir / "results.json").read_text()), run_dir=outcome.run_dir)


def assert_same_numbers(here, there):
    """The same claims, verdicts and tables (but wall times, and 08's source nets reused from the store)."""
    import pandas as pd

    assert [(c["id"], c["measured"], c["verdict"]) for c in here["claims"]] == \
           [(c["id"], c["measured"], c["verdict"]) for c in there["claims"]]
    for name, table in here["tables"].items():
        one, other = pd.read_csv(here["run_dir"] / table), pd.read_csv(there["run_dir"] / there["tables"][name])
        timing = [c for c in one.columns if c.startswith("s_per") or c.endswith("epoch_s") or c == "reused"]
        assert one.drop(columns=timing).equals(other.drop(columns=timing)), name


@pytest.mark.parametrize("experiment", ["02_init_variance", "04_vgg_depth", "08_transfer_learning"])
def test_a_notebook_run_through_the_cluster_records_it_and_gives_the_numbers_of_a_run_here(two_nodes, smoke_results,
                                                                                            tmp_path, experiment):
    there = smoke_run(experiment, tmp_path, two_nodes.address)
    assert smoke_results[experiment]["cluster"] is None and there["cluster"]["address"] == two_nodes.address
    assert len({t["node"] for t in there["cluster"]["tasks"]}) == 2  # both nodes ran runs
    assert_same_numbers(smoke_results[experiment], there)


def test_a_notebook_run_whose_second_node_dies_mid_task_is_complete_with_the_numbers_of_a_run_here(smoke_results,
                                                                                                  tmp_path):
    import psutil

    nodes = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    head = nodes.head_node.node_id
    raylet = psutil.Process(second.all_processes["raylet"][0].process.pid)
    killed_mid_task, run_over = [], threading.Event()

    def kill_the_second_node_mid_task():  # once one of its workers runs a task (Ray titles it by the function)
        while not run_over.is_set():
            if "ray::_run_remote" in _titles(raylet):
                killed_mid_task.append(True)
                nodes.remove_node(second)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_the_second_node_mid_task)
    killer.start()
    try:
        there = smoke_run("02_init_variance", tmp_path, nodes.address)
    finally:
        run_over.set()
        killer.join()
        ray.shutdown()
        nodes.shutdown()
    assert killed_mid_task == [True]
    record = there["cluster"]
    assert [node["alive"] for node in record["nodes"] if node["node"] == second.node_id] == [False]
    assert {t["node"] for t in record["tasks"]} == {head}  # every result came from the head
    assert_same_numbers(smoke_results["02_init_variance"], there)  # complete and unchanged


def _titles(process) -> list[str]:
    """The process titles of `process`'s descendants (a Ray worker's names the task it runs)."""
    import psutil

    titles = []
    try:
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        return titles
    for child in children:
        try:
            titles += child.cmdline()[:1]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return titles


# a toy notebook whose four seeded tasks go to the cluster, each leaving a file when it starts
GONE_BODY = """import pathlib, time
from cnnlab import tasks
from cnnlab.rules import exact
from cnnlab.suite.results import Record
rec = Record("99_toy", "toy", output_dir)
def task(i):
    (pathlib.Path(output_dir).parent / f"started-{i}").touch()
    time.sleep(sleep_s)
    return i * n
total = sum(tasks.ordered(task, range(4)))
rec.claim("toy.n", "n is three", 3, n, "items", exact(3), source="test")
rec.save()
"""


def test_a_cluster_that_goes_away_mid_run_fails_it_in_one_line_and_leaves_the_previous_results(tmp_path,
                                                                                              monkeypatch):
    from cnnlab.suite import params, runner

    write_toy(tmp_path, GONE_BODY, TOY_YAML)
    use_workspace(monkeypatch, tmp_path)
    monkeypatch.setattr(runner.paths, "package_digest", lambda *args: "fixed")
    runner.run(params.find("99"), "quick", {"sleep_s": 0.0})  # the previous results, here
    folder = tmp_path / "results" / "runs" / "99_toy" / "quick"
    previous = (folder / "results.json").read_bytes()
    nodes = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes.wait_for_nodes()
    where = nodes.address  # (None once it is shut down)
    pids = [p.process.pid for kind in nodes.head_node.all_processes.values() for p in kind]
    started = folder.parent  # where the tasks leave their files

    def stop_the_cluster_once_a_task_runs():
        while not list(started.glob("started-*")):
            time.sleep(0.1)
        nodes.shutdown()

    for stale in started.glob("started-*"):
        stale.unlink()
    killer = threading.Thread(target=stop_the_cluster_once_a_task_runs)
    killer.start()
    try:
        with pytest.raises(runner.RunFailed) as failed:
            runner.run(params.find("99"), "quick", {"sleep_s": 5.0}, cluster=where)
    finally:
        killer.join()
        ray.shutdown()
    line = str(failed.value)  # the kernel, a Ray driver, raised ClusterLost or died with its node
    assert "\n" not in line and line.startswith("99_toy: ")
    assert f"the Ray cluster at {where} went away mid-run" in line
    assert (folder / "results.json").read_bytes() == previous  # untouched
    assert list(folder.parent.glob(".quick.partial-*")) == []
    time.sleep(1)
    assert [pid for pid in pids if _alive(pid)] == []


def test_a_node_that_dies_mid_run_has_its_task_run_again_elsewhere_and_the_cluster_stops_whole(tmp_path):
    from cnnlab import tasks

    nodes = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    head = nodes.head_node.node_id
    pids = [p.process.pid for node in (nodes.head_node, second) for kind in node.all_processes.values() for p in kind]
    started = tmp_path / "started"
    started.mkdir()

    def task(i):  # seeded, so a run again elsewhere gives the same value
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
        ray.shutdown()
        nodes.shutdown()
    line = str(refused.value)
    assert "\n" not in line and line.startswith(f"cluster node {second.node_ip_address} ({second.node_id[:12]}) "
                                                "differs from this machine in dataset fashion_mnist (unreadable: ")
