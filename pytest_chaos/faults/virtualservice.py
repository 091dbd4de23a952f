"""Istio VirtualService faults as data: arguments, route targeting, patches and their undo.

Pure functions over VirtualServices as the API returns them (JSON dicts): nothing here talks to
the cluster, so every decision ``chaos.istio`` makes can be unit-tested. The cluster side is in
:mod:`pytest_chaos.faults.istio`.

Vocabulary:

* a **fault spec** (:class:`FaultSpec`) is what the user asked for, checked: the host, the
  namespace, the fault key (``abort`` or ``delay``) and the value Istio stores under
  ``spec.http[i].fault.<key>``, an optional test header, the API version;
* a **route** is one entry of ``spec.http``; a route is *targeted* when the VirtualService's
  ``hosts`` name the host, or when one of its ``route[].destination.host`` does (any subset or
  none);
* a **payload** is what the undo record keeps: per touched route its position, its identity
  (name, match, destinations) and its fault before, plus the exact value set. The undo works
  from the payload alone, in another process after a crash if need be.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_chaos.durations import as_seconds
from pytest_chaos.errors import ChaosConfigError, DriftError, TargetingError
from pytest_chaos.faults.checks import check_header, check_http_status, check_name, check_percent

GROUP = "networking.istio.io"
PLURAL = "virtualservices"
#: Versions of networking.istio.io that serve VirtualServices, newest first.
VERSIONS = ("v1", "v1beta1", "v1alpha3")
#: The ``name`` of every route pytest-chaos inserts, followed by the fault's tag.
ROUTE_PREFIX = "pytest-chaos-"
#: Kubernetes' default cluster domain: ``<service>.<namespace>.svc.cluster.local``.
CLUSTER_DOMAIN = "cluster.local"
#: Why an Istio fault is skipped on a cluster without Istio's API.
NOT_SERVED = (
    "Istio's networking.istio.io API is not served by this cluster (VirtualService CRD "
    "missing): install Istio or its CRDs"
)

FaultKey = Literal["abort", "delay"]
JsonPatch = list[dict[str, Any]]

_HOST = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A checked request for a VirtualService fault.

    Attributes:
        key: ``abort`` or ``delay``, the key under a route's ``fault``.
        value: What Istio stores under that key, e.g. ``{"httpStatus": 503, "percentage":
            {"value": 50.0}}`` or ``{"fixedDelay": "15s", "percentage": {"value": 100.0}}``.
        host: The destination host, lowercased (a Service's short name or an FQDN).
        namespace: Where the VirtualServices are.
        header: ``(name, value)`` of the test header that scopes the fault (value ``""``: any
            value), or None for every request.
        version: The networking.istio.io version asked for, None for the server's preferred.
    """

    key: FaultKey
    value: dict[str, Any]
    host: str
    namespace: str
    header: tuple[str, str] | None = None
    version: str | None = None

    def describe(self) -> str:
        """``abort 50% of requests to go-demo-8 with HTTP 500 [x-chaos=on]``."""
        percent = f"{self.value['percentage']['value']:g}%"
        if self.key == "abort":
            text = (
                f"abort {percent} of requests to {self.host} with HTTP {self.value['httpStatus']}"
            )
        else:
            text = f"delay {percent} of requests to {self.host} by {self.value['fixedDelay']}"
        if self.header is not None:
            name, wanted = self.header
            text += f" carrying header {name}={wanted}" if wanted else f" carrying header {name}"
        return text


def abort_spec(
    host: object,
    *,
    namespace: object,
    status: object = 503,
    percent: object = 100,
    header: object = None,
    version: object = None,
) -> FaultSpec:
    """Check the arguments of ``chaos.istio.abort`` (and its marker); no cluster needed."""
    checked_host = check_host(host)
    where = check_name("namespace", namespace)
    value = {
        "httpStatus": check_http_status(status),
        "percentage": {"value": check_percent(percent)},
    }
    return FaultSpec(
        "abort",
        value,
        checked_host,
        where,
        check_header(header),
        check_version(version),
    )


