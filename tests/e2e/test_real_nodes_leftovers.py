"""Real nodes leave nothing behind: not after `down`, nor after a `kill -9` of whoever started
them, nor after one node's kubelet was killed; a dead kubelet is the infrastructure's failure.

``solo``: one cluster with netns real nodes per machine; each test starts its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos.cluster.local import LocalCluster
from pytest_chaos.cluster.processes import find_orphans
from pytest_chaos.cluster.realnodes import cluster as real_nodes
from pytest_chaos.cluster.realnodes.node import layout
from pytest_chaos.cluster.realnodes.plan import plan
from pytest_chaos.kube.deadline import Deadline
from tests.e2e.test_real_nodes import NAME, Cli, host_leftovers

pytestmark = pytest.mark.solo


@pytest.fixture
def cli() -> Iterator[Cli]:
    missing = real_nodes.requirements()
    if missing:
        pytest.skip("this host cannot run real nodes now: " + "; ".join(missing))
    root = Path(tempfile.mkdtemp(prefix="pc-"))
    tool = Cli(root / ("a-state-directory-longer-than-unix-sockets-allow-" * 2) / "clusters")
    yield tool
    tool.run("down")
    assert host_leftovers(tool.state_dir) == []
    shutil.rmtree(root, ignore_errors=True)


def kubelets(state_dir: Path, node: str) -> list[int]:
    (planned,) = (n for n in plan(3).nodes if n.name == node)
    return find_orphans(str(layout(state_dir, planned).base / "kubelet.yaml"))


def test_down_after_a_kill_9_of_up_midway_leaves_nothing(cli: Cli) -> None:
    up = subprocess.Popen(
        [sys.executable, "-m", "pytest_chaos", "cluster", "up", "--name", NAME,
         "--real-nodes", "3", "--nodes", "0"],
        env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Kill it once the second node runs a kubelet: namespaces, veths, routes, rules,
        # cgroups, mounts and processes exist, and the cluster state does not list them yet.
        assert Deadline(120).poll(lambda: bool(kubelets(cli.state_dir, "real-node-1")), every=0.1)
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait()
    assert host_leftovers(cli.state_dir) != []  # the check sees what the killed run left
    down = cli.run("down")
    assert down.returncode == 0, down.stderr
    assert host_leftovers(cli.state_dir) == []


def test_a_killed_kubelet_is_reported_dead_and_down_still_leaves_nothing(cli: Cli) -> None:
    up = cli.run("up", "--real-nodes", "2", "--nodes", "0")
    assert up.returncode == 0, up.stderr
    cluster = LocalCluster(NAME, root=cli.state_root)
    assert cluster.dead_components() == []
    (victim,) = kubelets(cli.state_dir, "real-node-1")
    os.kill(victim, signal.SIGKILL)
    assert Deadline(10).poll(
        lambda: cluster.dead_components() == ["kubelet (real-node-1)"], every=0.1
    )
    status = cli.run("status")
    assert "kubelet" in status.stdout + status.stderr
    down = cli.run("down")
    assert down.returncode == 0, down.stderr
    assert host_leftovers(cli.state_dir) == []


def test_a_cluster_killed_while_running_is_cleaned_by_the_next_up(cli: Cli) -> None:
    up = cli.run("up", "--real-nodes", "1", "--nodes", "0")
    assert up.returncode == 0, up.stderr
    everything = find_orphans(str(cli.state_dir) + "/") + find_orphans(
        str(real_nodes.base(cli.state_dir)) + "/"
    )
    for pid in everything:  # all at once, as an OOM kill would
        os.kill(pid, signal.SIGKILL)
    again = cli.run("up", "--real-nodes", "1", "--nodes", "0")
    assert again.returncode == 0, again.stderr
    assert "cleaning up" in again.stderr
    down = cli.run("down")
    assert down.returncode == 0, down.stderr
    assert host_leftovers(cli.state_dir) == []


def broken_kubelet_cache(into: Path, broken_node: str) -> Path:
    """The binary cache, but the kubelet of broken_node exits at once saying why."""
    from pytest_chaos.cluster.binaries import cache_root

    real = cache_root()
    into.mkdir(parents=True)
    for entry in real.iterdir():
        if not (entry.is_dir() and (entry / "kubelet").is_file()):
            (into / entry.name).symlink_to(entry)
            continue
        copy = into / entry.name
        copy.mkdir()
        for item in entry.iterdir():
            if item.name != "kubelet":
                (copy / item.name).symlink_to(item)
        wrapper = copy / "kubelet"
        wrapper.write_text(
            "#!/bin/sh\n"
            f'case "$*" in *--hostname-override={broken_node}\\ *|*--hostname-override='
            f'{broken_node}) echo "kubelet: this node is broken on purpose"; exit 3;; esac\n'
            f'exec {entry / "kubelet"} "$@"\n'
        )
        wrapper.chmod(0o755)
    return into


def test_a_node_that_fails_to_start_is_torn_down_with_the_rest_and_its_log_shown(
    cli: Cli,
) -> None:
    cache = broken_kubelet_cache(cli.state_root.parent / "cache", "real-node-1")
    broken = Cli(cli.state_root)
    broken.env = {**cli.env, "PYTEST_CHAOS_CACHE_DIR": str(cache)}
    up = broken.run("up", "--real-nodes", "3", "--nodes", "0")
    assert up.returncode == 1, up.stderr
    assert "this node is broken on purpose" in up.stderr
    assert "real-node-1/logs/kubelet.log" in up.stderr
    assert host_leftovers(cli.state_dir) == []  # real-node-0 and -2 went too
    assert not cli.state_dir.exists()
