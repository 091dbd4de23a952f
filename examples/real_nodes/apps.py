"""The web app of the real-node examples: plain manifests, as a user would write them.

No nodeSelector and no toleration of ours: on real nodes a plain Deployment spreads over the
nodes by itself. The image is pytest-chaos's demo app (``/`` answers, ``/ready`` is its
readiness), already on every real node of the embedded cluster.
"""

from __future__ import annotations

import functools
from typing import Any

from pytest_chaos import Kube

DEMO_IMAGE = "localhost/pytest-chaos/demo:1.0"

#: How long a pod stays bound to a node that stopped answering (Kubernetes' default is 300 s).
TOLERATE_A_DEAD_NODE_FOR = 5


def web_deployment(*, replicas: int = 3) -> dict[str, Any]:
    """``web``: replicas of the demo app, each pausing 3 s in preStop to let the Service drop it."""
    tolerations = [
        {
            "key": key,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": TOLERATE_A_DEAD_NODE_FOR,
        }
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
    ]
    container = {
        "name": "web",
        "image": DEMO_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
        "lifecycle": {"preStop": {"sleep": {"seconds": 3}}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"tolerations": tolerations, "containers": [container]},
            },
        },
    }


def web_budget() -> dict[str, Any]:
    """At most one ``web`` pod may be evicted at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    }


def web_service() -> dict[str, Any]:
    """``web`` on port 80."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }


def start_web(kube: Kube, namespace: str, *, replicas: int = 3) -> str:
    """Deploy ``web`` with its budget and Service; its URL from the host once all are Ready."""
    kube.apps.create_namespaced_deployment(namespace, web_deployment(replicas=replicas))
    kube.policy.create_namespaced_pod_disruption_budget(namespace, web_budget())
    service = kube.core.create_namespaced_service(namespace, web_service())
    ready_pods(kube, namespace, replicas)
    return f"http://{service.spec.cluster_ip}/"


def pod_ready(pod: Any) -> bool:
    """The pod is Ready and not going away."""
    conditions = pod.status.conditions or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return ready and not pod.metadata.deletion_timestamp


def ready_pods(kube: Kube, namespace: str, count: int, *, off: str | None = None) -> list[Any]:
    """Wait for count Ready ``web`` pods (none on the node off); return them."""

    def enough(pods: list[Any]) -> bool:
        return len([p for p in pods if pod_ready(p) and p.spec.node_name != off]) == count

    pods = kube.wait(
        functools.partial(kube.core.list_namespaced_pod, namespace),
        enough,
        within=120,
        what=f"{count} Ready web pods" + (f" off {off}" if off else ""),
        label_selector="app=web",
    )
    return [p for p in pods if pod_ready(p)]


def node_ready(kube: Kube, name: str) -> bool:
    """The Node reports Ready."""
    node = kube.core.read_node(name)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