def delay_spec(
    host: object,
    *,
    namespace: object,
    delay: object,
    percent: object = 100,
    header: object = None,
    version: object = None,
) -> FaultSpec:
    """Check the arguments of ``chaos.istio.delay`` (and its marker); no cluster needed."""
    checked_host = check_host(host)
    where = check_name("namespace", namespace)
    value = {
        "fixedDelay": fixed_delay(delay),
        "percentage": {"value": check_percent(percent)},
    }
    return FaultSpec(
        "delay",
        value,
        checked_host,
        where,
        check_header(header),
        check_version(version),
    )


def check_host(host: object) -> str:
    """A destination host: a Service's short name or a DNS name (lowercased)."""
    if not isinstance(host, str) or not _HOST.match(host.lower().rstrip(".")) or len(host) > 253:
        raise ChaosConfigError(
            f"host={host!r} must be a destination host: a Service's name like 'go-demo-8' or a "
            "DNS name like 'go-demo-8.shop.svc.cluster.local' (no wildcards)"
        )
    return host.lower().rstrip(".")


def check_version(version: object) -> str | None:
    """None (the version the server prefers) or one of :data:`VERSIONS`."""
    if version is not None and version not in VERSIONS:
        raise ChaosConfigError(
            f"version={version!r} must be None (the newest the cluster serves) or one of "
            f"{', '.join(VERSIONS)}"
        )
    return version


def fixed_delay(delay: object) -> str:
    """A delay as Istio's ``fixedDelay`` wants it: whole seconds (``"15s"``) or ms (``"250ms"``)."""
    seconds = as_seconds(delay, name="delay")
    millis = seconds * 1000
    if millis < 1:
        raise ChaosConfigError(
            f"delay={delay!r} must be at least 1ms (Istio refuses shorter fixed delays)"
        )
    whole = round(millis)
    if abs(millis - whole) > 1e-6:
        raise ChaosConfigError(
            f"delay={delay!r} must be a whole number of milliseconds (e.g. '1500ms' or 1.5)"
        )
    return f"{whole // 1000}s" if whole % 1000 == 0 else f"{whole}ms"


def choose_version(groups: Iterable[Mapping[str, Any]], wanted: str | None) -> str | None:
    """The networking.istio.io version to use, from API discovery (``/apis``'s groups).

    Returns None when the cluster does not serve the group at all (the caller skips the test).
    Raises ChaosConfigError when a version is asked for that the cluster does not serve.
    """
    group = next((g for g in groups if g.get("name") == GROUP), None)
    if group is None:
        return None
    served = [v["version"] for v in group.get("versions") or []]
    if wanted is not None:
        if wanted not in served:
            raise ChaosConfigError(
                f"version={wanted!r}: this cluster serves {GROUP} in {', '.join(served)} only; "
                "pass one of those, or version=None for the newest"
            )
        return wanted
    preferred = (group.get("preferredVersion") or {}).get("version")
    if preferred in VERSIONS:
        return str(preferred)
    return next((v for v in VERSIONS if v in served), None)


def host_key(host: str, namespace: str) -> str:
    """A host's canonical name seen from namespace: short forms of a Service there become FQDNs.

    ``web``, ``web.shop``, ``web.shop.svc`` and ``web.shop.svc.cluster.local`` are one host in
    namespace ``shop``, as Istio and Kubernetes' DNS resolve them.
    """
    name = host.lower().rstrip(".")
    parts = name.split(".")
    if len(parts) == 1:
        return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"
    if len(parts) == 2 and parts[1] == namespace:
        return f"{name}.svc.{CLUSTER_DOMAIN}"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{name}.{CLUSTER_DOMAIN}"
    return name


def service_name(host: str, namespace: str) -> str | None:
    """The name of the Service in namespace that host means, or None (another namespace...)."""
    suffix = f".{namespace}.svc.{CLUSTER_DOMAIN}"
    key = host_key(host, namespace)
    if key.endswith(suffix) and "." not in key[: -len(suffix)]:
        return key[: -len(suffix)]
    return None


def is_ours(route: Mapping[str, Any]) -> bool:
    """Whether a route is one pytest-chaos inserted (named ``pytest-chaos-<tag>``)."""
    return str(route.get("name") or "").startswith(ROUTE_PREFIX)


def route_name(tag: str) -> str:
    """The ``name`` of the routes a fault inserts."""
    return f"{ROUTE_PREFIX}{tag}"


