"""Verdicts you can trust: the book's instance-kill experiment, judged over the whole fault.

"Destroying Application Instances" and "Application Availability" kill an instance of
``go-demo-8`` and ask whether it stayed available. A point check after the kill flips between
runs: it passes or fails depending on whether the replacement happened to be Ready by then. Here
the hypothesis is watched throughout the fault, in the two styles the docs recommend, so a robust
app always passes and a fragile one always fails:

* the marker style: ``steady_state(..., during=True)`` monitors the Deployment (by watch) and the
  Service (by HTTP, every 50 ms) from before the kill until its revert; a dip is "deviated during
  chaos";
* the fixture style (README's first example): ``backend.monitor()`` and an HTTP monitor around
  the fault, then ``assert_never_below`` and the availability users saw.

The app: ``robust`` (the default) is 3 replicas that shut down gracefully (a preStop pause keeps
the killed one answering until the Service has dropped it); ``fragile`` is a single replica.
``benchmarks/verdicts.py`` runs this file 10 times against each (``CHAOS_EXAMPLE_VARIANT``,
``CHAOS_EXAMPLE_RUNS``) and checks that the verdicts never flip.

Runs on the local cluster's real node (pods really serve); skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import os

import pytest

from examples.test_real_traffic import demo, service
from pytest_chaos import TEST_NAMESPACE, Kube, service_url
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady

pytestmark = [pytest.mark.chaos, pytest.mark.real_node]

VARIANT = os.environ.get("CHAOS_EXAMPLE_VARIANT", "robust")
RUNS = range(int(os.environ.get("CHAOS_EXAMPLE_RUNS", "1")))
REPLICAS = {"robust": 3, "fragile": 1}[VARIANT]


@pytest.fixture
def go_demo_8(kube: Kube, steady: Steady, chaos_namespace: str) -> str:
    """go-demo-8 behind its Service in the test's namespace, serving; returns the Service URL."""
    url = f"http://{service(kube, chaos_namespace, 'go-demo-8', port=80, target=8080)}/"
    kube.apps.create_namespaced_deployment(
        chaos_namespace, demo("go-demo-8", replicas=REPLICAS, graceful=VARIANT == "robust")
    )
    steady.deployment("go-demo-8", namespace=chaos_namespace).assert_ready(within=60)
    steady.http(url).assert_ok(within=15, consecutive=5, every=0.05)  # the Service routes
    return url


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.steady_state(
    namespace=TEST_NAMESPACE,
    deployments=[{"name": "go-demo-8", "min_ready": 1}],
    http=[{"url": service_url("go-demo-8"), "timeout": 1, "every": 0.05}],
    within="60s",
    during=True,
)
@pytest.mark.chaos_pod_kill("app=go-demo-8", namespace=TEST_NAMESPACE)
def test_killing_an_instance_users_never_notice(go_demo_8: str, run: int) -> None:
    """The marker style: no request may fail and a pod stays ready while the kill is in."""


@pytest.mark.parametrize("run", RUNS)
def test_users_barely_notice_a_pod_loss(
    chaos: Chaos, steady: Steady, chaos_namespace: str, go_demo_8: str, run: int
) -> None:
    """The fixture style: monitors around the fault, judged on what they recorded."""
    backend = steady.deployment("go-demo-8", namespace=chaos_namespace)
    backend.assert_available()
    with (
        steady.http(go_demo_8, timeout=1).monitor(every=0.05) as users,
        backend.monitor() as replicas,
    ):
        chaos.pods.kill("app=go-demo-8", namespace=chaos_namespace, mode="one")
        replicas.assert_recovered(within=60)
    replicas.assert_never_below(1)
    assert users.availability == 1.0, str(users)
