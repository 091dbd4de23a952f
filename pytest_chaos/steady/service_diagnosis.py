"""What stands behind an HTTP URL that names a Service: its EndpointSlices, pods and events.

A failed ``HttpProbe.assert_ok`` says what the requests got; when the URL's host names a
Kubernetes Service (``svc``, ``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local``) or is a
Service's ClusterIP, this adds why: the Service (type, ClusterIP, ports, selector), its
EndpointSlices (ready, not ready and terminating endpoints, with their pods), the pods it selects
and their namespace's recent events. A diagnosis never hides the failure it explains: when the
cluster cannot be read, it says so in one line.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from pytest_chaos.kube import Kube
from pytest_chaos.steady.diagnosis import describe_pods, recent_events

#: Seconds an API read of the diagnosis may retry: it must not delay the failure it explains.
API_DEADLINE = 5.0
CLUSTER_DOMAIN = "cluster.local"
_LIMIT = 10  # endpoints listed per EndpointSlice
_NOT_SERVICES = frozenset({"localhost"})


def service_state(kube: Kube | Callable[[], Kube], url: str) -> str | None:
    """The Service behind url and what backs it, as text; None when its host names no Service.

    Never raises (but for KeyboardInterrupt and SystemExit): a cluster that cannot be reached
    or read (no cluster, 403...) gives ``"(service state unavailable: ...)"``.
    """
    target = service_ref(url)
    if target is None:
        return None
    try:
        cluster = kube if isinstance(kube, Kube) else kube()
        services = _find_services(cluster, target)
        if not services:
            kind, value = target
            if kind == "fqdn":
                namespace, name = value.split("/")
                return f"Service {namespace}/{name} does not exist"
            return None
        port = httpx.URL(url).port or (443 if url.lower().startswith("https") else 80)
        return "\n".join(describe_service(cluster, service, port) for service in services[:3])
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # pytest's skip/fail outcomes too: never hide the failure
        return f"(service state unavailable: {_describe_error(exc)})"


def service_ref(url: str) -> tuple[str, str] | None:
    """How url's host may name a Service, without asking the cluster.

    ``("ip", "10.96.0.10")``: a ClusterIP candidate; ``("name", "web")``: a Service of that
    name in some namespace; ``("pair", "shop/web")``: ``web.shop``, a Service or a DNS name;
    ``("fqdn", "shop/web")``: ``web.shop.svc[.cluster.local]``, surely a Service. None for a
    loopback address, ``localhost``, or a host that no Service name can be.
    """
    try:
        host = httpx.URL(url).host.lower().rstrip(".")
    except (httpx.InvalidURL, TypeError):
        return None
    if not host or host in _NOT_SERVICES:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if address.is_loopback or address.is_unspecified or address.is_link_local:
            return None
        return ("ip", str(address))
    parts = host.split(".")
    if len(parts) == 1:
        return ("name", parts[0])
    if len(parts) == 2:
        return ("pair", f"{parts[1]}/{parts[0]}")
    if parts[2:] in (["svc"], ["svc", *CLUSTER_DOMAIN.split(".")]):
        return ("fqdn", f"{parts[1]}/{parts[0]}")
    return None


def describe_service(kube: Kube, service: Mapping[str, Any], port: int | None = None) -> str:
    """The Service, its EndpointSlices, its pods and its namespace's recent events, as lines."""
    meta, spec = service.get("metadata", {}), service.get("spec", {})
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    selector: dict[str, str] = dict(spec.get("selector") or {})
    selector_text = ",".join(f"{k}={v}" for k, v in selector.items())
    kind = spec.get("type") or "ClusterIP"
    head = f"Service {namespace}/{name}: {kind}"
    if kind == "ExternalName":
        head += f" {spec.get('externalName')}"
    else:
        head += f" {spec.get('clusterIP') or 'no ClusterIP'}"
    ports = spec.get("ports") or []
    head += f", ports {', '.join(_port_text(p) for p in ports) or 'none'}"
    head += f", selector {selector_text}" if selector else ", no selector (endpoints by hand)"
    lines = [head]
    if port is not None and ports and all(p.get("port") != port for p in ports):
        numbers = ", ".join(str(p.get("port")) for p in ports)
        lines.append(f"the URL's port {port} is none of the Service's ports ({numbers})")
    lines.append(_section("EndpointSlices: ", lambda: _slices_text(kube, namespace, name)))
    if selector:
        pods = _section(
            "  ",
            lambda: describe_pods(
                _list(kube, kube.core.list_namespaced_pod, namespace, label_selector=selector_text)
            ),
        )
        lines.append(f"pods selected by {selector_text}:\n{pods}")
    lines.append(f"recent events in {namespace}:\n{recent_events(kube, namespace)}")
    return "\n".join(lines)


