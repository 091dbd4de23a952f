"""Scale a Deployment to zero for the length of a ``with`` block; the replicas come back after.

Every fault pytest-chaos returns is also a context manager: the block is the time the fault
lasts, and leaving it reverts the fault, however the block ends (an assertion failing inside it
included). ``chaos.deployments.scale`` records the replica count first and sets it back on
revert, unless someone else changed it meanwhile (then it reports drift instead of clobbering).

Scaled to zero, a service is entirely gone, not one instance of it: no controller brings its
pods back until the fault is reverted. (The book meets such a total outage at the end of its
network chapter, as a 100% abort, and concludes that only the callers can cope with it.)

On the embedded local cluster (``chaos_cluster = local``) nodes are fake and pods run no process;
everything is checked through the API. Run with ``pytest -m chaos examples/``.
"""

from __future__ import annotations

import functools

import pytest

from examples.manifests import web_deployment
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady

pytestmark = pytest.mark.chaos


def test_scaled_to_zero_inside_the_block_and_back_after(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    kube.apps.create_namespaced_deployment(chaos_namespace, web_deployment(replicas=3))
    web = steady.deployment("web", namespace=chaos_namespace)
    web.assert_ready(within=30)

    with chaos.deployments.scale("web", namespace=chaos_namespace, replicas=0) as fault:
        assert fault.details == {"from": 3, "to": 0}
        # Every web pod goes away: no controller recreates what the desired state removed.
        kube.wait(
            functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
            lambda pods: not pods,
            within=30,
            what="no web pods left",
            label_selector="app=web",
        )
        web.assert_count(0, within=10)

    assert not fault.active
    assert kube.apps.read_namespaced_deployment("web", chaos_namespace).spec.replicas == 3
    web.assert_ready(within=30)
    steady.pods("app=web", namespace=chaos_namespace).assert_count(3, within=10)
