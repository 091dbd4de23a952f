"""A pod kill and a drain on kind, measured by requests to the Service's DNS name.

The test process is outside kind's pod network: ClusterIPs and pod IPs are not routable from
it. ``steady.http`` sends ``http://<svc>.<ns>.svc.cluster.local/`` through the API server's
service proxy there (the same URL works on the embedded cluster, and from a pod): the API
server picks a ready endpoint for each request, so a monitor sees what the Service serves.

Run with ``pytest -m chaos examples/kind --chaos-cluster=kind --chaos-kind-workers=2``.
"""

from __future__ import annotations

import pytest

from examples.real_nodes.apps import ready_pods, web_budget, web_deployment, web_service
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady

pytestmark = pytest.mark.chaos


def start_web(kube: Kube, namespace: str, replicas: int) -> str:
    """``web`` (graceful: a 3 s preStop pause), its budget and Service; its URL by name."""
    kube.apps.create_namespaced_deployment(namespace, web_deployment(replicas=replicas))
    kube.policy.create_namespaced_pod_disruption_budget(namespace, web_budget())
    kube.core.create_namespaced_service(namespace, web_service())
    ready_pods(kube, namespace, replicas)
    return f"http://web.{namespace}.svc.cluster.local/"


def test_a_graceful_replica_set_hides_a_pod_kill(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    url = start_web(kube, chaos_namespace, replicas=3)
    steady.http(url).assert_ok(within=30, consecutive=5)

    with steady.http(url, timeout=2).monitor(every=0.1) as traffic:
        chaos.pods.kill("app=web", namespace=chaos_namespace)
        steady.pods("app=web", namespace=chaos_namespace).assert_count(3, within=60)
        steady.http(url).assert_ok(within=30, consecutive=10)

    assert traffic.availability >= 0.99, str(traffic)


def test_a_drained_worker_hands_its_pods_to_the_other(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    url = start_web(kube, chaos_namespace, replicas=3)
    steady.http(url).assert_ok(within=30, consecutive=5)

    with steady.http(url, timeout=2).monitor(every=0.1) as traffic:
        fault = chaos.nodes.drain(hosting="app=web", namespace=chaos_namespace)
        drained = fault.targets[0]
        moved = ready_pods(kube, chaos_namespace, 3, off=drained)
        steady.http(url).assert_ok(within=30, consecutive=10)

    assert {p.spec.node_name for p in moved} <= {n for n in workers(kube) if n != drained}
    assert traffic.availability >= 0.99, str(traffic)


def workers(kube: Kube) -> set[str]:
    """The kind workers (the control plane is tainted: no app pods there)."""
    return {
        str(n.metadata.name)
        for n in kube.core.list_node().items
        if "node-role.kubernetes.io/control-plane" not in (n.metadata.labels or {})
    }
