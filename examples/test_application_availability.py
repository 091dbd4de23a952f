"""Application Availability: fault-tolerant is not highly available; two instances are.

The chapter "Experimenting With Application Availability" of *The DevOps Toolkit: Chaos
Engineering* kills an instance of ``go-demo-8`` (a Deployment now, so it comes back) and asks
whether the application stayed available meanwhile:

* ``chaos/health.yaml`` checks ``all_microservices_healthy`` right after the kill and deviates;
  ``health-pause.yaml`` waits 10 s and completes: a new instance is up within 10 s.
* ``health-http.yaml`` sends ``GET /demo/person`` through the Ingress 2 s after the kill and
  deviates: with one replica there is a gap with nothing to answer.
* The fix is a second replica (the book gets it from an HPA with ``minReplicas: 2``): the same
  experiment completes, the other replica answers while the killed one is replaced. Here the
  Deployment asks for 2 replicas directly, which is what the HPA's minimum amounts to (and the
  HPA controller only looks at a new HPA after its 15 s sync period).
* ``health-db.yaml`` kills the single MongoDB instance instead and deviates: the dependency
  has to be highly available too.

The embedded local cluster (``chaos_cluster = local``) runs no process in its pods (its nodes are
fake), so no HTTP request can be sent; a real-node profile will allow ``steady.http`` probes. What
the API does show is what a Service routes to: the pods that are Ready. So these tests watch every
change of the pods during the kill and check the fewest Ready pods at any moment: 0 means a gap
in which every request would have failed (the book's deviation), 1 or more means something could
answer all along. Replacements are instant on fake nodes, which is why the gap is observed by
watching, not by probing after the kill (by then it is already over).

A PodDisruptionBudget would not change any of this: it guards evictions (``kubectl drain``), and
killing a pod is a plain delete.

Run with ``pytest -m chaos examples/``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from examples.manifests import (
    go_demo_8_db_deployment,
    go_demo_8_db_service,
    go_demo_8_deployment,
    go_demo_8_service,
)
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady

pytestmark = pytest.mark.chaos


def is_ready(pod: Any) -> bool:
    """Running, Ready and not on its way out: what a Service sends requests to."""
    conditions = pod.status.conditions or []
    return (
        pod.metadata.deletion_timestamp is None
        and pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in conditions)
    )


@contextmanager
def ready_pods_over_time(
    kube: Kube, namespace: str, selector: str, *, replicas: int
) -> Iterator[list[int]]:
    """Count the Ready pods after every change the API reports, from now until recovery.

    Yields the list of counts (the first is the state before the block). Leaving the block waits
    until ``replicas`` pods are Ready again, one of them a replacement, and raises WaitTimeout
    after 30 s (an error inside the block surfaces once that watch has ended).
    """
    counts: list[int] = []
    listed = threading.Event()
    before: set[str] = set()

    def observe(pods: list[Any]) -> bool:
        ready = [pod for pod in pods if is_ready(pod)]
        if not listed.is_set():
            before.update(pod.metadata.uid for pod in pods)
            listed.set()
        counts.append(len(ready))
        return len(ready) >= replicas and any(pod.metadata.uid not in before for pod in ready)

    with ThreadPoolExecutor(max_workers=1) as pool:
        watching = pool.submit(
            kube.wait,
            functools.partial(kube.core.list_namespaced_pod, namespace),
            observe,
            within=30,
            what=f"{replicas} ready pod(s) matching {selector}, one of them a replacement",
            label_selector=selector,
        )
        if not listed.wait(timeout=30):
            watching.result()  # the first list failed: raise its error
        yield counts
        watching.result()


def deploy_go_demo_8(kube: Kube, steady: Steady, namespace: str, *, api_replicas: int) -> None:
    """``kubectl apply -f k8s/terminate-pods/app`` (API and DB) plus the API's Service."""
    kube.core.create_namespaced_service(namespace, go_demo_8_db_service())
    kube.apps.create_namespaced_deployment(namespace, go_demo_8_db_deployment())
    kube.core.create_namespaced_service(namespace, go_demo_8_service())
    kube.apps.create_namespaced_deployment(namespace, go_demo_8_deployment(api_replicas))
    steady.namespace(namespace).assert_ready(within=30)  # all_microservices_healthy


@pytest.mark.parametrize(
    ("selector", "replicas"),
    [
        pytest.param("app=go-demo-8", 1, id="api-1-replica"),  # health-http.yaml deviates
        pytest.param("app=go-demo-8", 2, id="api-2-replicas"),  # ... and completes with 2
        pytest.param("app=go-demo-8-db", 1, id="db-1-replica"),  # health-db.yaml deviates
    ],
)
def test_killing_an_instance(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str, selector: str, replicas: int
) -> None:
    deploy_go_demo_8(kube, steady, chaos_namespace, api_replicas=replicas)

    with ready_pods_over_time(kube, chaos_namespace, selector, replicas=replicas) as ready:
        chaos.pods.kill(selector, namespace=chaos_namespace)

    assert ready[0] == replicas
    # One instance: between the kill and the replacement nothing could answer (the book's HTTP
    # probe failed). Two: the other one was Ready at every moment while the first was replaced.
    assert min(ready) == replicas - 1
    # health-pause.yaml: within 10 s of the kill everything is healthy again (fault tolerance).
    steady.namespace(chaos_namespace).assert_ready(within=10)