def endpoint_state(endpoint: Mapping[str, Any]) -> str:
    """``ready``, ``not ready`` or ``terminating``, as EndpointSlice conditions mean them.

    An unset ``ready`` condition means ready (the API's documented default).
    """
    conditions = endpoint.get("conditions") or {}
    if conditions.get("terminating"):
        return "terminating"
    return "not ready" if conditions.get("ready") is False else "ready"


def _slices_text(kube: Kube, namespace: str, name: str) -> str:
    slices = _list(
        kube,
        kube.discovery.list_namespaced_endpoint_slice,
        namespace,
        label_selector=f"kubernetes.io/service-name={name}",
    )
    if not slices:
        return "EndpointSlices: none"
    lines = []
    for piece in sorted(slices, key=lambda s: str(s.get("metadata", {}).get("name", ""))):
        endpoints = piece.get("endpoints") or []
        states = [endpoint_state(e) for e in endpoints]
        counts = ", ".join(f"{states.count(s)} {s}" for s in ("ready", "not ready", "terminating"))
        ports = ", ".join(_port_text(p) for p in piece.get("ports") or [])
        title = f"EndpointSlice {piece.get('metadata', {}).get('name')}"
        lines.append(
            f"{title}: {counts if endpoints else 'no endpoints'}"
            + (f" (ports {ports})" if ports else "")
        )
        for endpoint, state in list(zip(endpoints, states, strict=True))[:_LIMIT]:
            addresses = ",".join(endpoint.get("addresses") or []) or "no address"
            ref = endpoint.get("targetRef") or {}
            who = f"{str(ref.get('kind', '')).lower()} {ref.get('name')}" if ref else "no target"
            node = endpoint.get("nodeName")
            lines.append(f"  {addresses} {state}: {who}" + (f" on {node}" if node else ""))
        if len(endpoints) > _LIMIT:
            lines.append(f"  +{len(endpoints) - _LIMIT} more")
    return "\n".join(lines)


def _find_services(kube: Kube, target: tuple[str, str]) -> list[dict[str, Any]]:
    kind, value = target
    if kind == "ip":
        return [
            s
            for s in _list(kube, kube.core.list_service_for_all_namespaces)
            if value in {s["spec"].get("clusterIP"), *(s["spec"].get("clusterIPs") or [])}
        ]
    if kind == "name":
        found = _list(
            kube, kube.core.list_service_for_all_namespaces, field_selector=f"metadata.name={value}"
        )
        return sorted(found, key=lambda s: str(s.get("metadata", {}).get("namespace")))
    namespace, name = value.split("/")
    return _list(
        kube,
        kube.core.list_namespaced_service,
        namespace,
        field_selector=f"metadata.name={name}",
    )


def _list(kube: Kube, list_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
    """A list call's items as the API's JSON, retried for at most API_DEADLINE seconds."""
    from pytest_chaos.kube.retry import retrying

    response = retrying(list_fn, deadline=API_DEADLINE)(*args, _preload_content=False, **kwargs)
    try:
        data: dict[str, Any] = json.loads(response.data)
    finally:
        response.release_conn()
    items: list[Any] = data.get("items") or []
    return items


def _section(head: str, build: Callable[[], str]) -> str:
    try:
        return build()
    except Exception as exc:  # one unreadable part must not hide the others
        return f"{head}(unavailable: {_describe_error(exc)})"


def _port_text(port: Mapping[str, Any]) -> str:
    name = f"{port['name']} " if port.get("name") else ""
    target = port.get("targetPort")
    mapped = f"->{target}" if target is not None and target != port.get("port") else ""
    return f"{name}{port.get('port')}{mapped}/{port.get('protocol') or 'TCP'}"


def _describe_error(exc: BaseException) -> str:
    from pytest_chaos.kube.retry import describe

    text = describe(exc) if isinstance(exc, Exception) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."
