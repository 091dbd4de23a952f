"""A service loses its message broker for a while, without anyone restarting anything.

Reproduces "How I tried to create resilience test for NATS in Kubernetes?": a Go service
publishes events to NATS. The test wants to

1. let the service handle business flows,
2. deactivate NATS **for this service only** (NATS is shared with other services and tests, so
   it must not be stopped),
3. see the service keep serving while it fails to publish,
4. re-activate NATS and check the service restored the system state,

with no proxy in the path and no pod redeployed or restarted for the test. The author tried an
egress NetworkPolicy and gave up: a NetworkPolicy only stops **new** connections, and the NATS
client holds one long-lived TCP connection (Go's HTTP keep-alive has the same problem), so the
policy did nothing until the pods were restarted.

``chaos.network.cut`` does what the policy could not. It adds an ephemeral container to the
service's pod (the pod is not restarted: same uid, same restart count) that, inside the pod's
network namespace only, rejects traffic with the ``broker`` Service (its ClusterIP and every
NATS pod IP, on its client port) in both directions with TCP resets, and then destroys the
connections already open (``ss -K``). The NATS client sees its connection reset at once, and
its reconnects are refused until ``revert()``, which removes exactly those rules, so the client
reconnects by itself. Other clients of NATS never notice.

Here, on the embedded local cluster, the nodes are kwok fakes: pods run no process, so there is
no connection to reset. What this test proves is the API side: the cut is aimed at the right
addresses and ports, and the service's pod is never restarted. On a cluster with real nodes (the
local cluster's real-node profile, or kind) the same test really resets the connection; add
``steady.http`` probes of the service for steps 3 and 4 (it answers while cut off; its outbox is
flushed after the revert).

Run with ``pytest -m chaos examples/``.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from kubernetes import client

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.faults.ephemeral import API_ONLY
from pytest_chaos.steady import Steady

pytestmark = pytest.mark.chaos


def nats() -> tuple[dict[str, Any], dict[str, Any]]:
    """The shared broker: a NATS Deployment and its ``broker`` Service (client and monitor)."""
    labels = {"app": "broker"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "broker", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "nats",
                            "image": "nats:2.10",
                            "ports": [
                                {"name": "client", "containerPort": 4222},
                                {"name": "monitor", "containerPort": 8222},
                            ],
                        }
                    ]
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "broker", "labels": labels},
        "spec": {
            "selector": labels,
            "ports": [
                {"name": "client", "port": 4222, "targetPort": "client"},
                {"name": "monitor", "port": 8222, "targetPort": "monitor"},
            ],
        },
    }
    return deployment, service


def orders_service() -> dict[str, Any]:
    """The Go service under test: it publishes its events to ``nats://broker:4222``."""
    labels = {"app": "app"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "example/orders:1.0",
                            "env": [{"name": "NATS_URL", "value": "nats://broker:4222"}],
                            "ports": [{"containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def broker_addresses(kube: Kube, namespace: str) -> set[str]:
    """The broker Service's ClusterIP and the IPs of its ready NATS pods."""
    discovery = client.DiscoveryV1Api(kube.api_client)
    slices = kube.wait(
        functools.partial(discovery.list_namespaced_endpoint_slice, namespace),
        lambda found: any(e.conditions.ready for s in found for e in s.endpoints or []),
        within=30,
        what="the broker Service's ready endpoints",
        label_selector="kubernetes.io/service-name=broker",
    )
    service = kube.core.read_namespaced_service("broker", namespace)
    endpoints = {a for s in slices for e in s.endpoints or [] for a in e.addresses}
    return {str(service.spec.cluster_ip), *endpoints}


def app_pods(kube: Kube, namespace: str) -> dict[str, tuple[str, int]]:
    """Each app pod's name: (uid, restarts), to prove nothing was restarted."""
    pods = kube.core.list_namespaced_pod(namespace, label_selector="app=app").items
    return {
        str(p.metadata.name): (str(p.metadata.uid), p.status.container_statuses[0].restart_count)
        for p in pods
    }


def test_the_service_is_cut_off_its_broker_without_a_restart(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    broker, broker_service = nats()
    kube.core.create_namespaced_service(chaos_namespace, broker_service)
    kube.apps.create_namespaced_deployment(chaos_namespace, broker)
    kube.apps.create_namespaced_deployment(chaos_namespace, orders_service())
    # 1. The service handles business flows: everything is up, NATS is reachable.
    steady.namespace(chaos_namespace).assert_ready(within=30)
    addresses = broker_addresses(kube, chaos_namespace)
    before = app_pods(kube, chaos_namespace)

    # 2. NATS goes away for this service only: every replica, the client port only.
    outage = chaos.network.cut(
        "app=app", namespace=chaos_namespace, to="broker", port="client", mode="all"
    )

    assert set(outage.details["ips"]) == addresses
    assert outage.details["ports"] == ["4222/TCP (client)"]
    assert len(outage.targets) == 2
    if outage.details["effect"] == API_ONLY:
        # kwok's fake nodes run no process: the proof stops at the API (see the docstring).
        assert set(outage.details["pods"].values()) == {API_ONLY}
    else:
        # A real node ran the cut in each pod: every open connection to NATS was destroyed.
        assert all(c["left"] == 0 for c in outage.details["connections"].values())
    # 3. The service keeps running: the same pods, never restarted. NATS itself is untouched,
    # for the other services and tests that share it.
    steady.deployment("app", namespace=chaos_namespace).assert_available()
    steady.deployment("broker", namespace=chaos_namespace).assert_available()
    assert app_pods(kube, chaos_namespace) == before

    # 4. NATS comes back: the rules are removed, the client reconnects by itself.
    outage.revert()

    assert app_pods(kube, chaos_namespace) == before
    steady.namespace(chaos_namespace).assert_ready()
