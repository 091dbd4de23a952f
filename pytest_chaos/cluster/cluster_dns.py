"""The real node's cluster DNS: pods resolve Services by name, as on any cluster.

``pytest-chaos-dns`` (``tools/images/dns``) runs on the host beside kube-proxy. It answers
``<service>.<namespace>.svc.cluster.local`` from a watch of Services and EndpointSlices, and
forwards every other name to the host's resolvers. Pods reach it the usual way: the ``kube-dns``
Service in ``kube-system`` at :data:`SERVICE_IP` (the kubelet's ``clusterDNS``), whose hand-made
EndpointSlice points at this host's :data:`PORT`; kube-proxy does the rest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_chaos.cluster import dnsquery, processes
from pytest_chaos.cluster.processes import ProcessRecord
from pytest_chaos.errors import ClusterError
from pytest_chaos.kube.deadline import Deadline
from pytest_chaos.kube.retry import call

if TYPE_CHECKING:
    from pytest_chaos.kube import Kube

COMPONENT = "cluster-dns"
SERVICE_IP = "10.96.0.10"
PORT = 10053
DOMAIN = "cluster.local"
NAMESPACE = "kube-system"
SERVICE = "kube-dns"
SLICE = "kube-dns-real-node"
PROBE_NAME = f"kubernetes.default.svc.{DOMAIN}"


def upstreams(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The host's IPv4 nameservers as ``ip:53``, where names outside the cluster go."""
    found = []
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and ":" not in fields[1]:
            found.append(f"{fields[1]}:53")
    return found


def config(
    listen_ip: str,
    server: str,
    pki_dir: Path,
    *,
    port: int = PORT,
    forward_to: list[str] | None = None,
) -> dict[str, Any]:
    """The server's configuration file content.

    It names where it listens, the API server and its certificates (the cluster's pki
    directory), the domain, and where other names go (default: the host's resolvers).
    """
    return {
        "listen": f"{listen_ip}:{port}",
        "server": server,
        "ca": str(pki_dir / "ca.crt"),
        "cert": str(pki_dir / "admin.crt"),
        "key": str(pki_dir / "admin.key"),
        "domain": DOMAIN,
        "upstreams": upstreams() if forward_to is None else forward_to,
    }


def start(program: Path, base: Path, log: Path, settings: dict[str, Any]) -> ProcessRecord:
    """Start the server with settings (:func:`config`), written to ``base/dns.json``.

    Its command line names base, so the orphan sweep of whoever owns base finds it.
    """
    path = base / "dns.json"
    path.write_text(json.dumps(settings, indent=2))
    return processes.spawn(COMPONENT, [str(program), str(path)], log, cwd=base)


def service() -> dict[str, Any]:
    """The ``kube-dns`` Service: no selector, a fixed ClusterIP, DNS over UDP and TCP."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "clusterIP": SERVICE_IP,
            "ports": [
                {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": PORT},
                {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": PORT},
            ],
        },
    }


def endpoint_slice(host_ip: str, node_name: str) -> dict[str, Any]:
    """The Service's endpoints: the DNS server on this host."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": SLICE,
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": "pytest-chaos",
            },
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [host_ip], "conditions": {"ready": True}, "nodeName": node_name}
        ],
        "ports": [
            {"name": "dns", "protocol": "UDP", "port": PORT},
            {"name": "dns-tcp", "protocol": "TCP", "port": PORT},
        ],
    }


def publish(kube: Kube, host_ip: str, node_name: str) -> None:
    """Create (or bring up to date) the ``kube-dns`` Service and its EndpointSlice."""
    from kubernetes.client.exceptions import ApiException

    manifest: Any = service()  # the client takes the JSON form as well as its models
    try:
        call(kube.core.create_namespaced_service, NAMESPACE, manifest)
    except ApiException as exc:
        if exc.status != 409:
            raise
        existing = kube.read(kube.core.read_namespaced_service, SERVICE, NAMESPACE) or {}
        cluster_ip = existing.get("spec", {}).get("clusterIP")
        if cluster_ip != SERVICE_IP:
            raise ClusterError(
                f"the Service {NAMESPACE}/{SERVICE} exists with ClusterIP {cluster_ip}, not "
                f"{SERVICE_IP}: delete it, then start again"
            ) from exc
    body: Any = endpoint_slice(host_ip, node_name)
    try:
        call(kube.discovery.create_namespaced_endpoint_slice, NAMESPACE, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        call(kube.discovery.replace_namespaced_endpoint_slice, SLICE, NAMESPACE, body)


def wait_serving(record: ProcessRecord, address: tuple[str, int], deadline: Deadline) -> None:
    """Wait until the server answers for the API's own Service (it listens and has synced)."""
    last = "no answer yet"

    def answering() -> bool:
        nonlocal last
        processes.raise_if_exited(record, "the cluster DNS was starting")
        try:
            answer = dnsquery.query(address, PROBE_NAME, timeout=1.0)
        except OSError as exc:
            last = str(exc) or type(exc).__name__
            return False
        last = f"rcode {answer.rcode}, no address (not synced with the API yet)"
        return bool(answer.addresses)

    if deadline.poll(answering, every=0.1):
        return
    raise ClusterError(
        f"the cluster DNS did not answer for {PROBE_NAME} after {deadline.describe()} ({last}); "
        f"the last lines of {record.log}:\n{processes.log_tail(record.log)}"
    )
