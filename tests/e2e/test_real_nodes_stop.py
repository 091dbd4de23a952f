"""chaos.nodes.stop on real nodes, by its effect: NotReady, pods evicted and Ready elsewhere,
serving through the Service meanwhile; revert brings the node back Ready. ``solo``: it starts
its own cluster with three netns real nodes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos.cluster.realnodes import cluster as real_nodes
from tests.e2e.test_real_nodes import NAME, Cli, host_leftovers

pytestmark = pytest.mark.solo

INNER = """
import functools
import urllib.request

import pytest

from pytest_chaos.errors import SafetyError
from pytest_chaos.faults.node_stop import node_ready
from pytest_chaos.steady.diagnosis import pod_ready

TOLERATE_5S = [
    {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
]


def deployment(name):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": 3, "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "tolerations": TOLERATE_5S,
                    "containers": [{
                        "name": "demo", "image": "localhost/pytest-chaos/demo:1.0",
                        "imagePullPolicy": "Never",
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080},
                                           "periodSeconds": 1},
                    }],
                },
            },
        },
    }


def ready_elsewhere(kube, namespace, victim):
    return kube.wait(
        functools.partial(kube.core.list_namespaced_pod, namespace),
        lambda pods: len([p for p in pods if pod_ready(p) and p.spec.node_name != victim
                          and not p.metadata.deletion_timestamp]) == 3,
        within=120, what=f"3 Ready pods off {victim}", label_selector="app=web",
    )


def test_a_stopped_node_turns_notready_its_pods_move_and_revert_brings_it_back(
    chaos, kube, chaos_namespace
):
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("web"))
    pods = ready_elsewhere(kube, chaos_namespace, victim=None)
    victim = pods[0].spec.node_name
    fault = chaos.nodes.stop(victim)
    assert not node_ready(kube.read(kube.core.read_node, victim))
    # Its pod is unreachable from the host as a dead machine's would be.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{pods[0].status.pod_ip}:8080/healthz", timeout=2)
    moved = ready_elsewhere(kube, chaos_namespace, victim)
    assert {p.spec.node_name for p in moved} <= {"real-node-0", "real-node-1", "real-node-2"}
    fault.revert()
    assert node_ready(kube.read(kube.core.read_node, victim))
    fault.revert()  # idempotent


def test_the_last_ready_nodes_are_never_all_stopped(chaos):
    with pytest.raises(SafetyError, match="no schedulable node would be left"):
        chaos.nodes.stop(selector="chaos.pytest.dev/real-node=true", count=3)


def test_a_drain_moves_the_pods_and_users_see_at_least_99_percent(
    chaos, kube, steady, chaos_namespace
):
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {
        "preStop": {"sleep": {"seconds": 3}}
    }
    kube.apps.create_namespaced_deployment(chaos_namespace, body)
    kube.policy.create_namespaced_pod_disruption_budget(chaos_namespace, {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    })
    kube.core.create_namespaced_service(chaos_namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })
    pods = ready_elsewhere(kube, chaos_namespace, victim=None)
    ip = kube.core.read_namespaced_service("web", chaos_namespace).spec.cluster_ip
    url = f"http://{ip}/"
    steady.http(url).assert_ok(within=15, consecutive=5, every=0.05)
    victim = pods[0].spec.node_name
    with steady.http(url, timeout=1).monitor(every=0.05) as traffic:
        chaos.nodes.drain(victim)
        moved = ready_elsewhere(kube, chaos_namespace, victim)
    assert victim not in {p.spec.node_name for p in moved}
    assert traffic.availability >= 0.99, str(traffic)


def test_a_zone_outage_by_stop_stops_every_node_of_the_zone(chaos, kube):
    fault = chaos.nodes.zone_outage("c", how="stop", timeout="60s")
    assert fault.targets == ("real-node-2",)
    assert not node_ready(kube.read(kube.core.read_node, "real-node-2"))
    fault.revert()
    assert node_ready(kube.read(kube.core.read_node, "real-node-2"))


@pytest.mark.chaos_node_stop(selector="topology.kubernetes.io/zone=b")
def test_the_marker_stops_the_zone_b_node_for_the_test(kube):
    assert not node_ready(kube.read(kube.core.read_node, "real-node-1"))
"""


KILLED = """
import os, signal


def test_killed_while_a_node_is_stopped(chaos):
    chaos.nodes.stop("real-node-2")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    missing = real_nodes.requirements()
    if missing:
        pytest.skip("this host cannot run real nodes now: " + "; ".join(missing))
    root = Path(tempfile.mkdtemp(prefix="pc-"))
    tool = Cli(root / "clusters")
    up = tool.run("up", "--real-nodes", "3", "--nodes", "0")
    assert up.returncode == 0, up.stderr
    yield tool
    tool.run("down")
    assert host_leftovers(tool.state_dir) == []
    shutil.rmtree(root, ignore_errors=True)


def test_stop_by_effect_on_real_nodes(
    cli: Cli, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_inner=INNER)
    for key, value in cli.env.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chaos-cluster=local", f"--chaos-local-name={NAME}",
        "--chaos-local-real-nodes=3", "--chaos-local-nodes=0", "-v",
    )  # fmt: skip
    result.assert_outcomes(passed=5)
    kube = cli.kube()
    try:
        from pytest_chaos.faults.node_stop import node_ready

        for index in range(3):  # the marker's revert too
            assert node_ready(kube.read(kube.core.read_node, f"real-node-{index}"))
    finally:
        kube.close()


def test_cleanup_after_a_kill_9_starts_the_stopped_node_again(
    cli: Cli, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from pytest_chaos.cluster.realnodes import freeze
    from pytest_chaos.faults.node_stop import node_ready

    pytester.makepyfile(test_killed=KILLED)
    for key, value in cli.env.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chaos-cluster=local", f"--chaos-local-name={NAME}",
        "--chaos-local-real-nodes=3", "--chaos-local-nodes=0",
    )  # fmt: skip
    assert result.ret != 0  # killed
    assert freeze.stopped(cli.state_dir, "real-node-2")  # left behind, as a crash leaves it
    cleanup = subprocess.run(
        [sys.executable, "-m", "pytest_chaos", "cleanup", "--local", NAME],
        env=cli.env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert not freeze.stopped(cli.state_dir, "real-node-2")
    kube = cli.kube()
    try:
        assert node_ready(kube.read(kube.core.read_node, "real-node-2"))
    finally:
        kube.close()
