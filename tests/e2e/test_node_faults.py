"""Node faults inject, are observed through the API, revert, and leave each node as it was.

Every test works on a pool of extra kwok nodes of its own (examples/nodes.py): the cluster's
three nodes run other tests' pods at the same time and are never touched here. "As it was" is
compared exactly: labels, annotations, taints and ``spec.unschedulable`` of every pool node.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from examples.nodes import NodePool, node_pool
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos, ChaosSession
from pytest_chaos.errors import (
    ChaosConfigError,
    DriftError,
    InjectError,
    SafetyError,
    TargetingError,
)
from pytest_chaos.faults import FaultContext
from pytest_chaos.faults.node_rules import CORDON_ANNOTATION, CORDON_TAINT
from pytest_chaos.faults.nodes import ZONE_OUTAGE_TAINT, NodeFaults
from pytest_chaos.ledger import read_cluster
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.steady import Steady
from pytest_chaos.steady.diagnosis import pod_ready
from tests.e2e.manifests import pdb


@pytest.fixture
def pool(kube: Kube) -> Iterator[NodePool]:
    """Two extra Ready nodes (set up before `chaos`, so faults are reverted before they go)."""
    with node_pool(kube, 2) as created:
        yield created


@pytest.fixture
def pool3(kube: Kube) -> Iterator[NodePool]:
    """Three extra Ready nodes: room for a drained node's pod next to a spread Deployment."""
    with node_pool(kube, 3) as created:
        yield created


def records_of(kube: Kube, pool: NodePool) -> list[str]:
    """Open undo records of the pool's nodes."""
    return [r.id for r in read_cluster(kube) if r.kind == "Node" and r.name in pool.nodes]


def node(kube: Kube, name: str) -> Any:
    return kube.core.read_node(name)


def deploy(
    kube: Kube, steady: Steady, namespace: str, manifest: dict[str, Any], *, ready: int
) -> None:
    """Create a Deployment and wait until ready pods of it run."""
    kube.apps.create_namespaced_deployment(namespace, manifest)
    name = manifest["metadata"]["name"]
    steady.pods(f"app={name}", namespace=namespace).assert_count(ready, within=60)


def pods_on(kube: Kube, node_name: str, namespace: str) -> list[Any]:
    pods = kube.core.list_namespaced_pod(namespace, field_selector=f"spec.nodeName={node_name}")
    return [p for p in pods.items if not p.metadata.deletion_timestamp]


def dry_context(kube: Kube, session: ChaosSession, *, dry_run: bool, safety: Safety) -> NodeFaults:
    return NodeFaults(
        FaultContext(
            kube=kube,
            ledger=session.ledger,
            safety=safety,
            rng=random.Random(1),
            timeline=Timeline("test_node_faults"),
            test="test_node_faults",
            dry_run=dry_run,
        )
    )


# ----------------------------------------------------------------------------- cordon


def test_cordon_makes_a_node_unschedulable_and_revert_restores_it_exactly(
    kube: Kube, pool: NodePool, chaos: Chaos
) -> None:
    before = pool.states()

    fault = chaos.nodes.cordon(selector=pool.selector)

    [target] = fault.targets
    assert target in pool.nodes
    cordoned = node(kube, target)
    assert cordoned.spec.unschedulable is True
    assert cordoned.metadata.annotations[CORDON_ANNOTATION] == fault.records[0].id
    assert CORDON_TAINT in {t.key for t in cordoned.spec.taints}  # mirrored by the controller
    assert len(records_of(kube, pool)) == 1

    fault.revert()

    assert pool.states() == before
    assert records_of(kube, pool) == []


def test_a_node_an_operator_cordoned_stays_cordoned(
    kube: Kube, pool: NodePool, chaos: Chaos
) -> None:
    operators, other = pool.nodes
    kube.core.patch_node(operators, {"spec": {"unschedulable": True}})
    kube.wait(  # the node-lifecycle controller mirrors the cordon with a taint
        kube.core.list_node,
        lambda nodes: any(t.key == CORDON_TAINT for n in nodes for t in n.spec.taints or []),
        within=30,
        what=f"the {CORDON_TAINT} taint on {operators}",
        field_selector=f"metadata.name={operators}",
    )
    before = pool.states()

    with pytest.raises(TargetingError, match=rf"already in that state: {operators} \(cordoned\)"):
        chaos.nodes.cordon(operators)
    with pytest.raises(TargetingError, match=rf"only 1 match.*left out: {operators} \(cordoned\)"):
        chaos.nodes.cordon(selector=pool.selector, count=2)
    fault = chaos.nodes.cordon(selector=pool.selector)  # the only schedulable one: `other`
    assert fault.targets == (other,)
    fault.revert()

    assert pool.states() == before
    assert node(kube, operators).spec.unschedulable is True


