"""The embedded local cluster behaves like Kubernetes: real controllers, real schemas."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from pytest_chaos import Kube
from tests.e2e.manifests import deployment, pdb, virtual_service


def ready(pod: Any) -> bool:
    conditions = pod.status.conditions or []
    return (
        pod.metadata.deletion_timestamp is None
        and pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in conditions)
    )


def wait_ready_pods(kube: Kube, namespace: str, selector: str, count: int) -> list[Any]:
    pods = kube.wait(
        functools.partial(kube.core.list_namespaced_pod, namespace),
        lambda pods: sum(ready(p) for p in pods) == count,
        within=60,
        what=f"{count} Ready pods {selector}",
        label_selector=selector,
    )
    return [p for p in pods if ready(p)]


def test_three_zoned_nodes_are_ready_and_report_the_built_version(kube: Kube) -> None:
    nodes = kube.core.list_node(label_selector="type=kwok").items
    zones = sorted(n.metadata.labels["topology.kubernetes.io/zone"] for n in nodes)
    assert zones == ["a", "b", "c"]
    server = kube.server_version()
    assert server.startswith("v1.32.")
    for node in nodes:
        assert node.status.node_info.kubelet_version == server
        assert node.status.allocatable["cpu"] == "4"
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_three_replica_deployment_gets_three_running_ready_pods(
    kube: Kube, chaos_namespace: str
) -> None:
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("web", replicas=3))

    pods = wait_ready_pods(kube, chaos_namespace, "app=web", 3)

    assert {p.status.phase for p in pods} == {"Running"}
    assert all(p.spec.node_name.startswith("kwok-node-") for p in pods)


def test_deleted_pod_is_replaced_by_a_new_pod_that_becomes_ready(
    kube: Kube, chaos_namespace: str
) -> None:
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("web", replicas=2))
    before = wait_ready_pods(kube, chaos_namespace, "app=web", 2)
    victim = before[0]

    kube.core.delete_namespaced_pod(victim.metadata.name, chaos_namespace)

    after = kube.wait(
        functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
        lambda pods: sum(ready(p) for p in pods) == 2
        and victim.metadata.uid not in {p.metadata.uid for p in pods},
        within=60,
        what="the deleted pod replaced",
        label_selector="app=web",
    )
    uids = {p.metadata.uid for p in after if ready(p)}
    assert victim.metadata.uid not in uids
    assert before[1].metadata.uid in uids
    assert len(uids) == 2


def test_eviction_that_would_break_a_disruption_budget_is_refused_with_429(
    kube: Kube, chaos_namespace: str
) -> None:
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("db", replicas=1))
    kube.policy.create_namespaced_pod_disruption_budget(chaos_namespace, pdb("db", min_available=1))
    (pod,) = wait_ready_pods(kube, chaos_namespace, "app=db", 1)
    # The disruption controller must have computed the budget before it can refuse anything.
    kube.wait(
        functools.partial(kube.policy.list_namespaced_pod_disruption_budget, chaos_namespace),
        lambda budgets: any(
            b.status and b.status.observed_generation and b.status.current_healthy == 1
            for b in budgets
        ),
        within=30,
        what="the PodDisruptionBudget status",
    )
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod.metadata.name, "namespace": chaos_namespace},
    }

    with pytest.raises(ApiException) as refused:
        kube.core.create_namespaced_pod_eviction(pod.metadata.name, chaos_namespace, eviction)

    assert refused.value.status == 429
    assert "disruption budget" in str(refused.value.body)
    assert (
        kube.core.read_namespaced_pod(pod.metadata.name, chaos_namespace).metadata.uid
        == pod.metadata.uid
    )


@pytest.mark.parametrize("api_version", ["v1", "v1beta1", "v1alpha3"])
def test_istio_schema_accepts_a_valid_virtualservice(
    kube: Kube, chaos_namespace: str, api_version: str
) -> None:
    body = virtual_service("reviews", host="reviews", api_version=api_version)

    created = kube.custom.create_namespaced_custom_object(
        "networking.istio.io", api_version, chaos_namespace, "virtualservices", body
    )

    assert created["spec"]["http"][0]["fault"]["abort"]["httpStatus"] == 503


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (
            lambda vs: vs["spec"]["http"][0]["fault"]["abort"].update(httpStatus="oops"),
            "httpStatus",
        ),
        (lambda vs: vs["spec"].update(hosts="reviews"), "hosts"),
        (
            lambda vs: vs["spec"]["http"][0]["fault"].update(delay={"fixedDelay": "soon"}),
            "fixedDelay",
        ),
    ],
    ids=["status-not-a-number", "hosts-not-a-list", "delay-not-a-duration"],
)
def test_istio_schema_rejects_an_invalid_virtualservice(
    kube: Kube, chaos_namespace: str, mutate: Any, complaint: str
) -> None:
    body = virtual_service("reviews", host="reviews")
    mutate(body)

    with pytest.raises(ApiException) as rejected:
        kube.custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", chaos_namespace, "virtualservices", body
        )

    assert rejected.value.status == 422
    assert complaint in str(rejected.value.body)


def test_fake_nodes_heartbeat_through_leases_and_never_flap(kube: Kube) -> None:
    import datetime as dt

    from kubernetes import client

    leases = client.CoordinationV1Api(kube.api_client).list_namespaced_lease("kube-node-lease")
    renewed = {lease.metadata.name: lease.spec.renew_time for lease in leases.items}
    assert {"kwok-node-0", "kwok-node-1", "kwok-node-2"} <= set(renewed)
    now = dt.datetime.now(dt.UTC)
    assert all(t is not None and (now - t).total_seconds() < 60 for t in renewed.values())
    events = kube.core.list_event_for_all_namespaces(field_selector="reason=NodeNotReady").items
    assert events == [], [e.message for e in events]
