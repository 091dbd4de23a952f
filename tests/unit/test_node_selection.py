"""The pure decisions of chaos.nodes: which nodes, which count as schedulable, which taint is
ours, which pods a drain evicts. No cluster: nodes and pods are API dicts as the server sends them.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError, SafetyError, TargetingError
from pytest_chaos.faults.node_rules import (
    CORDON_TAINT,
    Taint,
    budget_selects,
    check_drain_arguments,
    check_node_targeting,
    check_taint_arguments,
    check_zone_outage_arguments,
    hosting_nodes,
    is_schedulable,
    no_hosted_pods,
    pick_nodes,
    plan_drain,
    restorable_node,
    schedulable_nodes,
    with_taint,
    without_taint,
)
from pytest_chaos.faults.node_undo import unschedulable_owners
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings

READY = {"conditions": [{"type": "Ready", "status": "True"}]}


def node(name: str, *, taints: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {**spec, **({"taints": taints} if taints is not None else {})},
        "status": READY,
    }


def pod(
    name: str,
    *,
    owner: str | None = "ReplicaSet",
    phase: str = "Running",
    volumes: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    terminating: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "shop", "uid": f"uid-{name}"}
    if owner:
        metadata["ownerReferences"] = [{"kind": owner, "name": f"{name}-owner", "controller": True}]
    if annotations:
        metadata["annotations"] = annotations
    if terminating:
        metadata["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": metadata, "spec": {"volumes": volumes or []}, "status": {"phase": phase}}


def safety(max_percent: float = 100.0) -> Safety:
    settings = Settings(
        cluster="existing",
        kubeconfig=None,
        context=None,
        local_name="local",
        local_nodes=3,
        max_percent=max_percent,
    )
    return Safety(settings, "kind-test")


# ----------------------------------------------------------------------------- choosing nodes


def test_pick_nodes_draws_distinct_nodes_without_replacement() -> None:
    names = [f"node-{i}" for i in range(5)]
    for seed in range(50):
        chosen = pick_nodes(names, 3, random.Random(seed))
        assert len(set(chosen)) == 3
        assert chosen == sorted(chosen)


def test_pick_nodes_is_replayable_and_independent_of_listing_order() -> None:
    names = [f"node-{i}" for i in range(6)]
    first = pick_nodes(names, 2, random.Random(7))
    assert pick_nodes(list(reversed(names)), 2, random.Random(7)) == first


def test_pick_nodes_takes_every_node_when_count_equals_matches() -> None:
    assert pick_nodes(["b", "a"], 2, random.Random(1)) == ["a", "b"]


def test_count_above_matches_says_what_matched() -> None:
    with pytest.raises(
        TargetingError, match=r"count=3 needs 3 distinct nodes but only 2 match: a, b"
    ):
        pick_nodes(["a", "b", "a"], 3, random.Random(1))


# ----------------------------------------------------------------------------- argument checks


def test_node_targeting_returns_the_names_once_each() -> None:
    assert check_node_targeting(["n1", "n2", "n1"], None, None, None) == ["n1", "n2"]
    assert check_node_targeting("n1", None, None, None) == ["n1"]
    assert check_node_targeting(None, "type=kwok", None, None) is None


def test_a_namespace_alone_picks_nodes_by_the_pods_they_host() -> None:
    assert check_node_targeting(None, None, None, "go-demo-8") is None
    assert check_node_targeting("n1", None, None, "shop") == ["n1"]
    assert check_drain_arguments(namespace="go-demo-8", count=2) == 120.0


def test_the_hosts_of_a_namespace_are_its_scheduled_live_pods_nodes() -> None:
    pods = [
        {"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}},
        {"metadata": {"name": "b"}, "spec": {"nodeName": "n2"}},
        {
            "metadata": {"name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "n3"},
        },
        {"metadata": {"name": "d"}, "spec": {}},
    ]
    assert hosting_nodes(pods) == {"n1", "n2"}
    assert no_hosted_pods("shop", pods[2:]) == (
        "its 2 pod(s) are all terminating or not scheduled yet: c (terminating), "
        "d (not scheduled yet)"
    )
    assert no_hosted_pods("shop", []).startswith("namespace 'shop' has no pods")


@pytest.mark.parametrize(
    ("name", "selector", "hosting", "namespace", "message"),
    [
        (None, None, None, None, r"say which nodes"),
        ("", None, None, None, r"name='' must be a node name"),
        ([], None, None, None, r"name=\[\] must be a node name"),
        (["ok", 3], None, None, None, r"must be a node name or a list"),
        (None, "type==", None, None, r"selector="),
        (None, None, "app=web", None, r"hosting='app=web' needs namespace="),
        (None, None, None, "", r"namespace='' must be a non-empty string"),
        (None, None, None, 3, r"namespace=3 must be a non-empty string"),
        (None, 5, None, None, r"selector=5 \(int\) is not a label selector"),
    ],
)
def test_bad_node_targeting_names_the_argument(
    name: Any, selector: Any, hosting: Any, namespace: Any, message: str
) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        check_node_targeting(name, selector, hosting, namespace)


def test_drain_arguments_return_the_timeout_in_seconds() -> None:
    assert check_drain_arguments(selector="type=kwok", timeout="2m") == 120.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"count": 0}, r"count=0 must be a whole number >= 1"),
        ({"count": True}, r"count=True"),
        ({"timeout": "soon"}, r"timeout='soon' is not a duration"),
        ({"timeout": 0}, r"timeout=0 must be longer than zero"),
        ({"concurrency": 0}, r"concurrency=0"),
        ({"delete_emptydir_data": "yes"}, r"delete_emptydir_data='yes' must be True or False"),
    ],
)
def test_bad_drain_arguments(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        check_drain_arguments(selector="type=kwok", **arguments)


def test_taint_arguments_give_the_taint() -> None:
    taint = check_taint_arguments("chaos.pytest.dev/down", selector="type=kwok", value="yes")
    assert taint == Taint("chaos.pytest.dev/down", "yes", "NoSchedule")
    assert str(taint) == "chaos.pytest.dev/down=yes:NoSchedule"


@pytest.mark.parametrize(
    ("effect", "value", "message"),
    [
        ("NoExecution", None, r"effect='NoExecution' is not a taint effect Kubernetes knows"),
        ("NoSchedule", "has space", r"value='has space' must be a label value"),
    ],
)
def test_bad_taints_are_refused(effect: str, value: str | None, message: str) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        check_taint_arguments("k", name="n", value=value, effect=effect)


def test_zone_outage_arguments() -> None:
    assert check_zone_outage_arguments("a", how="taint", timeout="30s") == 30.0
    with pytest.raises(ChaosConfigError, match=r"how='melt' must be one of cordon, drain"):
        check_zone_outage_arguments("a", how="melt")
    with pytest.raises(ChaosConfigError, match=r"zone=''"):
        check_zone_outage_arguments("")


# ----------------------------------------------------------------------------- taints


def test_a_taint_is_matched_on_key_value_and_effect_not_on_time_added() -> None:
    ours = Taint("chaos.pytest.dev/down", "", "NoExecute")
    stamped = {"key": "chaos.pytest.dev/down", "effect": "NoExecute", "timeAdded": "2025-01-01"}
    assert Taint.of(stamped) == ours
    assert ours.to_api() == {"key": "chaos.pytest.dev/down", "effect": "NoExecute"}
    assert ours.same_slot({"key": "chaos.pytest.dev/down", "value": "x", "effect": "NoExecute"})
    assert not ours.same_slot({"key": "chaos.pytest.dev/down", "effect": "NoSchedule"})


def test_with_and_without_taint_touch_only_ours() -> None:
    theirs = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
    stamped = {"key": "other", "effect": "NoExecute", "timeAdded": "2025-01-01T00:00:00Z"}
    ours = Taint("chaos.pytest.dev/down", "yes", "NoSchedule")

    added = with_taint([theirs, stamped], ours)
    assert added == [theirs, stamped, ours.to_api()]

    assert without_taint(added, ours) == [theirs, stamped]
    assert without_taint([theirs], ours) is None  # not there: nothing to remove
    changed = [theirs, {**ours.to_api(), "value": "theirs"}]
    assert without_taint(changed, ours) is None  # same key and effect, other value: not ours


# ----------------------------------------------------------------------------- schedulable rule


def test_the_schedulable_rule() -> None:
    pool_taint = {"key": "chaos.pytest.dev/pool", "value": "p1", "effect": "NoSchedule"}
    held = Taint("chaos.pytest.dev/down", "", "NoSchedule")
    nodes = [
        node("plain"),
        node("explicitly-schedulable", unschedulable=False),
        node("cordoned", unschedulable=True),
        node("dedicated-pool", taints=[pool_taint]),  # capacity for pods that tolerate it
        node("prefer", taints=[{"key": "x", "effect": "PreferNoSchedule"}]),
        node("no-execute", taints=[{"key": "x", "effect": "NoExecute"}]),
        node("not-ready", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]),
        node("held-by-chaos", taints=[held.to_api()]),
        {
            **node("reports-not-ready"),
            "status": {"conditions": [{"type": "Ready", "status": "False"}]},
        },
        {**node("no-status"), "status": {}},
    ]
    assert schedulable_nodes(nodes, {"held-by-chaos": {held}}) == [
        "dedicated-pool",
        "explicitly-schedulable",
        "plain",
        "prefer",
    ]
    assert is_schedulable(node("held-by-chaos", taints=[held.to_api()]))  # not held: a pool


def test_the_last_schedulable_node_is_never_taken_out() -> None:
    nodes = [
        node("a"),
        node("b", unschedulable=True),
        node("c", taints=[{"key": "x", "effect": "NoExecute"}]),
    ]
    with pytest.raises(
        SafetyError, match=r"refusing to drain a: no schedulable node would be left"
    ):
        safety().check_nodes(["a"], schedulable_nodes(nodes), "drain")
    # Taking out a node that is not schedulable anyway leaves `a`.
    safety().check_nodes(["b"], schedulable_nodes(nodes), "drain")


def test_the_blast_radius_applies_over_schedulable_nodes() -> None:
    nodes = [node(f"n{i}") for i in range(4)]
    with pytest.raises(SafetyError, match=r"refusing to hit 2 of 4 schedulable nodes"):
        safety(max_percent=25).check_nodes(["n0", "n1"], schedulable_nodes(nodes), "cordon")
    safety(max_percent=25).check_nodes(["n0"], schedulable_nodes(nodes), "cordon")


# ----------------------------------------------------------------------------- budgets


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "front"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
        (
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]},
            {"app": "api"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
            {"app": "web"},
            False,
        ),
        (
            {"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]},
            {"app": "web"},
            True,
        ),
        ({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}, {"app": "web"}, False),
        ({}, {"app": "web"}, True),  # policy/v1: an empty selector selects every pod
        (None, {"app": "web"}, False),
    ],
)
def test_which_budgets_cover_a_pod(
    selector: dict[str, Any] | None, labels: dict[str, str], selected: bool
) -> None:
    assert budget_selects(selector, labels) is selected


# ----------------------------------------------------------------------------- drain plans


def test_drain_plan_sorts_pods_as_kubectl_drain_does() -> None:
    pods = [
        pod("web"),
        pod("agent", owner="DaemonSet"),
        pod("static", owner="Node", annotations={"kubernetes.io/config.mirror": "abc"}),
        pod("leaving", terminating=True),
        pod("job-done", owner=None, phase="Succeeded", volumes=[{"name": "t", "emptyDir": {}}]),
    ]
    plan = plan_drain("n1", pods, delete_emptydir_data=False)

    assert [p.name for p in plan.evict] == ["web", "job-done"]
    assert [p.name for p in plan.terminating] == ["leaving"]
    assert plan.skipped == ["shop/agent (DaemonSet agent-owner)", "shop/static (mirror pod)"]
    assert not plan.refused


def test_drain_plan_refuses_unmanaged_and_emptydir_pods_by_name() -> None:
    pods = [pod("bare", owner=None), pod("cache", volumes=[{"name": "scratch", "emptyDir": {}}])]
    plan = plan_drain("n1", pods, delete_emptydir_data=False)

    assert plan.refused
    assert plan.unmanaged == ["shop/bare"]
    assert plan.emptydir == ["shop/cache (emptyDir scratch)"]
    assert "delete_emptydir_data=True" in plan.refusal()
    assert plan.refusal().startswith("n1: pods without a controller")

    allowed = plan_drain("n1", pods[1:], delete_emptydir_data=True)
    assert not allowed.refused
    assert [p.name for p in allowed.evict] == ["cache"]


# ----------------------------------------------------------------------------- restoring a node


def test_a_restored_node_drops_taints_that_mirror_the_old_nodes_conditions() -> None:
    taints = [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
        {"key": CORDON_TAINT, "effect": "NoSchedule"},
        {"key": "dedicated", "value": "infra", "effect": "NoSchedule"},
    ]
    manifest: dict[str, Any] = {"metadata": {"name": "n1"}, "spec": {"taints": taints}}
    assert restorable_node(manifest)["spec"]["taints"] == [
        {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
    ]
    cordoned = {**manifest, "spec": {"taints": taints, "unschedulable": True}}
    assert [t["key"] for t in restorable_node(cordoned)["spec"]["taints"]] == [
        CORDON_TAINT,
        "dedicated",
    ]


def test_unschedulable_owners_read_managed_fields() -> None:
    entry = {"manager": "kubectl", "fieldsV1": {"f:spec": {"f:unschedulable": {}}}}
    status = {"manager": "kwok", "fieldsV1": {"f:status": {}}}
    assert unschedulable_owners({"metadata": {"managedFields": [entry, status]}}) == {"kubectl"}
    assert unschedulable_owners({"metadata": {}}) == set()
