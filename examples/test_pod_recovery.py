"""A Deployment with two replicas gets a deleted pod back.

The first experiment of "Destroying Application Instances": kill an instance of an application
that a Deployment owns, and check that Kubernetes brings the application back to full strength.
Run it with ``pytest -m chaos examples/`` (``make demo`` does, on the embedded local cluster).
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from pytest_chaos import Kube

pytestmark = pytest.mark.chaos


def web_deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "example/web:1.0"}]},
            },
        },
    }


def is_ready(pod: Any) -> bool:
    """Running, Ready and not on its way out: what serving traffic takes."""
    conditions = pod.status.conditions or []
    return (
        pod.metadata.deletion_timestamp is None
        and pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in conditions)
    )


def test_deleted_pod_of_a_two_replica_deployment_comes_back(
    kube: Kube, chaos_namespace: str
) -> None:
    web_pods = functools.partial(kube.core.list_namespaced_pod, chaos_namespace)
    kube.apps.create_namespaced_deployment(chaos_namespace, web_deployment(replicas=2))
    steady = kube.wait(
        web_pods,
        lambda pods: sum(map(is_ready, pods)) == 2,
        within=60,
        what="2 ready web pods",
        label_selector="app=web",
    )
    victim = steady[0]

    kube.core.delete_namespaced_pod(victim.metadata.name, chaos_namespace)

    recovered = kube.wait(
        web_pods,
        lambda pods: sum(map(is_ready, pods)) == 2
        and all(p.metadata.uid != victim.metadata.uid for p in pods),
        within=60,
        what="the deleted pod replaced and 2 web pods ready again",
        label_selector="app=web",
    )
    assert victim.metadata.uid not in {p.metadata.uid for p in recovered}
