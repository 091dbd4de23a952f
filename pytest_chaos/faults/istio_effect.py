"""Has an Istio fault reached the data plane? Read the proxy's own config (Envoy's config_dump).

Where the cluster says which proxies run (``cluster up --istio`` publishes its gateway's admin
address in ConfigMap ``istio-system/pytest-chaos-data-plane``), a fault is verified where it
acts: every route Envoy derived from a faulted VirtualService (Istio tags each with metadata
``istio.config = /apis/networking.istio.io/<v>/namespaces/<ns>/virtual-service/<name>``) must
carry the fault filter's config with the fault's values, and after revert none may. A
VirtualService no published proxy serves (bound to ``mesh`` only, without sidecars) keeps the API
read-back, and the timeline says which check was used.

Why config_dump and not a probe request: it needs no route the test process can reach (hosts,
ports, headers, a backend that answers), sees a 1 % abort as surely as a 100 % one, and does not
add requests to what the test measures.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from pytest_chaos.kube import Kube

DATA_PLANE_CONFIGMAP = "pytest-chaos-data-plane"
ISTIO_NAMESPACE = "istio-system"
FAULT_FILTER = "envoy.filters.http.fault"
#: How long a fault may take to reach Envoy (istiod debounces 100 ms; measured 0.4-1 s).
PROPAGATION_BUDGET = 15.0


def proxies(kube: Kube) -> list[dict[str, Any]]:
    """The proxies the cluster published (none on a cluster without pytest-chaos's Istio)."""
    config = kube.read(kube.core.read_namespaced_config_map, DATA_PLANE_CONFIGMAP, ISTIO_NAMESPACE)
    if config is None:
        return []
    found: list[dict[str, Any]] = json.loads((config.get("data") or {}).get("proxies.json") or "[]")
    return found


def config_dump(admin: str) -> dict[str, Any] | None:
    """Envoy's dynamic route configs, or None when its admin interface does not answer."""
    url = f"{admin}/config_dump?resource=dynamic_route_configs"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback admin
            dump: dict[str, Any] = json.loads(response.read())
            return dump
    except (OSError, urllib.error.URLError, ValueError):
        return None


def route_faults(
    dump: Mapping[str, Any], namespace: str, name: str
) -> list[tuple[str, dict[str, Any]]] | None:
    """(route name, fault filter config) of every Envoy route made from one VirtualService.

    None when no route of that VirtualService is in the dump (the proxy does not serve it).
    """
    suffix = f"/namespaces/{namespace}/virtual-service/{name}"
    found: list[tuple[str, dict[str, Any]]] = []
    seen = False
    for config in dump.get("configs") or []:
        route_config = config.get("route_config") or {}
        for host in route_config.get("virtual_hosts") or []:
            for route in host.get("routes") or []:
                meta = ((route.get("metadata") or {}).get("filter_metadata") or {}).get("istio")
                if not str((meta or {}).get("config", "")).endswith(suffix):
                    continue
                seen = True
                fault = (route.get("typed_per_filter_config") or {}).get(FAULT_FILTER) or {}
                found.append((str(route.get("name", "")), fault))
    return found if seen else None


def seconds(text: str) -> float:
    """``"1s"``, ``"0.250s"`` (Envoy) or ``"250ms"`` (Istio) in seconds."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text.rstrip("s"))


def matches(key: str, value: Mapping[str, Any], envoy: Mapping[str, Any]) -> bool:
    """True when Envoy's fault filter config holds the Istio fault ``key: value``."""
    mine = envoy.get(key)
    if not isinstance(mine, Mapping):
        return False
    percentage = mine.get("percentage") or {}
    numerator = int(percentage.get("numerator", 0))
    wanted = round(float(value["percentage"]["value"]) * 10000)
    if percentage.get("denominator") != "MILLION" or numerator != wanted:
        return False
    if key == "abort":
        return int(mine.get("http_status", 0)) == int(value["httpStatus"])
    return abs(seconds(str(mine.get("fixed_delay", "0s"))) - seconds(value["fixedDelay"])) < 1e-3


def carries(
    faults: list[tuple[str, dict[str, Any]]], key: str, value: Mapping[str, Any], route: str | None
) -> bool:
    """True when a route (the one named route, if given) carries the fault."""
    return any(matches(key, value, fault) for name, fault in faults if route in (None, name))


def wait_in_data_plane(
    kube: Kube,
    targets: list[tuple[str, str]],
    key: str,
    value: Mapping[str, Any],
    route: str | None,
    *,
    present: bool,
    budget: float = PROPAGATION_BUDGET,
) -> tuple[str | None, float, bool]:
    """Poll the published proxies until every target's routes carry (or no longer carry) it.

    Returns (the proxy checked, seconds waited, whether it got there); proxy None when no
    published proxy serves a target (then only the API read-back applies).
    """
    started = time.monotonic()
    for proxy in proxies(kube):
        admin = str(proxy.get("admin", ""))
        dump = config_dump(admin)
        if dump is None or any(route_faults(dump, ns, name) is None for ns, name in targets):
            continue
        name = f"{proxy.get('namespace', ISTIO_NAMESPACE)}/{proxy.get('name', 'proxy')}"
        while True:
            states = [route_faults(dump, ns, vs) or [] for ns, vs in targets] if dump else []
            if dump is not None and all(
                carries(faults, key, value, route) == present for faults in states
            ):
                return name, time.monotonic() - started, True
            if time.monotonic() - started >= budget:
                return name, time.monotonic() - started, False
            time.sleep(0.05)
            dump = config_dump(admin)
    return None, time.monotonic() - started, False
