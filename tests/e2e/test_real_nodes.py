"""`cluster up --real-nodes 3 --nodes 0`: three real nodes, each in its own network namespace.

What a user of kind would expect: three Ready, untainted nodes in zones a, b, c; a plain
Deployment (no nodeSelector, no toleration) spreads over them and serves through its Service
from the host; a pod on every node resolves that Service by name. And `down` leaves nothing:
no namespace, veth, bridge, route, firewall rule, mount, cgroup or process.

One cluster with netns real nodes runs per machine (they route the service range), so these
tests are ``solo``; they start their own cluster in a state directory of their own.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.cluster.processes import find_orphans
from pytest_chaos.cluster.realnodes import cluster as real_nodes
from pytest_chaos.cluster.realnodes.plan import REAL_NODE_LABEL, ZONE_LABEL, plan
from pytest_chaos.kube.deadline import Deadline
from pytest_chaos.steady.diagnosis import pod_ready

pytestmark = pytest.mark.solo

NAME = "real-nodes"
DEMO_IMAGE = "localhost/pytest-chaos/demo:1.0"
TOOLBOX_IMAGE = "localhost/pytest-chaos/toolbox:1.0"


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

    def kube(self) -> Kube:
        return Kube.from_kubeconfig(self.state_dir / "kubeconfig", f"pytest-chaos-{NAME}")


def host_leftovers(state_dir: Path) -> list[str]:
    """What of the real nodes is still on this host, checked apart from the package's own list."""
    the_plan = plan(3)
    found = real_nodes.leftovers(state_dir)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    found += [line for line in netns.stdout.splitlines() if line.startswith("pcx0n")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    found += [line for line in links.stdout.splitlines() if "pcx0" in line]
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True)
    found += [line for line in routes.stdout.splitlines() if the_plan.bridge in line]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True)
    found += [line for line in rules.stdout.splitlines() if the_plan.tag in line]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob("*/pcx0")]
    mounts = Path("/proc/self/mounts").read_text()
    nodes_dir = real_nodes.base(state_dir)  # short, outside the state directory
    for where in (state_dir, nodes_dir):
        found += [line for line in mounts.splitlines() if str(where) in line]
        found += [f"process {pid}" for pid in find_orphans(str(where) + "/")]
    if nodes_dir.exists():
        found.append(f"directory {nodes_dir}")
    return found


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    missing = real_nodes.requirements()
    if missing:
        pytest.skip("this host cannot run real nodes now: " + "; ".join(missing))
    root = Path(tempfile.mkdtemp(prefix="pc-"))  # short: unix sockets live under it
    tool = Cli(root / "clusters")
    up = tool.run("up", "--real-nodes", "3", "--nodes", "0")
    if up.returncode != 0:
        tool.run("down")
        pytest.fail(f"cluster up --real-nodes 3 failed:\n{up.stderr}")
    yield tool
    down = tool.run("down")
    assert down.returncode == 0, down.stderr
    assert host_leftovers(tool.state_dir) == []
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def kube(cli: Cli) -> Iterator[Kube]:
    client = cli.kube()
    yield client
    client.close()


