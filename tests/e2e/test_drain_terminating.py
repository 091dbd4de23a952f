"""A drain meets pods that are already going: a namespace being deleted on the drained node.

With a throw-away namespace per test, the previous test's namespace is often still being deleted
when the next test drains a node that carries its pods. The API refuses every eviction there
(403, cause ``NamespaceTerminating``); like ``kubectl drain``, the drain waits for such pods to
go instead of failing. The pod runs on a node no kubelet serves, so once deleted it stays
Terminating (and its namespace with it) until the test force-deletes it.
"""

from __future__ import annotations

import functools
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.faults.drain import Drainer, namespace_terminating
from pytest_chaos.faults.node_rules import PodRef


@pytest.fixture
def node(kube: Kube) -> Iterator[str]:
    """A node of this test's own that no kubelet (and no kwok) runs: a pod deleted there stays
    Terminating until it is force-deleted, as on a node whose kubelet is slow or gone."""
    name = f"going-{secrets.token_hex(3)}"
    kube.core.create_node(
        {
            "metadata": {"name": name, "labels": {"chaos.pytest.dev/pool": name}},
            "spec": {"taints": [{"key": "chaos.pytest.dev/pool", "effect": "NoSchedule"}]},
        }
    )
    try:
        yield name
    finally:
        kube.core.delete_node(name)


@pytest.fixture
def going(kube: Kube, node: str) -> Iterator[PodRef]:
    """A pod on the node whose namespace is being deleted, and the pod with it (Terminating)."""
    namespace = f"going-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": namespace}})
    pod = {
        "metadata": {"name": "leftover", "labels": {"app": "leftover"}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "leftover", "image": "registry.example/leftover:1"}],
        },
    }
    created = kube.core.create_namespaced_pod(namespace, pod)
    ref = PodRef(namespace, "leftover", str(created.metadata.uid))
    try:
        kube.core.delete_namespace(namespace)
        kube.wait(
            functools.partial(kube.core.list_namespaced_pod, namespace),
            lambda pods: len(pods) == 1 and pods[0].metadata.deletion_timestamp is not None,
            within=30,
            what="the namespace controller to delete the leftover pod",
        )
        yield ref
    finally:
        release(kube, ref)
        kube.wait(
            kube.core.list_namespace,
            lambda spaces: all(s.metadata.name != namespace for s in spaces),
            within=60,
            what=f"namespace {namespace} to be gone",
        )


def release(kube: Kube, pod: PodRef) -> None:
    """Force-delete the pod (no kubelet will confirm it): it goes, and its namespace with it."""
    try:
        kube.core.delete_namespaced_pod(pod.name, pod.namespace, grace_period_seconds=0)
    except ApiException as exc:
        if exc.status != 404:
            raise


def test_an_eviction_in_a_namespace_being_deleted_counts_as_done(
    kube: Kube, chaos: Chaos, going: PodRef
) -> None:
    # What the API answers an eviction there: the refusal the drain must tolerate.
    eviction: Any = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": going.name, "namespace": going.namespace},
    }
    with pytest.raises(ApiException) as refused:
        kube.core.create_namespaced_pod_eviction(going.name, going.namespace, eviction)
    assert refused.value.status == 403
    assert namespace_terminating(refused.value)

    drainer = Drainer(chaos.nodes._ctx, timeout=10, delete_emptydir_data=False, concurrency=1)
    drainer.evict(going)  # returns: the pod is going already (before: InjectError, 403)


def test_a_drain_waits_for_a_pod_of_a_namespace_being_deleted_then_finishes(
    kube: Kube, chaos: Chaos, node: str, going: PodRef
) -> None:
    result: dict[str, Any] = {}

    def drain() -> None:
        try:
            result["fault"] = chaos.nodes.drain(node, timeout="60s")
        except Exception as exc:  # pragma: no cover - reported below
            result["error"] = exc

    thread = threading.Thread(target=drain)
    thread.start()
    waiting = f"nodes.drain: waiting for pod(s) already going: {going}"
    deadline = time.monotonic() + 30
    while waiting not in (e.text for e in chaos.timeline.events):  # it waits, it did not fail
        assert thread.is_alive(), result
        assert time.monotonic() < deadline, "the drain never said it waits for the pod"
        time.sleep(0.05)
    assert thread.is_alive()
    release(kube, going)
    thread.join(timeout=60)

    assert "error" not in result, result
    fault = result["fault"]
    assert fault.details["evicted"] == []
    fault.revert()
    assert not kube.core.read_node(node).spec.unschedulable
