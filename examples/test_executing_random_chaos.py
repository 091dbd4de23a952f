"""Executing Random Chaos: kill any pod of the namespace on a schedule, and the macaque seed's cron.

The chapter "Executing Random Chaos" of *The DevOps Toolkit: Chaos Engineering* moves from
experiments aimed at one application to random destruction: any pod of a namespace, again and
again, while the steady state is watched (kube-monkey and the macaque seed, a cron job that
deletes a random pod, do the same). ``chaos.random.pods`` is that, as a fault of the test:

* a seeded schedule (the run's seed; ``--chaos-seed`` replays the same victims in the same order);
* ``max_in_flight=1``: a tick skips while a killed pod is not yet replaced and Ready, so three
  replicas keep two Ready, which the monitor checks;
* the schedule stops when the ``with`` block ends (on failure too), and every kill (time, pod,
  node) is in the timeline, the journal and the HTML report.

What differs from the book, on purpose: the book's random pod killer ran until someone stopped
it, and its report was whatever was in the logs. Here the schedule is bounded (``for_``), the
victims are replayable, and the test's verdict is what the monitor saw.

Run with ``pytest -m chaos examples/``; ``pytest-chaos monkey`` does the same outside pytest.
"""

from __future__ import annotations

import pytest

from examples.manifests import (
    go_demo_8_db_deployment,
    go_demo_8_db_service,
    go_demo_8_deployment,
)
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady

pytestmark = pytest.mark.chaos


def test_go_demo_8_survives_a_monkey_in_its_namespace(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    kube.core.create_namespaced_service(chaos_namespace, go_demo_8_db_service())
    kube.apps.create_namespaced_deployment(chaos_namespace, go_demo_8_db_deployment())
    kube.apps.create_namespaced_deployment(chaos_namespace, go_demo_8_deployment(replicas=3))
    api = steady.deployment("go-demo-8", namespace=chaos_namespace)
    api.assert_available(within=60)

    with (
        api.monitor() as watched,
        chaos.random.pods(
            namespace=chaos_namespace,
            selector="app=go-demo-8",
            every="0.5s",
            for_="3s",
            max_in_flight=1,
        ) as monkey,
    ):
        assert monkey.wait(timeout=60)

    assert len(monkey.kills) >= 1, "the monkey killed nobody: the experiment proves nothing"
    assert all(kill.node for kill in monkey.kills)
    assert watched.min_ready is not None
    assert watched.min_ready >= 2, watched  # never more than one replica down at once
    api.assert_available(within=60)
