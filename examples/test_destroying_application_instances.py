"""Destroying Application Instances: a bare Pod is gone for good, a Deployment's pod comes back.

The chapter "Destroying Application Instances" of *The DevOps Toolkit: Chaos Engineering*
terminates the demo application ``go-demo-8`` with Chaos Toolkit
(``chaosk8s.pod.actions.terminate_pods``, ``label_selector: app=go-demo-8``) and checks the
hypothesis "a pod labelled app=go-demo-8 exists, is Running and is Ready" before and after:

* against a bare Pod (``k8s/terminate-pods/pod.yaml``) the experiment deviates: nothing recreates
  the pod, the application is gone. A bare Pod is not fault-tolerant.
* against the same container in a Deployment (``k8s/terminate-pods/deployment.yaml``) it
  completes: the ReplicaSet creates a replacement. Fault-tolerant (not yet highly available:
  see ``test_application_availability.py``).

What differs from the book, on purpose:

* The book needed ``pauses: {after: 10}`` because its post-check raced the deletion (its first
  run was a false pass: the "deleted" pod was still Terminating). ``chaos.pods.kill`` returns only
  once the pod is really gone, and the checks wait by watching the API with a deadline, so the
  10 seconds become ``within=10``: the longest we are willing to wait, not a sleep.
* The book found out that the API never got Ready without its MongoDB; here the database is
  deployed first.

On the embedded local cluster (``chaos_cluster = local``) nodes are fake: pods become Running and
Ready at once and run no process, so everything is checked through the API, as the book's probes
did. Run with ``pytest -m chaos examples/``.
"""

from __future__ import annotations

import pytest

from examples.manifests import (
    go_demo_8_db_deployment,
    go_demo_8_db_service,
    go_demo_8_deployment,
    go_demo_8_pod,
)
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.errors import NotSteadyError
from pytest_chaos.steady import Steady

pytestmark = pytest.mark.chaos


def deploy_db(kube: Kube, steady: Steady, namespace: str) -> None:
    """``kubectl apply -f k8s/db`` and ``kubectl rollout status deployment go-demo-8-db``."""
    kube.core.create_namespaced_service(namespace, go_demo_8_db_service())
    kube.apps.create_namespaced_deployment(namespace, go_demo_8_db_deployment())
    steady.deployment("go-demo-8-db", namespace=namespace).assert_available(within=30)


def test_a_bare_pod_is_gone_for_good(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    deploy_db(kube, steady, chaos_namespace)
    kube.core.create_namespaced_pod(chaos_namespace, go_demo_8_pod())
    api = steady.pods("app=go-demo-8", namespace=chaos_namespace)
    api.assert_ready(within=30)  # the book's pod-exists, pod-in-phase and pod-in-conditions

    killed = chaos.pods.kill("app=go-demo-8", namespace=chaos_namespace)

    assert killed.targets == (f"{chaos_namespace}/go-demo-8",)
    # The lesson: nothing brings a bare Pod back. Watch for 10 s (the book's pause); the check
    # would pass the moment a Ready pod labelled app=go-demo-8 appeared, and none does.
    with pytest.raises(NotSteadyError):
        api.assert_ready(within=10)
    assert not kube.core.list_namespaced_pod(chaos_namespace, label_selector="app=go-demo-8").items


def test_a_deployment_replaces_the_killed_pod(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    deploy_db(kube, steady, chaos_namespace)
    kube.apps.create_namespaced_deployment(chaos_namespace, go_demo_8_deployment())
    go_demo_8 = steady.deployment("go-demo-8", namespace=chaos_namespace)
    go_demo_8.assert_available(within=30)  # kubectl rollout status deployment go-demo-8

    killed = chaos.pods.kill("app=go-demo-8", namespace=chaos_namespace)

    [target] = killed.targets  # "<namespace>/<pod name>"
    victim = target.split("/", 1)[1]
    # Within 10 s a new Ready pod serves app=go-demo-8, and it is not the one we killed.
    pods = steady.pods("app=go-demo-8", namespace=chaos_namespace).assert_count(1, within=10)
    assert victim not in {pod.metadata.name for pod in pods}
    go_demo_8.assert_available(within=10)