def destinations(route: Mapping[str, Any]) -> list[str]:
    """The destination hosts of a route (``route[].destination.host``)."""
    return [
        str((d.get("destination") or {}).get("host"))
        for d in route.get("route") or []
        if (d.get("destination") or {}).get("host")
    ]


def targeted_routes(vs: Mapping[str, Any], host: str, namespace: str) -> list[int]:
    """Indexes of the routes of vs that carry traffic for host.

    Every HTTP route that forwards (has ``route``) when the VirtualService's ``hosts`` name the
    host; otherwise the routes with a destination on the host (any subset, or none). Redirects,
    direct responses, delegations and pytest-chaos's own routes are never targeted.
    """
    key = host_key(host, namespace)
    spec = vs.get("spec") or {}
    by_hosts = any(host_key(h, namespace) == key for h in spec.get("hosts") or [])
    found = []
    for index, route in enumerate(spec.get("http") or []):
        if is_ours(route) or not route.get("route"):
            continue
        if by_hosts or any(host_key(d, namespace) == key for d in destinations(route)):
            found.append(index)
    return found


def claiming(virtual_services: Iterable[Mapping[str, Any]], host: str, namespace: str) -> list[str]:
    """Names of the VirtualServices whose ``hosts`` name host (routes or not)."""
    key = host_key(host, namespace)
    return [
        str(vs["metadata"]["name"])
        for vs in virtual_services
        if any(host_key(h, namespace) == key for h in (vs.get("spec") or {}).get("hosts") or [])
    ]


def nothing_to_fault(spec: FaultSpec, names: Sequence[str]) -> TargetingError:
    """The error for a host whose VirtualServices have no route that forwards to a destination.

    A VirtualService of our own next to them would leave Istio two for one host.
    """
    return TargetingError(
        f"VirtualService(s) {', '.join(names)} in namespace {spec.namespace!r} serve host "
        f"{spec.host!r} but none of their HTTP routes forwards to a destination (only "
        "redirects, direct responses, delegations or pytest-chaos's own routes): nothing to "
        "put the fault on. Target the delegate's destination host instead"
    )


def header_condition(header: tuple[str, str]) -> dict[str, Any]:
    """Istio's StringMatch for the test header: its exact value, or any value (``.*``)."""
    _name, wanted = header
    return {"exact": wanted} if wanted else {"regex": ".*"}


def with_header(
    match: Sequence[Mapping[str, Any]] | None, header: tuple[str, str], where: str
) -> list[dict[str, Any]]:
    """The match conditions AND the header: each OR'ed HTTPMatchRequest gets the header too."""
    name, _wanted = header
    conditions = [dict(m) for m in match or [{}]]
    for condition in conditions:
        headers = dict(condition.get("headers") or {})
        if name in headers:
            raise ChaosConfigError(
                f"header={'='.join(h for h in header if h)!r}: {where} already matches on header "
                f"{name!r}; pick another test header name"
            )
        headers[name] = header_condition(header)
        condition["headers"] = headers
    return conditions