def plain_deployment(name: str, replicas: int) -> dict[str, Any]:
    """The demo app as a user writes it: no nodeSelector, no toleration, no spread constraint."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "demo",
                            "image": DEMO_IMAGE,
                            "imagePullPolicy": "Never",
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": 8080},
                                "periodSeconds": 1,
                            },
                        }
                    ]
                },
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def ready_pods(kube: Kube, namespace: str, selector: str, count: int) -> list[Any]:
    return kube.wait(
        functools.partial(kube.core.list_namespaced_pod, namespace),
        lambda pods: len(pods) == count and all(pod_ready(p) for p in pods),
        within=90,
        what=f"{count} Ready pods {selector}",
        label_selector=selector,
    )


def test_three_ready_untainted_nodes_in_zones_a_b_c(kube: Kube) -> None:
    nodes = {n.metadata.name: n for n in kube.core.list_node().items}
    assert sorted(str(name) for name in nodes) == ["real-node-0", "real-node-1", "real-node-2"]
    for name, node in nodes.items():
        assert node.metadata.labels[REAL_NODE_LABEL] == "true", name
        assert not node.spec.taints, (name, node.spec.taints)
        assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready[0].status == "True", (name, ready)
    assert sorted(n.metadata.labels[ZONE_LABEL] for n in nodes.values()) == ["a", "b", "c"]
    addresses = {n.status.addresses[0].address for n in nodes.values()}
    assert addresses == {"10.160.0.10", "10.160.0.11", "10.160.0.12"}  # one IP per namespace


def test_a_plain_deployment_spreads_over_the_nodes_and_serves_through_its_service(
    kube: Kube,
) -> None:
    kube.apps.create_namespaced_deployment("default", plain_deployment("web", 3))
    kube.core.create_namespaced_service("default", service("web"))
    pods = ready_pods(kube, "default", "app=web", 3)
    assert sorted(p.spec.node_name for p in pods) == ["real-node-0", "real-node-1", "real-node-2"]
    for pod in pods:  # pod IPs from each node's pod CIDR, reachable from the host
        with urllib.request.urlopen(f"http://{pod.status.pod_ip}:8080/healthz", timeout=5) as r:
            assert r.status == 200
    cluster_ip = kube.core.read_namespaced_service("web", "default").spec.cluster_ip
    answers: list[int] = []

    def served() -> bool:
        try:
            with urllib.request.urlopen(f"http://{cluster_ip}/", timeout=3) as response:
                answers.append(response.status)
        except OSError:
            answers.append(0)
        return answers[-3:] == [200, 200, 200]

    assert Deadline(30).poll(served, every=0.2), answers


def test_a_pod_on_every_node_resolves_the_service_by_name(kube: Kube) -> None:
    ready_pods(kube, "default", "app=web", 3)  # from the test above, or its own
    script = (
        "for i in 1 2 3 4 5; do "
        "curl -s -m 3 http://web.default.svc.cluster.local/healthz && echo; "
        "curl -s -m 3 http://web/healthz && echo; done"
    )
    for index in range(3):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"client-{index}", "labels": {"app": "client"}},
            "spec": {
                "nodeName": f"real-node-{index}",
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "client",
                        "image": TOOLBOX_IMAGE,
                        "imagePullPolicy": "Never",
                        "command": ["sh", "-c", script],
                    }
                ],
            },
        }
        kube.core.create_namespaced_pod("default", pod)
    finished = kube.wait(
        functools.partial(kube.core.list_namespaced_pod, "default"),
        lambda pods: len(pods) == 3
        and all(p.status.phase in ("Succeeded", "Failed") for p in pods),
        within=90,
        what="the 3 client pods to finish",
        label_selector="app=client",
    )
    for pod in finished:
        name = pod.metadata.name
        log = kube.core.read_namespaced_pod_log(name, "default")
        assert pod.status.phase == "Succeeded", (name, log)
        assert log.split() == ["OK"] * 10, (name, log)


def test_node_runtimes_list_every_nodes_containerd_and_the_gateway(cli: Cli) -> None:
    from pytest_chaos.cluster import images
    from pytest_chaos.cluster.node_runtimes import node_runtimes

    runtimes = node_runtimes(cli.state_dir)
    assert [r.name for r in runtimes] == ["real-node-0", "real-node-1", "real-node-2"]
    for runtime in runtimes:
        assert runtime.host_address == "10.160.0.1"
        assert runtime.registry_hosts_dir.is_dir()
        config = (runtime.containerd_socket.parent / "config.toml").read_text()
        assert f'config_path = "{runtime.registry_hosts_dir}"' in config
        listed = images.ctr(runtime.containerd_socket, "images", "list", "--quiet").split()
        assert DEMO_IMAGE in listed
