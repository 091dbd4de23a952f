"""Small manifest builders shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any


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
