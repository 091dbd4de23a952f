"""First objects of a fresh local cluster: Istio CRDs, kwok nodes, and the waits for readiness."""

from __future__ import annotations

import functools
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_chaos.errors import ClusterError, WaitTimeout
from pytest_chaos.kube import Kube
from pytest_chaos.kube.deadline import Deadline
from pytest_chaos.kube.retry import call
from pytest_chaos.kube.watching import wait_until

ZONES = ("a", "b", "c")
NODE_CAPACITY = {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
MANAGED_BY = "pytest-chaos"


def install_crds(kube: Kube, path: Path) -> None:
    """Create (or replace) the CRDs in a multi-document YAML file."""
    import yaml
    from kubernetes.client.exceptions import ApiException

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for document in yaml.load_all(path.read_text(), Loader=loader):
        if not document:
            continue
        try:
            call(kube.extensions.create_custom_resource_definition, document)
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = call(
                kube.extensions.read_custom_resource_definition, document["metadata"]["name"]
            )
            assert current.metadata is not None
            document["metadata"]["resourceVersion"] = current.metadata.resource_version
            call(
                kube.extensions.replace_custom_resource_definition,
                document["metadata"]["name"],
                document,
            )


def node_manifest(index: int, *, kubelet_version: str) -> dict[str, Any]:
    """A kwok-managed fake Node with realistic capacity, in zone a, b or c."""
    name = f"kwok-node-{index}"
    zone = ZONES[index % len(ZONES)]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "kwok-4cpu-16gi",
                "topology.kubernetes.io/region": "local",
                "topology.kubernetes.io/zone": zone,
                "type": "kwok",
                "app.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "spec": {},
        "status": {
            "capacity": dict(NODE_CAPACITY),
            "allocatable": dict(NODE_CAPACITY),
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": kubelet_version,
                "containerRuntimeVersion": "kwok://v0.7.0",
                "osImage": "kwok fake node",
                "kernelVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "phase": "Running",
        },
    }


def create_nodes(kube: Kube, count: int, *, kubelet_version: str) -> None:
    """Create count fake nodes (existing ones are kept)."""
    from kubernetes.client.exceptions import ApiException

    for index in range(count):
        manifest: Any = node_manifest(index, kubelet_version=kubelet_version)
        try:
            call(kube.core.create_node, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise


def _node_ready(node: Any) -> bool:
    conditions = (node.status.conditions or []) if node.status else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    taints = (node.spec.taints or []) if node.spec else []
    # The node-lifecycle controller removes the not-ready taint once kwok reports Ready.
    return ready and not any(t.key.startswith("node.kubernetes.io/not-ready") for t in taints)


def _describe_nodes(nodes: list[Any]) -> str:
    return ", ".join(f"{n.metadata.name} ready={_node_ready(n)}" for n in nodes) or "no nodes"


def _poll_healthz(port: int, component: str, deadline: Deadline) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed serving certs of KCM / scheduler

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{port}/healthz", context=context, timeout=2
            ) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    if deadline.poll(healthy, every=0.1):
        return
    raise ClusterError(
        f"{component} /healthz on port {port} did not answer after {deadline.describe()}"
    )


def wait_established(kube: Kube, *, deadline: Deadline) -> None:
    """Wait until every CRD is established (served by the API server)."""
    wait_until(
        kube.extensions.list_custom_resource_definition,
        lambda crds: bool(crds)
        and all(
            any(
                c.type == "Established" and c.status == "True"
                for c in (crd.status.conditions or [])
            )
            for crd in crds
        ),
        within=max(0.5, deadline.remaining()),
        what="Istio CRDs to be established",
    )


def wait_ready(
    kube: Kube,
    nodes: int,
    *,
    deadline: Deadline,
    alive: Callable[[], None],
    say: Callable[[str], None],
    health_ports: dict[str, int] | None = None,
) -> None:
    """Wait until CRDs are established, nodes Ready and the controllers at work."""

    def remaining() -> float:
        return max(0.5, deadline.remaining())

    try:
        wait_established(kube, deadline=deadline)
        say(f"waiting for {nodes} node(s) to be Ready")
        wait_until(
            kube.core.list_node,
            lambda items: sum(_node_ready(n) for n in items) >= nodes,
            within=remaining(),
            what=f"{nodes} Ready node(s)",
            describe=_describe_nodes,
        )
        # The service-account controller (in kube-controller-manager) creates this one.
        wait_until(
            functools.partial(kube.core.list_namespaced_service_account, "default"),
            lambda accounts: any(a.metadata.name == "default" for a in accounts),
            within=remaining(),
            what="the default ServiceAccount (kube-controller-manager)",
        )
    except WaitTimeout:
        alive()
        raise
    for component, port in (health_ports or {}).items():
        _poll_healthz(port, component, deadline)
        alive()