def test_uncordoned_and_cordoned_again_by_someone_else_is_drift(
    kube: Kube, pool: NodePool, chaos: Chaos
) -> None:
    fault = chaos.nodes.cordon(pool.nodes[0])
    # An operator uncordons the node, then cordons it again (as `kubectl cordon` would).
    kube.core.patch_node(pool.nodes[0], {"spec": {"unschedulable": None}}, field_manager="kubectl")
    kube.core.patch_node(pool.nodes[0], {"spec": {"unschedulable": True}}, field_manager="kubectl")

    with pytest.raises(DriftError, match=r"cordoned again by kubectl"):
        fault.revert()

    assert node(kube, pool.nodes[0]).spec.unschedulable is True  # their cordon stays
    fault.discard("drift accepted by the test")
    assert records_of(kube, pool) == []


def test_uncordoned_by_someone_else_is_already_reverted(
    kube: Kube, pool: NodePool, chaos: Chaos
) -> None:
    before = pool.states()
    fault = chaos.nodes.cordon(pool.nodes[0])
    kube.core.patch_node(pool.nodes[0], {"spec": {"unschedulable": None}})

    fault.revert()

    assert pool.states() == before  # our annotation is gone too


# ----------------------------------------------------------------------------- drain


def test_drain_evicts_every_pod_and_the_deployment_stays_available(
    kube: Kube, pool3: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    pool = pool3
    kube.policy.create_namespaced_pod_disruption_budget(
        chaos_namespace, pdb("web", min_available=1)
    )
    deploy(
        kube,
        steady,
        chaos_namespace,
        pool.deployment("web", replicas=2, one_per_node=True),
        ready=2,
    )
    hosts = pool.host_of(chaos_namespace, "app=web")
    before = pool.states()

    fault = chaos.nodes.drain(hosting="app=web", namespace=chaos_namespace, timeout="60s")

    [drained] = fault.targets
    assert drained in hosts
    assert node(kube, drained).spec.unschedulable is True
    assert pods_on(kube, drained, chaos_namespace) == []
    assert len(fault.details["evicted"]) == 1
    web = steady.deployment("web", namespace=chaos_namespace)
    web.assert_available(within=30)
    replacement_hosts = pool.host_of(chaos_namespace, "app=web")
    assert drained not in replacement_hosts
    assert len(replacement_hosts) == 2

    fault.revert()

    assert pool.states() == before
    assert records_of(kube, pool) == []
    web.assert_available(within=30)


def test_a_budget_that_allows_no_disruption_fails_the_drain_and_its_cordon_is_undone(
    kube: Kube, pool: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    kube.policy.create_namespaced_pod_disruption_budget(
        chaos_namespace, pdb("solo", min_available=1)
    )
    deploy(kube, steady, chaos_namespace, pool.deployment("solo", replicas=1), ready=1)
    [host] = pool.host_of(chaos_namespace, "app=solo")
    [pod] = pods_on(kube, host, chaos_namespace)
    before = pool.states()

    with pytest.raises(InjectError) as error:
        chaos.nodes.drain(hosting="app=solo", namespace=chaos_namespace, timeout="3s")

    message = str(error.value)
    assert f"PodDisruptionBudget {chaos_namespace}/solo blocked the eviction" in message
    assert "minAvailable=1: 1 healthy, 1 needed, 0 disruption(s) allowed" in message
    assert pool.states() == before  # uncordoned again: no half-applied fault
    assert records_of(kube, pool) == []
    assert [p.metadata.uid for p in pods_on(kube, host, chaos_namespace)] == [pod.metadata.uid]
    assert chaos.active == []


def test_drain_leaves_daemonset_pods_in_place(
    kube: Kube, pool: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    kube.apps.create_namespaced_daemon_set(chaos_namespace, pool.daemonset("agent"))
    steady.pods("app=agent", namespace=chaos_namespace).assert_count(2, within=60)
    deploy(kube, steady, chaos_namespace, pool.deployment("web", replicas=1), ready=1)
    [host] = pool.host_of(chaos_namespace, "app=web")

    fault = chaos.nodes.drain(host)

    left = pods_on(kube, host, chaos_namespace)
    assert [p.metadata.labels["app"] for p in left] == ["agent"]
    assert [s.split(" ")[1:] for s in fault.details["skipped"]] == [["(DaemonSet", "agent)"]]
    assert len(fault.details["evicted"]) == 1


def test_pods_with_emptydir_data_are_refused_unless_asked(
    kube: Kube, pool: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    deploy(
        kube,
        steady,
        chaos_namespace,
        pool.deployment("cache", replicas=1, empty_dir=True),
        ready=1,
    )
    [host] = pool.host_of(chaos_namespace, "app=cache")
    [pod] = pods_on(kube, host, chaos_namespace)
    before = pool.states()

    with pytest.raises(InjectError, match=r"emptyDir volumes.*delete_emptydir_data=True") as error:
        chaos.nodes.drain(host)
    assert f"{chaos_namespace}/{pod.metadata.name} (emptyDir scratch)" in str(error.value)
    assert "nothing was touched" in str(error.value)
    assert pool.states() == before
    assert records_of(kube, pool) == []

    fault = chaos.nodes.drain(host, delete_emptydir_data=True)

    assert fault.details["evicted"] == [f"{chaos_namespace}/{pod.metadata.name}"]
    assert pods_on(kube, host, chaos_namespace) == []


def test_a_pod_without_a_controller_is_refused_by_name(
    kube: Kube, pool: NodePool, chaos: Chaos, chaos_namespace: str
) -> None:
    bare = {"metadata": {"name": "bare", "labels": {"app": "bare"}}, "spec": pool.pod_spec("bare")}
    kube.core.create_namespaced_pod(chaos_namespace, bare)
    [host] = kube.wait(
        functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
        lambda pods: any(pod_ready(p) for p in pods),
        within=60,
        what="the bare pod ready",
    )
    before = pool.states()

    with pytest.raises(InjectError, match=rf"without a controller.*{chaos_namespace}/bare"):
        chaos.nodes.drain(host.spec.node_name)

    assert pool.states() == before


# ----------------------------------------------------------------------------- taint


def test_taint_adds_exactly_one_taint_and_undo_leaves_a_taint_added_meanwhile(
    kube: Kube, pool: NodePool, chaos: Chaos
) -> None:
    target = pool.nodes[0]
    before = pool.states()

    fault = chaos.nodes.taint("chaos.pytest.dev/degraded", name=target, value="yes")

    taints = [(t.key, t.value, t.effect) for t in node(kube, target).spec.taints]
    assert ("chaos.pytest.dev/degraded", "yes", "NoSchedule") in taints
    # Someone else adds a taint of their own while the fault is active.
    theirs = {"key": "example.com/maintenance", "effect": "PreferNoSchedule"}
    current = kube.serialize(node(kube, target))["spec"]["taints"]
    kube.core.patch_node(target, {"spec": {"taints": [*current, theirs]}})

    fault.revert()

    expected = dict(before)
    expected[target] = {**before[target], "taints": [*before[target]["taints"], theirs]}
    assert pool.states() == expected
    assert records_of(kube, pool) == []


def test_a_taint_whose_value_someone_changed_is_drift(
    kube: Kube, pool: NodePool, chaos: Chaos
) -> None:
    target = pool.nodes[0]
    fault = chaos.nodes.taint("chaos.pytest.dev/degraded", name=target, value="yes")
    taints = kube.serialize(node(kube, target))["spec"]["taints"]
    changed = [
        {**t, "value": "theirs"} if t["key"] == "chaos.pytest.dev/degraded" else t for t in taints
    ]
    kube.core.patch_node(target, {"spec": {"taints": changed}})

    with pytest.raises(DriftError, match=r"changed to chaos.pytest.dev/degraded=theirs"):
        fault.revert()

    keys = {(t.key, t.value) for t in node(kube, target).spec.taints}
    assert ("chaos.pytest.dev/degraded", "theirs") in keys
    fault.discard("drift accepted by the test")


def test_a_node_that_already_has_the_taint_is_not_a_target(pool: NodePool, chaos: Chaos) -> None:
    # Every pool node carries chaos.pytest.dev/pool:NoSchedule: it is not ours to remove.
    with pytest.raises(
        TargetingError, match=r"already in that state.*tainted chaos.pytest.dev/pool"
    ):
        chaos.nodes.taint("chaos.pytest.dev/pool", selector=pool.selector, value="other")


def test_a_noexecute_taint_evicts_pods_that_do_not_tolerate_it(
    kube: Kube, pool: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    deploy(kube, steady, chaos_namespace, pool.deployment("web", replicas=1), ready=1)
    [host] = pool.host_of(chaos_namespace, "app=web")
    before = pool.states()

    with chaos.nodes.taint("chaos.pytest.dev/down", name=host, effect="NoExecute"):
        kube.wait(
            functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
            lambda pods: all(p.spec.node_name != host for p in pods),
            within=60,
            what=f"the pod evicted from {host}",
        )

    state = pool.states()
    for each in state.values():  # the server stamps NoExecute taints; ours is gone anyway
        for taint in each["taints"] or []:
            taint.pop("timeAdded", None)
    assert state == before


# ----------------------------------------------------------------------------- delete


def test_delete_removes_the_node_and_undo_recreates_an_equal_one(
    kube: Kube, pool: NodePool, chaos: Chaos
) -> None:
    target = pool.nodes[0]
    before = pool.states()
    uid = node(kube, target).metadata.uid

    fault = chaos.nodes.delete(target)

    with pytest.raises(ApiException) as gone:
        node(kube, target)
    assert gone.value.status == 404
    fault.revert()
    pool.wait_ready([target])  # kwok manages the re-created node: it comes back Ready

    assert pool.states() == before
    assert node(kube, target).metadata.uid != uid
    assert records_of(kube, pool) == []


@pytest.mark.parametrize("first", ["delete", "cordon"], ids=["newest-first", "cleanup-order"])
def test_a_cordoned_then_deleted_node_comes_back_uncordoned_in_any_revert_order(
    kube: Kube, pool: NodePool, chaos: Chaos, first: str
) -> None:
    target = pool.nodes[0]
    before = pool.states()
    cordon = chaos.nodes.cordon(target)
    delete = chaos.nodes.delete(target)

    # Teardown reverts newest first; cleanup after a crash may take the records in any order.
    for fault in (delete, cordon) if first == "delete" else (cordon, delete):
        fault.revert()
    pool.wait_ready([target])

    assert pool.states() == before
    assert records_of(kube, pool) == []


# ----------------------------------------------------------------------------- zone outage


@pytest.mark.parametrize("how", ["cordon", "drain", "taint", "delete"])
def test_zone_outage_takes_every_node_of_the_zone_out_and_back(
    kube: Kube, pool: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str, how: str
) -> None:
    deploy(kube, steady, chaos_namespace, pool.deployment("web", replicas=2), ready=2)
    before = pool.states()

    fault = chaos.nodes.zone_outage(pool.zone, how=how, timeout="60s")

    assert sorted(fault.targets) == sorted(pool.nodes)
    nodes = {n.metadata.name: n for n in kube.core.list_node(label_selector=pool.selector).items}
    if how == "delete":
        assert nodes == {}
    elif how == "taint":
        for each in nodes.values():
            assert ZONE_OUTAGE_TAINT in {t.key for t in each.spec.taints}
    else:
        assert all(n.spec.unschedulable for n in nodes.values())
    if how in ("drain", "taint"):  # the pods left the zone, and nothing can take them in
        kube.wait(
            functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
            lambda pods: len(pods) == 2 and all(p.spec.node_name is None for p in pods),
            within=60,
            what="every web pod evicted and pending",
        )

    fault.revert()
    pool.wait_ready()

    state = pool.states()
    assert state == before
    assert records_of(kube, pool) == []


def test_an_unknown_zone_lists_the_zones_that_exist(chaos: Chaos) -> None:
    with pytest.raises(TargetingError, match=r"no node is in zone 'zone-x'") as error:
        chaos.nodes.zone_outage("zone-x")
    # Other tests' pools (and the real node) add zones of their own while this runs.
    listed = str(error.value).split("zones that exist: ", 1)[1]
    zones = {entry.split(" (")[0]: entry for entry in listed.rstrip(".").split(", ")}
    assert [zones[z] for z in "abc"] == ["a (1 node(s))", "b (1 node(s))", "c (1 node(s))"]


# ----------------------------------------------------------------------------- bad input, safety


def test_a_selector_that_matches_no_node_lists_the_nodes(pool: NodePool, chaos: Chaos) -> None:
    with pytest.raises(TargetingError, match=r"no nodes match selector") as error:
        chaos.nodes.drain(selector=f"{pool.selector}-typo")
    assert "kwok-node-0 (" in str(error.value)
    assert f"did you mean '{pool.selector}'?" in str(error.value)


def test_count_above_the_matching_nodes_says_which_match(pool: NodePool, chaos: Chaos) -> None:
    with pytest.raises(TargetingError, match=r"count=3 needs 3 distinct nodes but only 2 match"):
        chaos.nodes.cordon(selector=pool.selector, count=3)


def test_count_picks_distinct_nodes(pool: NodePool, chaos: Chaos) -> None:
    fault = chaos.nodes.cordon(selector=pool.selector, count=2)
    assert sorted(fault.targets) == sorted(pool.nodes)


def test_hosting_with_no_pods_says_what_pods_exist(chaos: Chaos, chaos_namespace: str) -> None:
    with pytest.raises(TargetingError, match=r"no node hosts the pods of hosting="):
        chaos.nodes.cordon(hosting="app=nothing", namespace=chaos_namespace)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.nodes.cordon(), r"say which nodes"),
        (lambda c: c.nodes.cordon("n", count=0), r"count=0 must be a whole number >= 1"),
        (lambda c: c.nodes.drain("n", timeout="soon"), r"timeout='soon' is not a duration"),
        (lambda c: c.nodes.drain("n", concurrency=0), r"concurrency=0"),
        (lambda c: c.nodes.taint("k", name="n", effect="NoExecution"), r"not a taint effect"),
        (lambda c: c.nodes.taint("bad key!", name="n"), r"key='bad key!' must be a taint key"),
        (lambda c: c.nodes.cordon(hosting="app=web"), r"needs namespace="),
        (lambda c: c.nodes.cordon(selector="app==="), r"selector="),
        (lambda c: c.nodes.zone_outage("a", how="explode"), r"how='explode' must be one of"),
    ],
)
def test_bad_arguments_fail_before_anything_is_touched(
    chaos: Chaos, call: Any, message: str
) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        call(chaos)
    assert chaos.faults == []


def test_a_dry_run_plans_the_drain_and_touches_nothing(
    kube: Kube,
    pool: NodePool,
    chaos_session: ChaosSession,
    steady: Steady,
    chaos_namespace: str,
) -> None:
    deploy(kube, steady, chaos_namespace, pool.deployment("web", replicas=1), ready=1)
    before = pool.states()
    nodes = dry_context(kube, chaos_session, dry_run=True, safety=chaos_session.safety)

    with pytest.raises(pytest.skip.Exception, match=r"would drain pool-.*: evict 1 pod"):
        nodes.drain(selector=pool.selector, count=2)

    assert pool.states() == before
    assert records_of(kube, pool) == []
    steady.pods("app=web", namespace=chaos_namespace).assert_count(1)


def test_the_blast_radius_over_nodes_is_enforced_before_anything_is_touched(
    kube: Kube, pool: NodePool, chaos_session: ChaosSession
) -> None:
    settings = dataclasses.replace(chaos_session.settings, max_percent=1)
    safety = Safety(settings, kube.context)
    before = pool.states()
    nodes = dry_context(kube, chaos_session, dry_run=False, safety=safety)

    with pytest.raises(SafetyError, match=r"refusing to hit 2 of \d+ schedulable nodes"):
        nodes.drain(selector=pool.selector, count=2)

    assert pool.states() == before
    assert records_of(kube, pool) == []
