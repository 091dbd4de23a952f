"""The manifests the examples deploy, as plain dicts (the Kubernetes client accepts them as is).

``go-demo-8`` is the demo application of *The DevOps Toolkit: Chaos Engineering* (Viktor Farcic,
Darin Pope): a Go API (``vfarcic/go-demo-8``) that talks to MongoDB (``go-demo-8-db``). The
definitions follow the book's ``k8s/terminate-pods/pod.yaml``, ``deployment.yaml``, ``k8s/db`` and
``k8s/health/ingress.yaml``. ``frontend``/``backend`` are the Spring Boot pair of the Chaos
Toolkit on AKS sample, where the frontend calls ``http://backend:8081/message``.

On the embedded local cluster the images are never pulled (its nodes are fake): pods become
Running and Ready at once, so these manifests describe the workloads without running them.
"""

from __future__ import annotations

from typing import Any

GO_DEMO_8_IMAGE = "vfarcic/go-demo-8:0.0.1"


def _go_demo_8_container() -> dict[str, Any]:
    """The API container, with the book's probes and resources."""
    return {
        "name": "go-demo-8",
        "image": GO_DEMO_8_IMAGE,
        "env": [
            {"name": "DB", "value": "go-demo-8-db"},
            {"name": "VERSION", "value": "0.0.1"},
        ],
        "ports": [{"containerPort": 8080}],
        "livenessProbe": {"httpGet": {"path": "/", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
        "resources": {
            "limits": {"cpu": "100m", "memory": "50Mi"},
            "requests": {"cpu": "50m", "memory": "20Mi"},
        },
    }


def go_demo_8_pod() -> dict[str, Any]:
    """``k8s/terminate-pods/pod.yaml``: the API as a bare Pod, with no controller behind it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "go-demo-8", "labels": {"app": "go-demo-8"}},
        "spec": {"containers": [_go_demo_8_container()]},
    }


def go_demo_8_deployment(replicas: int | None = None) -> dict[str, Any]:
    """``k8s/terminate-pods/deployment.yaml``: the same container, owned by a Deployment.

    The book leaves ``replicas`` out (Kubernetes defaults it to 1), then adds an HPA with
    ``minReplicas: 2``; ``replicas=2`` gives the same two instances without waiting for the HPA.
    """
    labels = {"app": "go-demo-8"}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [_go_demo_8_container()]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "go-demo-8", "labels": labels},
        "spec": spec,
    }


def go_demo_8_service() -> dict[str, Any]:
    """``k8s/health/ingress.yaml``'s Service: port 80 to the API's 8080."""
    return _service("go-demo-8", port=80, target_port=8080)


def go_demo_8_db_deployment() -> dict[str, Any]:
    """``k8s/db``: a single MongoDB instance (the book's homework is to replicate it).

    The book mounts a PersistentVolumeClaim; it is left out here because the embedded cluster has
    no storage provisioner (a pod waiting for an unbound claim is never scheduled).
    """
    labels = {"app": "go-demo-8-db", "release": "primary"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "go-demo-8-db", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "go-demo-8-db",
                            "image": "docker.io/bitnami/mongodb:4.0.3",
                            "ports": [{"name": "mongodb", "containerPort": 27017}],
                            "readinessProbe": {
                                "exec": {"command": ["mongo", "--eval", "db.adminCommand('ping')"]}
                            },
                        }
                    ]
                },
            },
        },
    }


def go_demo_8_db_service() -> dict[str, Any]:
    """``k8s/db``'s Service, the ``DB`` address the API connects to."""
    return _service(
        "go-demo-8-db",
        port=27017,
        target_port="mongodb",
        port_name="mongodb",
        selector={"app": "go-demo-8-db", "release": "primary"},
    )


def spring_deployment(name: str, *, image: str, port: int) -> dict[str, Any]:
    """One Spring Boot app (``frontend`` or ``backend``) with its actuator health probes."""
    labels = {"app": name}
    health = {"httpGet": {"path": "/actuator/health", "port": port}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "imagePullPolicy": "Always",
                            "ports": [{"containerPort": port}],
                            "readinessProbe": health,
                            "livenessProbe": health,
                        }
                    ]
                },
            },
        },
    }


def backend_deployment() -> dict[str, Any]:
    """``manifest/backend/deployment.yaml``: the backend the frontend depends on."""
    return spring_deployment("backend", image="asashiho/chaos-backend:v1", port=8081)


def backend_service() -> dict[str, Any]:
    """``manifest/backend/service.yaml``: what ``http://backend:8081/message`` resolves to."""
    return _service("backend", port=8081, target_port=8081)


def frontend_deployment() -> dict[str, Any]:
    """``manifest/frontend/deployment.yaml``: v1, the frontend without a circuit breaker."""
    return spring_deployment("frontend", image="asashiho/chaos-frontend:v1", port=8080)


def frontend_service() -> dict[str, Any]:
    """``manifest/frontend/service.yaml``: the public entry point (a LoadBalancer on AKS)."""
    return _service("frontend", port=80, target_port=8080, type_="LoadBalancer")


def web_deployment(replicas: int) -> dict[str, Any]:
    """A plain web Deployment (``app=web``)."""
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


def _service(
    name: str,
    *,
    port: int,
    target_port: int | str,
    port_name: str = "http",
    selector: dict[str, str] | None = None,
    type_: str = "ClusterIP",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "type": type_,
            "selector": selector or {"app": name},
            "ports": [{"name": port_name, "port": port, "targetPort": target_port}],
        },
    }
