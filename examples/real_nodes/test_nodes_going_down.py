"""Nodes going down for real: a drain, a machine that stops, a zone that goes dark.

On fake nodes a drain only moves pods in the API. Here the cluster has three real nodes (each in a
network namespace of its own, with its own containerd, kubelet and kube-proxy, in zones a, b and
c), so the same faults act on running processes, and a monitor sending a request through the
Service every 50 ms measures what users saw:

* **A drain with a budget** (the book's "Draining And Deleting Nodes", with its fix applied):
  three replicas, a PodDisruptionBudget that keeps two, and a preStop pause so an evicted pod
  answers until the Service has dropped it. The drain evicts the node's pods one by one, they
  start on the other nodes, and users see at least 99% of their requests answered.
* **A machine that stops**: ``chaos.nodes.stop`` freezes the node's kubelet and containerd and
  takes its network down, as a power cut would. The Node turns NotReady, its pods stop
  answering, and after their ``tolerationSeconds`` (5 s here, 300 s by default) the taint
  manager evicts them and they come back on the other nodes. Revert starts the node again.
* **A zone outage**: ``chaos.nodes.zone_outage("c", how="stop")`` stops every node of zone c;
  the app keeps serving from zones a and b.

Run with ``pytest -m chaos examples/real_nodes --chaos-local-real-nodes=3 --chaos-local-nodes=0``
(``make demo`` does); with fewer than three real nodes these tests skip, saying so.
"""

from __future__ import annotations

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady

from .apps import node_ready, ready_pods, start_web


def test_a_drain_with_a_budget_keeps_at_least_99_percent_of_requests_answered(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    url = start_web(kube, chaos_namespace)
    steady.http(url).assert_ok(within=15, consecutive=5, every=0.05)
    victim = ready_pods(kube, chaos_namespace, 3)[0].spec.node_name

    with steady.http(url, timeout=1).monitor(every=0.05) as users:
        chaos.nodes.drain(victim)
        moved = ready_pods(kube, chaos_namespace, 3, off=victim)

    assert victim not in {p.spec.node_name for p in moved}
    assert users.availability >= 0.99, str(users)


def test_a_stopped_node_loses_its_pods_to_the_others_and_comes_back(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    url = start_web(kube, chaos_namespace)
    victim = ready_pods(kube, chaos_namespace, 3)[0].spec.node_name

    fault = chaos.nodes.stop(victim)  # returns once the Node is NotReady

    assert not node_ready(kube, victim)
    moved = ready_pods(kube, chaos_namespace, 3, off=victim)
    assert victim not in {p.spec.node_name for p in moved}
    steady.http(url).assert_ok(within=30, consecutive=10, every=0.05)

    fault.revert()
    steady.node(victim).assert_ready(within=60)


def test_a_zone_outage_stops_every_node_of_the_zone_and_the_app_serves_from_the_others(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    url = start_web(kube, chaos_namespace)

    outage = chaos.nodes.zone_outage("c", how="stop", timeout="60s")

    assert not any(node_ready(kube, node) for node in outage.targets)
    moved = ready_pods(kube, chaos_namespace, 3, off=outage.targets[0])
    assert {p.spec.node_name for p in moved}.isdisjoint(outage.targets)
    steady.http(url).assert_ok(within=30, consecutive=10, every=0.05)
