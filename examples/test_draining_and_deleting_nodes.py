"""Draining And Deleting Nodes: a budget on a single replica blocks every drain; two replicas on
two nodes survive a drain and the loss of a node.

The chapter "Draining And Deleting Nodes" of *The DevOps Toolkit: Chaos Engineering* drains a
node with Chaos Toolkit (``chaosk8s.node.actions.drain_nodes``) and checks that every pod of
``go-demo-8`` stays healthy:

* the first drain fails: a PodDisruptionBudget (Istio's ingress gateway: "needs 1 healthy pods and
  has 1 currently") answers the eviction with HTTP 429, and because the action had already
  cordoned the node and has no rollback, the node stays ``SchedulingDisabled``. The next run then
  starts from that damage;
* the fix is two replicas of every budgeted component, on two different nodes: the drain then
  completes and the node is uncordoned by the rollback;
* deleting a node (the Node object; the VM keeps running) is survived when replicas are spread:
  the pods of the lost node are re-created elsewhere (the book saw them 33 s old). Nothing brings
  the node back without a Cluster Autoscaler.

The lessons: draining is what every cluster upgrade does, so a budget that allows no disruption
blocks upgrades too; anything with a budget needs 2+ replicas spread over 2+ nodes; and a cordon
needs an undo that runs whatever the outcome.

What differs from the book, on purpose:

* ``chaos.nodes.drain`` never leaves a half-applied fault: when a budget blocks it past its
  ``timeout``, it uncordons the node again before raising an ``InjectError`` that names the budget
  and its numbers. The test shows the node schedulable afterwards: the book's damage cannot happen.
* The undo uncordons only the node this fault cordoned (``chaosk8s.uncordon_node`` with a label
  selector uncordons every matching node, an operator's cordon included), and runs in teardown
  whatever the outcome.
* Nodes are picked by ``hosting=`` (nodes that run the app's pods), as the book meant with
  ``pod_namespace``, which today's ``chaosk8s`` ignores without ``pod_label_selector``.
* The book relied on the scheduler's default spreading for "two replicas on two nodes"; here a
  required pod anti-affinity makes it a guarantee, not a likelihood.
* The budget is the application's own rather than Istio's; the lesson is the same.

On the embedded local cluster (``chaos_cluster = local``) nodes are fake (kwok): pods become Ready
at once and run no process, and a deleted node comes back on revert because kwok manages any Node
annotated ``kwok.x-k8s.io/node: fake``; on a cloud cluster the VM's kubelet would re-register it.
The cluster's own three nodes run other tests' pods, so each test adds a small pool of nodes of
its own (``examples/nodes.py``) and pins the app there. What the local cluster cannot show: the
orphaned VM and its still-running containers after a node deletion, and real shutdown times.
Run with ``pytest -m chaos examples/``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from examples.manifests import go_demo_8_deployment
from examples.nodes import NodePool, node_pool
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.errors import InjectError
from pytest_chaos.steady import Steady
from pytest_chaos.steady.diagnosis import pod_ready

pytestmark = pytest.mark.chaos


@pytest.fixture
def nodes(kube: Kube) -> Iterator[NodePool]:
    """Three extra nodes of our own (a multi-node cluster: the book's first requirement)."""
    with node_pool(kube, 3, prefix="book") as pool:
        yield pool


def budget() -> dict[str, object]:
    """A PodDisruptionBudget: at least one go-demo-8 pod must stay up through any eviction."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "go-demo-8"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "go-demo-8"}}},
    }


def deploy(kube: Kube, steady: Steady, nodes: NodePool, namespace: str, replicas: int) -> None:
    """go-demo-8 with its budget, pinned to our nodes, one replica per node, all available."""
    kube.policy.create_namespaced_pod_disruption_budget(namespace, budget())
    app = nodes.pin(go_demo_8_deployment(replicas=replicas), one_per_node=True)
    kube.apps.create_namespaced_deployment(namespace, app)
    steady.deployment("go-demo-8", namespace=namespace).assert_available(within=30)


def test_a_budget_on_a_single_replica_blocks_the_drain_and_the_node_is_uncordoned(
    kube: Kube, chaos: Chaos, steady: Steady, nodes: NodePool, chaos_namespace: str
) -> None:
    deploy(kube, steady, nodes, chaos_namespace, replicas=1)
    [node] = nodes.host_of(chaos_namespace, "app=go-demo-8")

    # The book's node-drain.yaml: drain a node that runs the app's pods.
    with pytest.raises(InjectError) as blocked:
        chaos.nodes.drain(hosting="app=go-demo-8", namespace=chaos_namespace, timeout="5s")

    # The error names the budget and why it said no, as the book's 429 did...
    assert f"PodDisruptionBudget {chaos_namespace}/go-demo-8" in str(blocked.value)
    assert "1 healthy, 1 needed, 0 disruption(s) allowed" in str(blocked.value)
    # ...but unlike the book's run, the node is not left SchedulingDisabled.
    steady.node(node).assert_ready()
    steady.deployment("go-demo-8", namespace=chaos_namespace).assert_available()


def test_two_replicas_on_two_nodes_survive_a_drain(
    kube: Kube, chaos: Chaos, steady: Steady, nodes: NodePool, chaos_namespace: str
) -> None:
    deploy(kube, steady, nodes, chaos_namespace, replicas=2)
    go_demo_8 = steady.deployment("go-demo-8", namespace=chaos_namespace)

    with chaos.nodes.drain(hosting="app=go-demo-8", namespace=chaos_namespace) as drain:
        [drained] = drain.targets
        # The budget let one replica go and kept the other serving throughout.
        pods = kube.core.list_namespaced_pod(chaos_namespace, label_selector="app=go-demo-8")
        assert any(pod_ready(p) for p in pods.items)
        # The evicted replica is re-created on the third node; the app is whole again.
        go_demo_8.assert_available(within=30)
        assert drained not in nodes.host_of(chaos_namespace, "app=go-demo-8")

    # The undo (the book's uncordon rollback) ran: the node takes pods again.
    steady.node(drained).assert_ready()
    go_demo_8.assert_available()


def test_the_app_survives_the_loss_of_a_node_and_the_node_comes_back(
    kube: Kube, chaos: Chaos, steady: Steady, nodes: NodePool, chaos_namespace: str
) -> None:
    deploy(kube, steady, nodes, chaos_namespace, replicas=2)
    go_demo_8 = steady.deployment("go-demo-8", namespace=chaos_namespace)

    # The book's node-delete.yaml: delete the Node object of a node that runs the app.
    deleted = chaos.nodes.delete(hosting="app=go-demo-8", namespace=chaos_namespace)
    [node] = deleted.targets
    assert node not in {n.metadata.name for n in kube.core.list_node().items}
    go_demo_8.assert_available()  # the replica on the other node still serves

    # The pod garbage collector deletes the pods of a vanished node after a quarantine of about
    # 40 s; the ReplicaSet then re-creates the lost replica on the third node (the book saw
    # pods aged 33 s). Until then, the lost pod still looks Ready: only the API says it is.
    kube.wait(
        functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
        lambda pods: sum(pod_ready(p) for p in pods) == 2
        and all(p.spec.node_name != node for p in pods),
        within=120,
        what=f"both replicas Ready, none on the deleted node {node}",
        label_selector="app=go-demo-8",
    )
    go_demo_8.assert_available(within=10)

    deleted.revert()  # no autoscaler here: the undo re-creates the Node from its manifest
    steady.node(node).assert_ready(within=30)
    go_demo_8.assert_available(within=30)
