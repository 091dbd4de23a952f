"""Nodes picked by a namespace alone: ``chaos.nodes.drain(namespace="go-demo-8")``.

The nodes hosting any (scheduled, not terminating) pod of the namespace, whatever its labels;
``count=`` picks among them. Each test works on a pool of kwok nodes of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from examples.nodes import NodePool, node_pool
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.errors import TargetingError
from pytest_chaos.steady import Steady


@pytest.fixture
def pool3(kube: Kube) -> Iterator[NodePool]:
    """Three extra Ready nodes (set up before `chaos`, so faults are reverted before they go)."""
    with node_pool(kube, 3, prefix="nsnodes") as created:
        yield created


def spread(kube: Kube, steady: Steady, pool: NodePool, namespace: str) -> list[str]:
    """Two workloads with different labels on the pool: web on two nodes, db on one."""
    kube.apps.create_namespaced_deployment(
        namespace, pool.deployment("web", replicas=2, one_per_node=True)
    )
    kube.apps.create_namespaced_deployment(namespace, pool.deployment("db", replicas=1))
    steady.pods("app=web", namespace=namespace).assert_count(2, within=60)
    steady.pods("app=db", namespace=namespace).assert_count(1, within=60)
    return sorted(set(pool.host_of(namespace, "app=web")) | set(pool.host_of(namespace, "app=db")))


def test_a_namespace_alone_picks_the_nodes_hosting_any_of_its_pods(
    kube: Kube, pool3: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    hosts = spread(kube, steady, pool3, chaos_namespace)

    fault = chaos.nodes.cordon(namespace=chaos_namespace, count=len(hosts))

    assert sorted(fault.targets) == hosts
    fault.revert()
    with pytest.raises(TargetingError, match=rf"count={len(hosts) + 1} needs .* only {len(hosts)}"):
        chaos.nodes.cordon(namespace=chaos_namespace, count=len(hosts) + 1)


def test_drain_by_namespace_drains_a_node_of_it_and_the_workloads_recover(
    kube: Kube, pool3: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    hosts = spread(kube, steady, pool3, chaos_namespace)
    before = pool3.states()

    fault = chaos.nodes.drain(namespace=chaos_namespace, timeout="60s")

    [drained] = fault.targets
    assert drained in hosts
    assert kube.core.read_node(drained).spec.unschedulable is True
    left = kube.core.list_namespaced_pod(chaos_namespace, field_selector=f"spec.nodeName={drained}")
    assert [p for p in left.items if not p.metadata.deletion_timestamp] == []
    fault.revert()
    assert pool3.states() == before


def test_a_taint_by_namespace_and_selector_takes_the_nodes_both_pick(
    kube: Kube, pool3: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    hosts = spread(kube, steady, pool3, chaos_namespace)

    fault = chaos.nodes.taint(
        "chaos/test", selector=pool3.selector, namespace=chaos_namespace, count=len(hosts)
    )

    assert sorted(fault.targets) == hosts


def test_a_namespace_without_pods_on_any_node_says_so(chaos: Chaos, chaos_namespace: str) -> None:
    with pytest.raises(
        TargetingError,
        match=rf"no node hosts a pod of namespace '{chaos_namespace}': namespace "
        rf"'{chaos_namespace}' has no pods",
    ):
        chaos.nodes.drain(namespace=chaos_namespace)
    assert chaos.faults == []
