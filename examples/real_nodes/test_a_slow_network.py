"""A slow network for real: every answer of the app 300 ms late, and fast again after.

``chaos.network.latency`` delays the packets a pod sends. On real nodes it acts in the pod's own
network namespace: with ``tc netem`` where the kernel has it, else (as on this machine, whose
kernel has no ``sch_netem``) through an NFQUEUE delayer of pytest-chaos's toolbox; the fault's
``details["mechanism"]`` says which. A client on the host, going through the Service as users do,
measures the effect: the median answer takes at least the delay, and after the revert it is back
under 30 ms.

Run with ``pytest -m chaos examples/real_nodes --chaos-local-real-nodes=3 --chaos-local-nodes=0``
(``make demo`` does); with fewer than three real nodes this test skips, saying so.
"""

from __future__ import annotations

import statistics

import httpx

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady

from .apps import start_web


def median_seconds(url: str, requests: int = 9) -> float:
    """The median time of requests GETs on one kept-alive connection, as a client sees it."""
    with httpx.Client(timeout=5) as client:
        client.get(url).raise_for_status()  # the connection is set up outside the count
        took = [client.get(url).elapsed.total_seconds() for _ in range(requests)]
    return statistics.median(took)


def test_latency_delays_every_answer_and_the_revert_ends_it(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    url = start_web(kube, chaos_namespace, replicas=1)
    steady.http(url).assert_ok(within=15, consecutive=5, every=0.05)

    fault = chaos.network.latency("app=web", namespace=chaos_namespace, delay="300ms")
    slow = median_seconds(url)
    fault.revert()
    fast = median_seconds(url)

    assert slow >= 0.3, f"median {slow * 1000:.0f} ms under a 300 ms latency"
    assert fast < 0.03, f"median {fast * 1000:.0f} ms after the revert"
