"""A Spring Boot frontend loses its backend: the backend Deployment is deleted, then restored.

Reproduces "Chaos Toolkit Sample using Azure Kubernetes Service/Spring Boot": a ``frontend`` that
calls ``http://backend:8081/message`` and a ``backend``, each a Deployment with a Service. Its
experiment "System is resilient to backend failures" deletes the backend Deployment (an operator
mistake or a failed pipeline, or an external API that is down) and probes the frontend 10 s later:

* v1 of the frontend (no circuit breaker) stops answering: the experiment deviates;
* v2 (Resilience4j, ``onErrorResume`` to ``"Sorry...I'm frontend."``) answers with its fallback.

The sample declared no rollback, so the backend stayed deleted until someone ran
``kubectl apply -f manifest/backend/deployment.yaml``. ``chaos.deployments.delete`` records the
manifest before deleting and re-creates it on ``revert()``, or at teardown whatever happens.

On the embedded local cluster (``chaos_cluster = local``) the pods run no process (fake nodes), so
the frontend cannot be asked anything. What the test checks, through the API, is what the
frontend's ``http://backend:8081`` would reach: the ``backend`` Service's EndpointSlices, which
list the Ready backend pods. Asserting the frontend's answer (an error with v1, the fallback text
with v2) needs real traffic: ``steady.http`` on a cluster with real nodes.

Run with ``pytest -m chaos examples/``.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from kubernetes import client

from examples.manifests import (
    backend_deployment,
    backend_service,
    frontend_deployment,
    frontend_service,
)
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady

pytestmark = pytest.mark.chaos


def ready_endpoints(slices: list[Any]) -> int:
    """How many addresses of a Service's EndpointSlices would receive traffic."""
    return sum(
        1
        for endpoint_slice in slices
        for endpoint in endpoint_slice.endpoints or []
        if endpoint.conditions and endpoint.conditions.ready
    )


def wait_for_backend_endpoints(
    kube: Kube, namespace: str, *, ready: bool, within: float = 30
) -> None:
    """Wait until the ``backend`` Service routes to some Ready pod (ready=True) or to none."""
    discovery = client.DiscoveryV1Api(kube.api_client)
    kube.wait(
        functools.partial(discovery.list_namespaced_endpoint_slice, namespace),
        lambda slices: (ready_endpoints(slices) > 0) == ready,
        within=within,
        what=f"Service backend {'with' if ready else 'without'} ready endpoints",
        label_selector="kubernetes.io/service-name=backend",
    )


def test_deleted_backend_deployment_is_restored_exactly(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    for service in (backend_service(), frontend_service()):
        kube.core.create_namespaced_service(chaos_namespace, service)
    for deployment in (backend_deployment(), frontend_deployment()):
        kube.apps.create_namespaced_deployment(chaos_namespace, deployment)
    # "Services are all available and healthy": both Deployments, and a backend to call.
    steady.namespace(chaos_namespace).assert_ready(within=30)
    wait_for_backend_endpoints(kube, chaos_namespace, ready=True)
    before = kube.serialize(kube.apps.read_namespaced_deployment("backend", chaos_namespace))

    # For a fixed namespace the marker form does the same around the whole test:
    #   @pytest.mark.chaos_deployment_delete("backend", namespace="shop")
    # chaos_namespace is only known when the test runs, so the fixture twin is used here.
    outage = chaos.deployments.delete("backend", namespace=chaos_namespace)

    # What the frontend's http://backend:8081/message now reaches: a Service with nobody behind.
    wait_for_backend_endpoints(kube, chaos_namespace, ready=False)
    steady.pods("app=backend", namespace=chaos_namespace).assert_count(0)
    # The frontend itself is untouched; whether it still answers is for steady.http to tell.
    steady.deployment("frontend", namespace=chaos_namespace).assert_available()

    outage.revert()  # what the sample had to do by hand, with kubectl apply

    after = kube.serialize(kube.apps.read_namespaced_deployment("backend", chaos_namespace))
    assert after["spec"] == before["spec"]
    assert after["metadata"]["labels"] == before["metadata"]["labels"]
    assert after["metadata"]["uid"] != before["metadata"]["uid"]  # a new object, same definition
    steady.deployment("backend", namespace=chaos_namespace).assert_available(within=30)
    wait_for_backend_endpoints(kube, chaos_namespace, ready=True)
