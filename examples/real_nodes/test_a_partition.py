"""A network partition for real, and what it does not do to a connection already open.

``chaos.network.partition`` isolates pods with a NetworkPolicy. On the embedded cluster's real
nodes kube-network-policies enforces it, so its effect is real: a new connection between the
partitioned pods is dropped (the connect times out). But the enforcer judges only the first
packet of a connection, as every NetworkPolicy implementation does: a connection opened before
the partition keeps carrying messages. A worker that holds one connection to its message broker
does not notice a partition at all — the finding of the NATS seed. ``chaos.network.cut`` is the
fault that ends open connections; after it, the worker's redials meet the partition.

Run with ``pytest -m chaos examples/real_nodes --chaos-local-real-nodes=3 --chaos-local-nodes=0``
(``make demo`` does); with fewer than three real nodes this test skips, saying so.
"""

from __future__ import annotations

from typing import Any

import httpx

from pytest_chaos import Kube, eventually
from pytest_chaos.chaos import Chaos

from .apps import start_broker_and_worker


def state(url: str) -> dict[str, Any]:
    """What the broker or worker reports on ``/broker`` (read from the host, outside it)."""
    answer: dict[str, Any] = httpx.get(url, timeout=3).raise_for_status().json()
    return answer


def test_a_partition_drops_new_connections_but_an_open_one_needs_a_cut(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    broker, worker = start_broker_and_worker(kube, chaos_namespace)

    def connected() -> None:
        assert state(worker)["connected"], "the worker is not connected yet"

    eventually(connected)

    partition = chaos.network.partition("app=broker", namespace=chaos_namespace, peers="app=worker")
    lines = state(broker)["lines"]

    def still_flowing() -> None:  # the connection from before the partition carries messages
        assert state(broker)["lines"] >= lines + 4

    eventually(still_flowing, within=10)
    assert state(worker)["disconnects"] == 0, "a partition alone ended an open connection"

    cut = chaos.network.cut("app=worker", namespace=chaos_namespace, to="broker")

    def disconnected() -> None:
        assert state(worker)["disconnects"] >= 1, "the cut has not ended the connection yet"

    eventually(disconnected, within=15)
    cut.revert()

    def redials_dropped() -> None:  # the cut is gone; the partition drops every new connection
        now = state(worker)
        assert not now["connected"], now
        assert "timeout" in now["last_error"], now

    eventually(redials_dropped, within=15)

    partition.revert()

    def reconnected() -> None:  # the worker redials with a backoff of up to 5 s
        now = state(worker)
        assert now["connected"], now
        assert now["connects"] >= 2, now

    eventually(reconnected, within=30)
