"""chaos.network.partition on netns real nodes, by its effect on connections.

Every netns real node runs kube-network-policies (``pytest_chaos.cluster.realnodes.policies``),
so a partition's NetworkPolicy is enforced: a new connection from outside the partition is
dropped (a connect times out; nothing refuses it), both ways. A connection opened before the
partition keeps exchanging data (the enforcer judges only the first packet of a connection):
``chaos.network.cut`` is what ends it. Revert restores new connections.

The probes connect from inside a pod's network namespace (``nsenter --net`` into its process),
with a short connect timeout: what the pod's own kernel sees. ``solo``: it starts its own
cluster with two netns real nodes.
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

from pytest_chaos.cluster.realnodes import cluster as real_nodes
from pytest_chaos.cluster.realnodes import node as real_node
from pytest_chaos.cluster.realnodes import policies
from pytest_chaos.cluster.realnodes.plan import plan
from tests.e2e.test_real_nodes import NAME, Cli, host_leftovers

pytestmark = pytest.mark.solo

HELPERS = """
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pytest_chaos import eventually

PROBE = (
    "import socket, sys\\n"
    "try:\\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5).close()\\n"
    "    print('connected')\\n"
    "except TimeoutError:\\n"
    "    print('timed out')\\n"
    "except ConnectionRefusedError:\\n"
    "    print('refused')\\n"
)


def demo(name, node, env=()):
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "nodeSelector": {"kubernetes.io/hostname": node},
                "containers": [{
                    "name": "demo", "image": "localhost/pytest-chaos/demo:1.0",
                    "imagePullPolicy": "Never",
                    "env": [{"name": k, "value": v} for k, v in env],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080},
                                       "periodSeconds": 1},
                }],
            }},
        },
    }


def ready_pod(kube, namespace, name):
    def found():
        pods = kube.core.list_namespaced_pod(namespace, label_selector=f"app={name}").items
        ready = [p for p in pods if p.status.pod_ip and p.status.container_statuses
                 and p.status.container_statuses[0].ready]
        assert ready, f"no Ready pod app={name} yet"
        return ready[0]
    return eventually(found, within=90)


def pid_of(pod):
    container = pod.status.container_statuses[0].container_id.split("://", 1)[1]
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and container in (entry / "cgroup").read_text():
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no process of container {container}")


