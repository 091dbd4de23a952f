"""Small manifest builders shared by the end-to-end tests."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_chaos import Kube
from pytest_chaos.ledger import read_cluster
from pytest_chaos.steady.diagnosis import pod_ready


def deployment(
    name: str, *, replicas: int, image: str = "registry.example/web:1.0"
) -> dict[str, Any]:
    """A Deployment of one container labelled app=<name>."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
    }


def pdb(name: str, *, min_available: int) -> dict[str, Any]:
    """A PodDisruptionBudget over app=<name>."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": name}}},
    }


def virtual_service(name: str, *, host: str, api_version: str = "v1") -> dict[str, Any]:
    """A VirtualService routing host to itself with a 50% HTTP abort fault."""
    return {
        "apiVersion": f"networking.istio.io/{api_version}",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 50.0}}},
                    "route": [{"destination": {"host": host}}],
                }
            ],
        },
    }


@contextmanager
def namespace_with(kube: Kube, prefix: str, deployments: dict[str, int]) -> Iterator[str]:
    """A fresh namespace with these Deployments (name: replicas), all pods Ready; then deleted.

    For tests whose inner runs need a namespace name known in advance (chaos_namespace is random
    and made inside the run).
    """
    namespace = f"{prefix}-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": namespace}})
    try:
        kube.wait(
            functools.partial(kube.core.list_namespaced_service_account, namespace),
            lambda accounts: any(a.metadata.name == "default" for a in accounts),
            within=60,
            what="default service account",
        )
        for name, replicas in deployments.items():
            kube.apps.create_namespaced_deployment(namespace, deployment(name, replicas=replicas))
        kube.wait(
            functools.partial(kube.core.list_namespaced_pod, namespace),
            lambda pods: sum(pod_ready(p) for p in pods) == sum(deployments.values()),
            within=60,
            what="every pod ready",
        )
        yield namespace
    finally:
        kube.core.delete_namespace(namespace)


def ephemeral(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A pod's ephemeral containers (JSON) by name."""
    return {c["name"]: c for c in pod["spec"].get("ephemeralContainers") or []}


def records_in(kube: Kube, namespace: str) -> list[str]:
    """The ids of the open undo records about objects in namespace."""
    return [r.id for r in read_cluster(kube) if r.namespace == namespace]
