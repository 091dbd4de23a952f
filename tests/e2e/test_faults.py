"""Each fault injects, is observed through the API, reverts, and leaves the cluster as it was."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.errors import DriftError, SafetyError, TargetingError
from pytest_chaos.faults import undo
from pytest_chaos.ledger import read_cluster
from pytest_chaos.steady import Steady
from pytest_chaos.steady.diagnosis import pod_ready
from tests.e2e.manifests import deployment


def statefulset(name: str, *, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "example/db:1"}]},
            },
        },
    }


@pytest.fixture
def web(kube: Kube, chaos_namespace: str, steady: Steady) -> dict[str, Any]:
    """A 3-replica Deployment `web`, available; returns its spec as the API stores it."""
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("web", replicas=3))
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)
    return spec_of(kube, chaos_namespace, "web")


def spec_of(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    obj = kube.serialize(kube.apps.read_namespaced_deployment(name, namespace))
    return {
        "spec": obj["spec"],
        "labels": obj["metadata"].get("labels"),
        "uid": obj["metadata"]["uid"],
    }


def pod_uids(kube: Kube, namespace: str, selector: str) -> set[str]:
    pods = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
    return {str(p.metadata.uid) for p in pods if pod_ready(p)}


def undo_records(kube: Kube, namespace: str) -> list[str]:
    return [r.id for r in read_cluster(kube) if r.namespace == namespace]


def test_pod_kill_deletes_one_pod_and_the_deployment_recovers(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str, web: dict[str, Any]
) -> None:
    before = pod_uids(kube, chaos_namespace, "app=web")

    fault = chaos.pods.kill("app=web", namespace=chaos_namespace)

    assert len(fault.targets) == 1
    killed = fault.targets[0].split("/")[1]
    names = {p.metadata.name for p in kube.core.list_namespaced_pod(chaos_namespace).items}
    assert killed not in names
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)
    after = pod_uids(kube, chaos_namespace, "app=web")
    assert len(before - after) == 1
    fault.revert()
    assert spec_of(kube, chaos_namespace, "web") == web


@pytest.mark.parametrize(
    ("mode", "value", "killed"), [("all", None, 3), ("fixed", 2, 2), ("fixed-percent", 34, 1)]
)
def test_pod_kill_modes_choose_how_many(
    kube: Kube,
    chaos: Chaos,
    chaos_namespace: str,
    web: dict[str, Any],
    mode: str,
    value: float | None,
    killed: int,
) -> None:
    fault = chaos.pods.kill("app=web", namespace=chaos_namespace, mode=mode, value=value)
    assert len(fault.targets) == killed


def test_pod_kill_with_no_match_lists_what_exists(
    chaos: Chaos, chaos_namespace: str, web: dict[str, Any]
) -> None:
    with pytest.raises(TargetingError, match=r"no pods match selector 'app=wbe'") as error:
        chaos.pods.kill("app=wbe", namespace=chaos_namespace)
    assert "web-" in str(error.value)
    assert "did you mean 'app=web'?" in str(error.value)


def test_deployment_delete_removes_it_and_revert_restores_it_exactly(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str, web: dict[str, Any]
) -> None:
    fault = chaos.deployments.delete("web", namespace=chaos_namespace)

    with pytest.raises(ApiException) as gone:
        kube.apps.read_namespaced_deployment("web", chaos_namespace)
    assert gone.value.status == 404
    assert len(undo_records(kube, chaos_namespace)) == 1

    fault.revert()

    restored = spec_of(kube, chaos_namespace, "web")
    assert restored["spec"] == web["spec"]
    assert restored["labels"] == web["labels"]
    assert restored["uid"] != web["uid"]
    assert undo_records(kube, chaos_namespace) == []
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)


def test_reverting_twice_is_harmless(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: dict[str, Any]
) -> None:
    fault = chaos.deployments.delete("web", namespace=chaos_namespace)
    fault.revert()
    fault.revert()
    # The undo itself is idempotent too, e.g. when cleanup replays a record a run reverted.
    assert undo.revert(kube, fault.records[0]) == "already reverted"
    assert spec_of(kube, chaos_namespace, "web")["spec"] == web["spec"]


def test_scale_sets_replicas_and_revert_restores_the_previous_count(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str, web: dict[str, Any]
) -> None:
    with chaos.deployments.scale("web", namespace=chaos_namespace, replicas=0) as fault:
        steady.pods("app=web", namespace=chaos_namespace).assert_count(0, within=30)
        assert fault.targets == (f"{chaos_namespace}/web",)
        held = kube.apps.read_namespaced_deployment("web", chaos_namespace).metadata.labels
        assert held["chaos.pytest.dev/fault"] == fault.records[0].id

    assert not fault.active
    assert spec_of(kube, chaos_namespace, "web") == web  # labels included: ours is gone
    replica_sets = kube.apps.list_namespaced_replica_set(chaos_namespace).items
    assert all("chaos.pytest.dev/fault" not in (rs.metadata.labels or {}) for rs in replica_sets)
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)


def test_a_concurrent_edit_is_reported_as_drift_not_overwritten(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: dict[str, Any]
) -> None:
    fault = chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1)
    # Someone else (an autoscaler, a GitOps tool) changes the object meanwhile.
    kube.apps.patch_namespaced_deployment("web", chaos_namespace, {"spec": {"replicas": 5}})

    with pytest.raises(DriftError, match=r"scaled to 5 by someone else"):
        fault.revert()

    assert kube.apps.read_namespaced_deployment("web", chaos_namespace).spec.replicas == 5
    assert fault.active
    fault.discard("drift accepted by the test")
    assert undo_records(kube, chaos_namespace) == []


def test_a_recreated_deployment_that_differs_is_drift(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: dict[str, Any]
) -> None:
    fault = chaos.deployments.delete("web", namespace=chaos_namespace)
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("web", replicas=7))

    with pytest.raises(DriftError, match="someone else re-created it"):
        fault.revert()

    assert kube.apps.read_namespaced_deployment("web", chaos_namespace).spec.replicas == 7
    fault.discard()


def test_restart_rolls_every_pod(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str, web: dict[str, Any]
) -> None:
    before = pod_uids(kube, chaos_namespace, "app=web")

    chaos.deployments.restart("web", namespace=chaos_namespace)

    kube.wait(
        functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
        lambda pods: sum(pod_ready(p) for p in pods) == 3
        and not before & {p.metadata.uid for p in pods},
        within=60,
        what="every pod replaced",
        label_selector="app=web",
    )
    steady.deployment("web", namespace=chaos_namespace).assert_ready(within=30)


def test_statefulset_delete_and_scale_restore_exactly(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    kube.apps.create_namespaced_stateful_set(chaos_namespace, statefulset("db", replicas=2))
    steady.statefulset("db", namespace=chaos_namespace).assert_available(within=60)
    original = kube.serialize(kube.apps.read_namespaced_stateful_set("db", chaos_namespace))

    with chaos.statefulsets.scale("db", namespace=chaos_namespace, replicas=1):
        steady.statefulset("db", namespace=chaos_namespace).assert_count(1, within=30)
    with chaos.statefulsets.delete("db", namespace=chaos_namespace):
        assert kube.apps.list_namespaced_stateful_set(chaos_namespace).items == []

    restored = kube.serialize(kube.apps.read_namespaced_stateful_set("db", chaos_namespace))
    assert restored["spec"] == original["spec"]
    steady.statefulset("db", namespace=chaos_namespace).assert_available(within=60)


def test_system_namespaces_are_refused_before_anything_is_touched(chaos: Chaos) -> None:
    with pytest.raises(SafetyError, match="refusing to touch namespace 'kube-system'"):
        chaos.pods.kill(namespace="kube-system", mode="all")


def test_not_steady_names_the_bad_pods_and_recent_events(
    kube: Kube, steady: Steady, chaos_namespace: str, web: dict[str, Any]
) -> None:
    with pytest.raises(AssertionError) as failure:
        steady.deployment("web", namespace=chaos_namespace).assert_count(5, within=1)
    text = str(failure.value)
    assert "expected: Deployment" in text
    assert "exactly 5 ready replica(s)" in text
    assert "last seen: 3/3 ready" in text
    assert "web-" in text
    assert "recent events:" in text


def test_pod_kill_chooses_among_several_namespaces(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str, web: dict[str, Any]
) -> None:
    other = f"{chaos_namespace}-b"
    kube.core.create_namespace({"metadata": {"name": other}})
    try:
        kube.wait(
            functools.partial(kube.core.list_namespaced_service_account, other),
            lambda accounts: bool(accounts),
            within=60,
            what="service account",
        )
        kube.apps.create_namespaced_deployment(other, deployment("web", replicas=2))
        steady.deployment("web", namespace=other).assert_available(within=30)

        fault = chaos.pods.kill(
            "app=web", namespace=[chaos_namespace, other], mode="all", value=None
        )

        assert len(fault.targets) == 5
        assert {t.split("/")[0] for t in fault.targets} == {chaos_namespace, other}
        steady.deployment("web", namespace=other).assert_available(within=30)
    finally:
        kube.core.delete_namespace(other)


def test_a_cordoned_node_is_not_ready_for_steady_node(kube: Kube, steady: Steady) -> None:
    node = steady.node("kwok-node-2")
    node.assert_ready(within=10)
    kube.core.patch_node("kwok-node-2", {"spec": {"unschedulable": True}})
    try:
        with pytest.raises(AssertionError) as not_ready:
            node.assert_ready(within=1)
        expected, last_seen = str(not_ready.value).splitlines()[:2]
        assert expected.startswith("expected: node kwok-node-2 Ready and schedulable")
        assert last_seen.startswith("last seen: Ready=True")
        assert last_seen.endswith(", cordoned")
    finally:
        kube.core.patch_node("kwok-node-2", {"spec": {"unschedulable": None}})
    node.assert_ready(within=10)