def connect(from_pod, to_ip, port=8080):
    argv = ["nsenter", f"--net=/proc/{pid_of(from_pod)}/ns/net", "--",
            sys.executable, "-c", PROBE, to_ip, str(port)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()


def broker(pod):
    url = f"http://{pod.status.pod_ip}:8080/broker"
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.loads(response.read())
"""

INNER = (
    HELPERS
    + """

def test_partition_drops_new_connections_both_ways_established_ones_need_a_cut(
    chaos, kube, chaos_namespace, chaos_cluster
):
    assert chaos_cluster.network_policies.startswith("sigs.k8s.io/kube-network-policies ")
    ns = chaos_namespace
    kube.apps.create_namespaced_deployment(
        ns, demo("server", "real-node-0", [("BROKER_LISTEN", ":9000")]))
    server = ready_pod(kube, ns, "server")
    kube.apps.create_namespaced_deployment(
        ns, demo("client", "real-node-1", [("BROKER_ADDR", f"{server.status.pod_ip}:9000")]))
    client = ready_pod(kube, ns, "client")
    eventually(lambda: broker(client)["connected"] or pytest.fail("not yet"), within=20)
    assert connect(client, server.status.pod_ip) == "connected"
    assert connect(server, client.status.pod_ip) == "connected"

    partition = chaos.network.partition("app=server", namespace=ns, peers="app=client")

    def dropped():
        assert connect(client, server.status.pod_ip) == "timed out"
    eventually(dropped, within=10, every=0.2)
    assert connect(server, client.status.pod_ip) == "timed out"  # both ways, not refused
    lines = broker(server)["lines"]
    def flowing():
        assert broker(server)["lines"] >= lines + 4
    eventually(flowing, within=10)  # the broker's connection from before still carries data
    state = broker(client)
    assert (state["connects"], state["disconnects"]) == (1, 0), state

    cut = chaos.network.cut("app=client", namespace=ns, to=server.status.pod_ip)
    def broken():
        assert broker(client)["disconnects"] >= 1
    eventually(broken, within=15)
    cut.revert()
    def redial_dropped():  # the partition still drops the client's new connections
        state = broker(client)
        assert not state["connected"] and "timeout" in state["last_error"], state
    eventually(redial_dropped, within=15)

    partition.revert()
    def restored():
        assert connect(client, server.status.pod_ip) == "connected"
        assert connect(server, client.status.pod_ip) == "connected"
    eventually(restored, within=10, every=0.2)
    def reconnected():  # the broker client redials with a backoff of up to 5 s
        state = broker(client)
        assert state["connected"] and state["connects"] >= 2, state
    eventually(reconnected, within=30)
"""
)

KILLED = (
    HELPERS
    + """
import os, signal


def test_killed_while_partitioned(chaos, kube, chaos_namespace):
    ns = chaos_namespace
    kube.apps.create_namespaced_deployment(ns, demo("server", "real-node-0"))
    server = ready_pod(kube, ns, "server")
    kube.apps.create_namespaced_deployment(ns, demo("client", "real-node-1"))
    client = ready_pod(kube, ns, "client")
    chaos.network.partition("app=server", namespace=ns, peers="app=client")
    eventually(lambda: connect(client, server.status.pod_ip) == "timed out"
               or pytest.fail("not dropped yet"), within=10, every=0.2)
    Path(os.environ["PARTITION_MARK"]).write_text(
        f"{client.metadata.namespace} {server.status.pod_ip}")
    os.kill(os.getpid(), signal.SIGKILL)
"""
)

INNER_ARGS = (
    "-p", "no:cacheprovider", "--chaos-cluster=local", f"--chaos-local-name={NAME}",
    "--chaos-local-real-nodes=2", "--chaos-local-nodes=0", "-v",
)  # fmt: skip


def ours_on_the_host() -> list[str]:
    """The enforcer's rules in the host's own namespace (there should never be any)."""
    found = []
    if policies.rules(None).startswith("present"):
        found.append(f"nftables table inet {policies.TABLE} or chain {policies.CHAIN} on the host")
    mangle = subprocess.run(["iptables-save", "-t", "mangle"], capture_output=True, text=True)
    found += [line for line in mangle.stdout.splitlines() if policies.CHAIN in line]
    return found


def enforcers(state_dir: Path) -> list[int]:
    """Pids of the cluster's enforcer processes."""
    from pytest_chaos.cluster.processes import find_orphans

    return [
        pid
        for pid in find_orphans(str(real_nodes.base(state_dir)) + "/")  # the nodes live outside it
        if policies.PROGRAM in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    ]


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    missing = real_nodes.requirements()
    if missing:
        pytest.skip("this host cannot run real nodes now: " + "; ".join(missing))
    root = Path(tempfile.mkdtemp(prefix="pc-"))
    tool = Cli(root / "clusters")
    up = tool.run("up", "--real-nodes", "2", "--nodes", "0")
    if up.returncode != 0:
        tool.run("down")
        pytest.fail(f"cluster up --real-nodes 2 failed:\n{up.stderr}")
    yield tool
    down = tool.run("down")
    assert down.returncode == 0, down.stderr
    assert host_leftovers(tool.state_dir) == []
    assert enforcers(tool.state_dir) == []
    assert ours_on_the_host() == []
    shutil.rmtree(root, ignore_errors=True)


def test_every_node_runs_an_enforcer_bound_to_its_queue(cli: Cli) -> None:
    assert len(enforcers(cli.state_dir)) == 2
    for node in plan(2).nodes:
        assert policies.rules(node.netns) == "present bound", node.name
    assert ours_on_the_host() == []


def test_partition_by_effect_on_real_nodes(
    cli: Cli, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_inner=INNER)
    for key, value in cli.env.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest_subprocess(*INNER_ARGS)
    result.assert_outcomes(passed=1)


def test_kill_9_mid_partition_then_cleanup_restores_connections(
    cli: Cli, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mark = tmp_path / "partitioned"
    pytester.makepyfile(test_killed=KILLED)
    for key, value in {**cli.env, "PARTITION_MARK": str(mark)}.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest_subprocess(*INNER_ARGS)
    assert result.ret != 0, result.stdout.str()
    assert mark.exists(), result.stdout.str()
    namespace, _ = mark.read_text().split()
    kube = cli.kube()
    try:
        assert kube.networking.list_namespaced_network_policy(namespace).items  # left behind
        cleanup = subprocess.run(
            [sys.executable, "-m", "pytest_chaos", "cleanup", "--local", NAME],
            env=cli.env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
        policies_left = kube.networking.list_network_policy_for_all_namespaces().items
        assert [p.metadata.name for p in policies_left] == []
    finally:
        kube.close()


def test_a_killed_enforcers_rules_are_removed_by_cleanup(cli: Cli) -> None:
    node = plan(2).nodes[0]
    (pid,) = [
        p for p in enforcers(cli.state_dir) if node.name in Path(f"/proc/{p}/cmdline").read_text()
    ]
    os.kill(pid, signal.SIGKILL)
    assert policies.rules(node.netns).startswith("present")  # a kill -9 leaves them
    assert real_node.layout(cli.state_dir, node).base.is_dir()
    assert policies.remove_rules([node]) == []
    assert policies.rules(node.netns).startswith("absent")
    assert policies.remove_rules([node]) == []  # idempotent