def identity(route: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies a route when it may have moved: its name, match and destinations."""
    return {"name": route.get("name"), "match": route.get("match"), "route": route.get("route")}


def describe_route(vs_name: str, index: int, route: Mapping[str, Any]) -> str:
    """``VirtualService shop/web route 0 ('primary')``-like text for messages."""
    named = f" ({route['name']!r})" if route.get("name") else ""
    return f"VirtualService {vs_name} http[{index}]{named}"


def overridden_policies(vs: Mapping[str, Any], indices: Iterable[int]) -> list[str]:
    """Targeted routes whose retries/timeout Istio ignores while they carry a fault.

    Istio disables a route's retries and timeout when the route has a fault (istio/istio#13705):
    a test of "our retries absorb the errors" against a fault on the same route misleads.
    """
    http = (vs.get("spec") or {}).get("http") or []
    name = (vs.get("metadata") or {}).get("name", "?")
    found = []
    for index in indices:
        policies = [p for p in ("retries", "timeout") if http[index].get(p)]
        if policies:
            found.append(f"{describe_route(name, index, http[index])}: {', '.join(policies)}")
    return found


def inject_patch(
    vs: Mapping[str, Any], indices: Sequence[int], spec: FaultSpec, tag: str
) -> tuple[JsonPatch, dict[str, Any]]:
    """The JSON patch that injects spec on the routes at indices, and the undo payload.

    Without a header, ``fault.<key>`` is added to each route, next to whatever fault it has (an
    existing delay stays when an abort is added, and the other way round). A route that already
    has a fault of the same key is refused: it belongs to someone else, and overwriting it would
    make an exact restore depend on nobody touching it meanwhile.

    With a header, a copy of each route is inserted right before it, named
    ``pytest-chaos-<tag>``, matching the route's conditions AND the header, carrying the fault;
    the original route is left untouched.

    The patch starts with the resourceVersion read: the API server answers 409 when the object
    changed since (optimistic concurrency), and the caller re-reads and decides again.
    """
    metadata = vs.get("metadata") or {}
    name = f"{metadata.get('namespace')}/{metadata.get('name')}"
    http = (vs.get("spec") or {}).get("http") or []
    patch: JsonPatch = [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": metadata["resourceVersion"]}
    ]
    routes: list[dict[str, Any]] = []
    inserted: list[dict[str, Any]] = []
    for shift, index in enumerate(sorted(indices)):
        route = http[index]
        where = describe_route(name, index, route)
        if spec.header is None:
            patch.append(_add_fault(route, index, spec, where))
        else:
            twin = _twin(http, route, spec, spec.header, tag, where)
            patch.append({"op": "add", "path": f"/spec/http/{index + shift}", "value": twin})
            inserted.append(twin)
        routes.append({"index": index, "identity": identity(route), "before": route.get("fault")})
    payload = {
        "key": spec.key,
        "value": spec.value,
        "header": list(spec.header) if spec.header else None,
        "tag": tag,
        "routes": routes,
        "inserted": inserted,
    }
    # Copies: nothing shared with the object read, the spec, or between patch and payload.
    return copy.deepcopy(patch), copy.deepcopy(payload)


def _add_fault(route: Mapping[str, Any], index: int, spec: FaultSpec, where: str) -> dict[str, Any]:
    """The patch operation adding spec's fault next to the route's own, or refusing."""
    before = route.get("fault")
    if before and spec.key in before:
        raise TargetingError(
            f"{where} already has a {spec.key} fault ({before[spec.key]}), set by "
            "someone else or by an earlier fault of this test; refusing to overwrite it. "
            "Remove it first, or scope yours to test requests with header='x-chaos'"
        )
    if before is None:
        return {"op": "add", "path": f"/spec/http/{index}/fault", "value": {spec.key: spec.value}}
    return {"op": "add", "path": f"/spec/http/{index}/fault/{spec.key}", "value": spec.value}


def _twin(
    http: Sequence[Mapping[str, Any]],
    route: Mapping[str, Any],
    spec: FaultSpec,
    header: tuple[str, str],
    tag: str,
    where: str,
) -> dict[str, Any]:
    """A copy of route for requests carrying header, named ours, with the fault."""
    _refuse_stacked_header_fault(http, route, header, where)
    twin = copy.deepcopy(dict(route))
    twin["name"] = route_name(tag)
    twin["match"] = with_header(route.get("match"), header, where)
    twin["fault"] = {**(route.get("fault") or {}), spec.key: spec.value}
    return twin


def _refuse_stacked_header_fault(
    http: Sequence[Mapping[str, Any]],
    route: Mapping[str, Any],
    header: tuple[str, str],
    where: str,
) -> None:
    """Two header-scoped faults on one route and header would not combine: the first wins."""
    condition = {header[0]: header_condition(header)}
    for other in http:
        if not is_ours(other) or other.get("route") != route.get("route"):
            continue
        if any(
            all((m.get("headers") or {}).get(k) == v for k, v in condition.items())
            for m in other.get("match") or []
        ):
            raise TargetingError(
                f"{where} already has a header-scoped fault on {'='.join(h for h in header if h)} "
                f"(route {other.get('name')!r}); requests carrying it would see only the first "
                "fault. Use another header value, or one fault without header"
            )


def unchanged_since(vs: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """Whether the targeted routes are still where and what they were when the patch was made."""
    http = (vs.get("spec") or {}).get("http") or []
    for entry in payload["routes"]:
        index = entry["index"]
        if index >= len(http):
            return False
        route = http[index]
        if identity(route) != entry["identity"] or route.get("fault") != entry["before"]:
            return False
    return True


def effective(vs: Mapping[str, Any], payload: Mapping[str, Any]) -> list[str]:
    """What of the fault the VirtualService does not carry (empty: the fault is all there)."""
    http = (vs.get("spec") or {}).get("http") or []
    key, value = payload["key"], payload["value"]
    missing = []
    if payload.get("header"):
        found = [r for r in http if r.get("name") == route_name(payload["tag"])]
        if len(found) != len(payload["inserted"]):
            missing.append(f"{len(payload['inserted'])} route(s) {route_name(payload['tag'])}")
        missing += [
            f"{key} on route {r.get('name')}"
            for r in found
            if (r.get("fault") or {}).get(key) != value
        ]
        return missing
    for entry in payload["routes"]:
        index = _locate(http, entry, key, value)
        if index is None or (http[index].get("fault") or {}).get(key) != value:
            missing.append(f"{key} {value} on http[{entry['index']}]")
    return missing


@dataclass(frozen=True, slots=True)
class RevertPlan:
    """What undoing a fault on one VirtualService takes.

    Attributes:
        patch: The JSON patch to send (empty: nothing to change).
        drift: One line per route someone else changed; those are left as they are.
        gone: Routes that no longer exist, whose fault went with them.
    """

    patch: JsonPatch
    drift: list[str]
    gone: list[str]

    @property
    def outcome(self) -> str:
        """``reverted``, ``already reverted``, or what happened to the routes."""
        if len(self.patch) > 1:
            return "reverted"
        if self.gone:
            return "route(s) removed by someone else, nothing to restore"
        return "already reverted"


def revert_patch(vs: Mapping[str, Any], payload: Mapping[str, Any]) -> RevertPlan:
    """The JSON patch that undoes exactly what payload's fault did to vs, and any drift found.

    Header-scoped: our inserted routes (by name) are removed when they are still as inserted;
    an edited one is drift. Otherwise, per touched route: when ``fault.<key>`` is still the value
    set, only that key is removed (a delay someone added meanwhile stays, and removing a delay
    never removes an abort), and the ``fault`` itself when nothing is left in it (unless it was
    an explicit empty ``fault: {}`` before); when the key is already gone, there is nothing to
    do; when it holds another value, that is someone else's change (a GitOps sync, a colleague)
    and is reported, not clobbered.
    """
    metadata = vs.get("metadata") or {}
    name = f"{metadata.get('namespace')}/{metadata.get('name')}"
    http = (vs.get("spec") or {}).get("http") or []
    patch: JsonPatch = [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": metadata["resourceVersion"]}
    ]
    if payload.get("header"):
        return RevertPlan(patch, _remove_inserted(http, payload, name, patch), [])
    key, value = payload["key"], payload["value"]
    drift: list[str] = []
    gone: list[str] = []
    located = [(entry, _locate(http, entry, key, value)) for entry in payload["routes"]]
    taken = {index for _entry, index in located if index is not None}
    for entry, index in located:
        if index is None:
            lost, carried = _route_lost(http, entry, key, value, name, taken)
            (drift if carried else gone).append(lost)
            continue
        fault = http[index].get("fault") or {}
        if key not in fault:
            continue
        if fault[key] != value:
            drift.append(
                f"{describe_route(name, index, http[index])}: fault.{key} is now {fault[key]}, "
                f"the fault set {value}"
            )
            continue
        rest = {k: v for k, v in fault.items() if k != key}
        # An empty fault goes too, unless the route had an explicit empty one before. (The
        # abort a delay was added next to may have been another fault of ours, reverted first.)
        if not rest and entry["before"] != {}:
            patch.append({"op": "remove", "path": f"/spec/http/{index}/fault"})
        else:
            patch.append({"op": "remove", "path": f"/spec/http/{index}/fault/{key}"})
    return RevertPlan(patch, drift, gone)


def _remove_inserted(
    http: Sequence[Mapping[str, Any]], payload: Mapping[str, Any], name: str, patch: JsonPatch
) -> list[str]:
    ours = route_name(payload["tag"])
    inserted = list(payload["inserted"])
    drift = []
    removals = []
    for index, route in enumerate(http):
        if route.get("name") != ours:
            continue
        if route in inserted:
            inserted.remove(route)
            removals.append(index)
        else:
            drift.append(
                f"{describe_route(name, index, route)} was edited by someone else since the "
                "fault inserted it"
            )
    patch.extend(
        {"op": "remove", "path": f"/spec/http/{i}"} for i in sorted(removals, reverse=True)
    )
    return drift


def _locate(
    http: Sequence[Mapping[str, Any]], entry: Mapping[str, Any], key: str, value: Any
) -> int | None:
    """Where a touched route is now: at its index if still there, else the one like it."""
    index = entry["index"]
    if index < len(http) and identity(http[index]) == entry["identity"]:
        return int(index)
    alike = [i for i, r in enumerate(http) if not is_ours(r) and identity(r) == entry["identity"]]
    if len(alike) > 1:
        # Several identical routes (only the first is reachable): prefer one with our value.
        carrying = [i for i in alike if (http[i].get("fault") or {}).get(key) == value]
        alike = carrying or alike
    return alike[0] if alike else None


def _route_lost(
    http: Sequence[Mapping[str, Any]],
    entry: Mapping[str, Any],
    key: str,
    value: Any,
    name: str,
    taken: set[int],
) -> tuple[str, bool]:
    """A touched route is not found: drift if our value sits on another, changed route."""
    carrying = [
        i
        for i, r in enumerate(http)
        if i not in taken and not is_ours(r) and (r.get("fault") or {}).get(key) == value
    ]
    if carrying:
        return (
            f"VirtualService {name} http[{entry['index']}] was changed by someone else (its "
            f"match or destinations differ) and http[{carrying[0]}] carries fault.{key} {value}",
            True,
        )
    return f"VirtualService {name} http[{entry['index']}]", False


def drift_error(name: str, drift: Sequence[str], record_id: str) -> DriftError:
    """The error for routes someone else changed while the fault was active."""
    return DriftError(
        f"VirtualService {name}: someone else changed what the fault set (a GitOps or "
        f"progressive-delivery controller?); left as it is (record {record_id}):\n  "
        + "\n  ".join(drift)
    )


def managed_manifest(
    spec: FaultSpec, service: str, name: str, tag: str, version: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """A VirtualService of our own for a host no VirtualService routes to: one route, faulted.

    With a header the faulted route matches only the test header, and a plain route to the
    Service follows it, so other requests are routed as without any VirtualService.
    """
    destination = [{"destination": {"host": service}}]
    faulted: dict[str, Any] = {"name": route_name(tag), "route": destination}
    http: list[dict[str, Any]] = [faulted]
    if spec.header is not None:
        faulted["match"] = with_header(None, spec.header, f"VirtualService {name}")
        http.append({"route": destination})
    faulted["fault"] = {spec.key: spec.value}
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "VirtualService",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"hosts": [service], "http": http},
    }


def managed_name(service: str, tag: str) -> str:
    """``pytest-chaos-<service>-<tag>``, the name of a VirtualService we create."""
    return f"{ROUTE_PREFIX}{service}-{tag}"


def unknown_host(
    spec: FaultSpec, services: Sequence[str], virtual_services: Sequence[Mapping[str, Any]]
) -> TargetingError:
    """The error for a host nothing routes to and no Service is named after: what exists."""
    lines = [
        f"unknown host {spec.host!r}: no VirtualService in namespace {spec.namespace!r} routes "
        f"to it, and no Service there is named after it"
    ]
    known = list(services)
    for vs in virtual_services:
        vs_spec = vs.get("spec") or {}
        known += list(vs_spec.get("hosts") or [])
        known += [d for r in vs_spec.get("http") or [] for d in destinations(r)]
    close = difflib.get_close_matches(spec.host, sorted(set(known)), n=1)
    if close:
        lines.append(f"did you mean {close[0]!r}?")
    lines.append(f"Services: {', '.join(sorted(services)) or 'none'}")
    if not virtual_services:
        lines.append("VirtualServices: none")
    for vs in virtual_services[:10]:
        vs_spec = vs.get("spec") or {}
        routed = sorted({d for r in vs_spec.get("http") or [] for d in destinations(r)})
        hosts = ", ".join(vs_spec.get("hosts") or [])
        lines.append(
            f"VirtualService {vs['metadata']['name']}: hosts {hosts}; "
            f"routes to {', '.join(routed) or 'nothing'}"
        )
    return TargetingError("\n".join(lines))
