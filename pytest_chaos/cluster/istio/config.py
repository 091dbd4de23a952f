"""Mesh config, proxy config and command lines for istiod and a host gateway proxy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

#: istiod's plaintext xDS port (Envoy connects here; no mTLS to the control plane).
XDS_PORT = 15010

#: Istio-only Envoy extensions the upstream (PyPI) Envoy lacks; istiod must not send them.
#: Telemetry is what is lost; fault semantics are not affected.
ISTIOD_ENV = {
    "PILOT_ENABLE_METADATA_EXCHANGE": "false",
    "PILOT_ENABLE_ALPN_FILTER": "false",
}


@dataclass(frozen=True, slots=True)
class IstioLayout:
    """Where one cluster's Istio processes keep their files."""

    root: Path

    @property
    def mesh_config(self) -> Path:
        """Istiod's ``--meshConfig`` file."""
        return self.root / "mesh.yaml"

    @property
    def istiod_log(self) -> Path:
        """Istiod's log file."""
        return self.root / "istiod.log"

    @property
    def gateway_dir(self) -> Path:
        """pilot-agent's working directory (its ``./etc``, ``./var`` live under it)."""
        return self.root / "gateway"


def proxy_config(envoy: Path, *, xds_port: int = XDS_PORT) -> dict[str, object]:
    """The ProxyConfig that points pilot-agent at a given Envoy binary and plaintext istiod."""
    return {
        "binaryPath": str(envoy),
        "discoveryAddress": f"127.0.0.1:{xds_port}",
        "controlPlaneAuthPolicy": "NONE",
        "concurrency": 1,
    }


def mesh_config(envoy: Path, *, xds_port: int = XDS_PORT) -> str:
    """Istiod's mesh config (YAML): no mTLS, the host Envoy as the default proxy."""
    mesh = {
        "defaultConfig": proxy_config(envoy, xds_port=xds_port),
        "enableAutoMtls": False,
        "accessLogFile": "/dev/stdout",
    }
    return yaml.safe_dump(mesh, sort_keys=True)


def istiod_command(pilot_discovery: Path, kubeconfig: Path, layout: IstioLayout) -> list[str]:
    """Istiod against the embedded API server, plaintext xDS on 127.0.0.1 only."""
    return [
        str(pilot_discovery),
        "discovery",
        f"--kubeconfig={kubeconfig}",
        f"--meshConfig={layout.mesh_config}",
        f"--grpcAddr=127.0.0.1:{XDS_PORT}",
        "--httpAddr=127.0.0.1:15014",
        "--httpsAddr=",
        "--monitoringAddr=",
        "--log_output_level=default:info",
    ]


def gateway_command(pilot_agent: Path) -> list[str]:
    """pilot-agent running an ingress-gateway-like Envoy (``proxy router``) on the host."""
    return [str(pilot_agent), "proxy", "router", "--concurrency=1"]


def gateway_env(envoy: Path, *, name: str, namespace: str) -> dict[str, str]:
    """The environment pilot-agent needs to run the host Envoy as gateway ``name``."""
    return {
        "PROXY_CONFIG": yaml.safe_dump(proxy_config(envoy), sort_keys=True),
        "POD_NAME": name,
        "POD_NAMESPACE": namespace,
        "INSTANCE_IP": "127.0.0.1",
        "ISTIO_META_CLUSTER_ID": "Kubernetes",
        "ISTIO_META_UNPRIVILEGED_POD": "true",
        # The labels a Gateway's selector matches (there is no pod to carry them).
        "ISTIO_METAJSON_LABELS": '{"istio": "ingressgateway"}',
    }
