"""`cluster up --real-node` and `down` as a user runs them: a real node comes and goes cleanly.

A machine runs one real node at a time, so these tests start their own cluster (in their own state
directory) only when no other real node runs here; they are marked ``solo`` and `make test` runs
them after the main suite, when its cluster is gone. Nothing may be left behind: no veth, bridge,
iptables chain, mount, cgroup or containerd task.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.cluster import realnode
from pytest_chaos.cluster.processes import find_orphans
from pytest_chaos.cluster.realnode import REAL_NODE_LABEL, RealNode
from pytest_chaos.steady.diagnosis import pod_ready

pytestmark = pytest.mark.solo

NAME = "solo-real-node"


class Cli:
    """`pytest-chaos cluster ...` in a state directory of its own."""

    def __init__(self, state_root: Path) -> None:
        self.state_root = state_root
        self.env = {**os.environ, "PYTEST_CHAOS_STATE_DIR": str(state_root)}

    @property
    def state_dir(self) -> Path:
        return self.state_root / NAME

    def run(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest_chaos", "cluster", *args, "--name", NAME],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self) -> subprocess.CompletedProcess[str]:
        """`cluster up --real-node`, which must succeed (its output is the failure message)."""
        result = self.run("up", "--real-node")
        assert result.returncode == 0, result.stderr
        return result

    def kube(self) -> Kube:
        return Kube.from_kubeconfig(self.state_dir / "kubeconfig", f"pytest-chaos-{NAME}")


def host_leftovers(state_dir: Path) -> list[str]:
    """What of a real node is still on this host, checked independently of RealNode's own list."""
    found = RealNode(state_dir).leftovers()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    found += [line for line in links.stdout.splitlines() if realnode.BRIDGE in line]
    mounts = Path("/proc/self/mounts").read_text()
    found += [line for line in mounts.splitlines() if str(state_dir) in line]
    found += [f"process {pid}" for pid in find_orphans(str(state_dir) + "/")]
    return found


@pytest.fixture
def cli() -> Iterator[Cli]:
    missing = realnode.missing_requirements()
    if missing:
        pytest.skip("this host cannot run a real node now: " + "; ".join(missing))
    # A short state directory: the node's unix sockets live under it (at most 104 characters).
    root = Path(tempfile.mkdtemp(prefix="pc-"))
    tool = Cli(root / "clusters")
    yield tool
    tool.run("down")
    assert host_leftovers(tool.state_dir) == []
    shutil.rmtree(root, ignore_errors=True)


def test_a_state_directory_too_long_for_unix_sockets_is_refused_up_front(tmp_path: Path) -> None:
    deep = Cli(tmp_path / ("x" * 60) / "clusters")
    up = deep.run("up", "--real-node")
    assert up.returncode != 0
    assert "too long for unix sockets" in up.stderr
    assert "PYTEST_CHAOS_STATE_DIR" in up.stderr
    assert host_leftovers(deep.state_dir) == []
    assert deep.run("down").returncode == 0


def demo_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            **realnode.ON_REAL_NODE,
            "containers": [
                {
                    "name": "demo",
                    "image": "localhost/pytest-chaos/demo:1.0",
                    "imagePullPolicy": "Never",
                }
            ],
        },
    }


def test_up_adds_a_ready_real_node_and_down_leaves_nothing_behind(cli: Cli) -> None:
    cli.up()
    kube = cli.kube()
    try:
        node = kube.core.read_node(realnode.NODE_NAME)
        assert node.metadata.labels[REAL_NODE_LABEL] == "true"
        assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})
        # A running pod gives the node a veth, mounts, a sandbox and a container to clean up.
        kube.core.create_namespaced_pod("default", demo_pod("web"))
        kube.wait(
            functools.partial(kube.core.list_namespaced_pod, "default"),
            lambda pods: bool(pods) and all(pod_ready(p) for p in pods),
            within=60,
            what="the demo pod to be Ready on the real node",
            label_selector="app=web",
        )
    finally:
        kube.close()
    assert host_leftovers(cli.state_dir) != []  # the check can see a running node

    down = cli.run("down")
    assert down.returncode == 0, down.stderr
    assert host_leftovers(cli.state_dir) == []
    assert not cli.state_dir.exists()


def test_a_killed_real_node_is_cleaned_up_by_the_next_up(cli: Cli) -> None:
    cli.up()
    # A crash: the node's processes die without a chance to clean anything.
    for pid in find_orphans(str(cli.state_dir / "realnode") + "/"):
        os.kill(pid, signal.SIGKILL)
    up = cli.up()
    assert "cleaning up" in up.stderr
    kube = cli.kube()
    try:
        kube.wait(
            kube.core.list_node,
            lambda nodes: any(
                n.metadata.name == realnode.NODE_NAME
                and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
                for n in nodes
            ),
            within=60,
            what="the real node to be Ready again",
        )
    finally:
        kube.close()
    assert cli.run("down").returncode == 0
    assert host_leftovers(cli.state_dir) == []


INNER_TEST = """
import json, os, signal
from pathlib import Path


def test_app_survives(kube):
    state = Path(os.environ["PYTEST_CHAOS_STATE_DIR"]) / "{name}" / "cluster.json"
    processes = json.loads(state.read_text())["processes"]
    containerd = next(p for p in processes if p["component"] == "containerd")
    os.kill(containerd["pid"], signal.SIGKILL)  # the container runtime dies mid-test
    assert False, "the app did not come back"  # what a resilience check would then say
"""


def test_a_runtime_dying_mid_test_is_an_infrastructure_error_not_a_failure(
    cli: Cli, pytester: pytest.Pytester
) -> None:
    cli.up()
    pytester.makepyfile(test_inner=INNER_TEST.format(name=NAME))
    for key, value in cli.env.items():
        pytester._monkeypatch.setenv(key, value)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chaos-cluster=local", f"--chaos-local-name={NAME}", "-rE"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the local cluster's containerd died during the test*not the system under test's*",
            "ERROR (chaos infrastructure) test_inner.py::test_app_survives*",
        ]
    )
    assert "FAILED" not in result.stdout.str()
