"""chaos.network: cut connections, partition pods, lose and delay packets.

Two mechanisms, for two different questions:

* ``cut``, ``loss`` and ``latency`` act **inside the pod's network namespace**, through an
  ephemeral container (see :mod:`pytest_chaos.faults.ephemeral`) with ``NET_ADMIN`` and
  ``NET_RAW``. The pod is not restarted. ``cut`` rejects traffic with a Service (its ClusterIP
  and every endpoint pod IP, on its ports) or an IP/CIDR in both directions, TCP with a reset,
  and then destroys the connections already open (``ss -K``): a client holding one long-lived
  connection (NATS, keep-alive HTTP, database pools) notices at once, which a NetworkPolicy can
  never achieve. ``loss`` drops a share of the pod's outgoing packets (iptables ``statistic``,
  no netem needed). ``latency`` delays every packet the pod sends (not loopback's): with a netem
  qdisc where the node's kernel has ``sch_netem``, else with pytest-chaos's NFQUEUE delayer
  (``pytest-chaos-delay`` in the toolbox image: the fault's chain in ``mangle`` queues the
  packets, the delayer, an ephemeral container that runs until undone, holds each one for the
  delay); where neither works the test is skipped with the reason. Each fault's rules live in their
  own chain ``PYTEST-CHAOS-<tag>`` (or qdisc handle); undo is a second ephemeral container that
  removes exactly those, idempotently. The namespace must admit the capabilities (PodSecurity
  ``privileged``, which unlabelled namespaces are).
* ``partition`` creates a NetworkPolicy (``pytest-chaos-partition-<tag>``) that isolates the
  selected pods in one or both directions, from everything or from some peers only; undo deletes
  it. A NetworkPolicy is enforced by the cluster's network plugin, if at all (Calico, Cilium...
  do; flannel and the plain bridge CNI do not), and it **cannot cut established connections**:
  use ``cut`` for those.

On kwok's fake nodes no process runs, so ``cut``, ``loss`` and the undo containers are checked on
the API side only (their details say ``api only (fake node)``); ``latency`` skips there.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import (
    ChaosConfigError,
    DriftError,
    InjectError,
    TargetingError,
    WaitTimeout,
)
from pytest_chaos.faults import Fault, FaultContext, injecting, scripts
from pytest_chaos.faults.checks import check_direction, check_name, check_percent
from pytest_chaos.faults.ephemeral import (
    API_ONLY,
    ContainerState,
    Injection,
    add_ephemeral_container,
    await_all,
    check_pod_security,
    choose_pods,
    ephemeral_status,
    inject_all,
    namespace_labels,
    new_injection,
    outcomes,
    ran_to_completion,
    started,
    wait_for_container,
)
from pytest_chaos.faults.scripts import Peer
from pytest_chaos.faults.undo import FAULT_LABEL, reverter, tagged
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import call
from pytest_chaos.ledger import MANAGED_BY, MANAGED_BY_LABEL, UndoRecord
from pytest_chaos.targeting import (
    Requirement,
    matching_text,
    nothing_matched,
    parse_label_selector,
    selects,
    validate_mode,
)

#: Capabilities the network faults' ephemeral containers add.
CAPABILITIES = ("NET_ADMIN", "NET_RAW")
#: Undo kind of a partition.
POLICY_UNDO = "network-policy"
#: The label with a namespace's name (set by the API server on every namespace).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: Why latency cannot run where the node's kernel can delay neither with netem nor with NFQUEUE.
NO_NETEM = (
    "neither tc netem (sch_netem) nor NFQUEUE (nfnetlink_queue) can delay packets in this "
    "node's kernel"
)
#: Why latency cannot run on a fake node.
FAKE_NODE_LATENCY = "latency needs a real node, where the pods' packets exist"
#: How each latency mechanism is named in the timeline.
LATENCY_MECHANISMS = {
    "netem": "a netem qdisc (the kernel has sch_netem)",
    "nfqueue": "the NFQUEUE delayer pytest-chaos-delay (the kernel has no sch_netem)",
}
#: How long the delayer's readiness check may take (it binds its queue in milliseconds).
READY_WITHIN = 30.0

_SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
#: LabelSelector operators of a selector's clauses, and of their negations.
_EXPRESSION = {
    "=": "In",
    "!=": "NotIn",
    "in": "In",
    "notin": "NotIn",
    "exists": "Exists",
    "!": "DoesNotExist",
}
_NEGATED = {
    "=": "NotIn",
    "!=": "In",
    "in": "NotIn",
    "notin": "In",
    "exists": "DoesNotExist",
    "!": "Exists",
}


# --- argument checks (pure; the markers call them at collection) -----------------------------


@dataclass(frozen=True, slots=True)
class PeersSpec:
    """The peers of a partition: a pod selector in a namespace (None: the whole namespace)."""

    selector: str | None
    namespace: str | None  # None: the partitioned pods' namespace


def check_peers(peers: object) -> PeersSpec | None:
    """``None``, a label selector string, or ``{"selector": ..., "namespace": ...}``."""
    if peers is None:
        return None
    if isinstance(peers, str):
        parse_label_selector(peers, name="peers")
        return PeersSpec(peers, None)
    if isinstance(peers, Mapping):
        if not peers or not set(peers) <= {"selector", "namespace"}:
            raise ChaosConfigError(
                f"peers={peers!r} must be a label selector, or a dict with 'selector' and/or "
                "'namespace' (e.g. {'selector': 'app=broker', 'namespace': 'infra'})"
            )
        selector = peers.get("selector")
        if selector is not None:
            parse_label_selector(selector, name="peers['selector']")
        namespace = peers.get("namespace")
        if namespace is not None:
            check_name("peers['namespace']", namespace)
        return PeersSpec(selector, namespace)
    raise ChaosConfigError(
        f"peers={peers!r} must be None (everything), a label selector string or a dict"
    )


def check_partition(
    selector: object,
    *,
    namespace: object,
    peers: object = None,
    direction: object = "both",
) -> tuple[tuple[Requirement, ...], PeersSpec | None, str]:
    """Check ``chaos.network.partition``'s arguments (the ``chaos_network_partition`` marker's)."""
    requirements = parse_label_selector(selector, name="selector")
    check_name("namespace", namespace)
    return requirements, check_peers(peers), check_direction(direction)


def check_to(to: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network | str:
    """A Service name (``broker``, ``broker.infra``) or an IP or CIDR (``10.0.0.0/8``)."""
    if not isinstance(to, str) or not to:
        raise ChaosConfigError(
            f"to={to!r} must be a Service name ('broker', or 'broker.infra' in another "
            "namespace) or an IP address or CIDR ('10.0.0.7', '10.1.0.0/16')"
        )
    try:
        return ipaddress.ip_network(to, strict=False)
    except ValueError:
        pass
    name, _, other = to.partition(".")
    if (
        not _SERVICE_NAME.match(name)
        or len(name) > 63
        or (other and not _SERVICE_NAME.match(other))
    ):
        raise ChaosConfigError(
            f"to={to!r} is neither an IP/CIDR nor a Service name ('broker' or 'broker.infra')"
        )
    return to


def check_port(port: object) -> int | str | None:
    """None (every port), a port number, or the name of a Service port."""
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int | str):
        raise ChaosConfigError(f"port={port!r} must be a port number, a port name or None")
    if isinstance(port, int) and not 1 <= port <= 65535:
        raise ChaosConfigError(f"port={port!r} must be from 1 to 65535")
    if isinstance(port, str) and not port:
        raise ChaosConfigError("port='' must be a port number, a port name or None")
    return port


def _check_injection(
    selector: object, namespace: object, mode: object, value: object, within: object
) -> float:
    """The checks every in-pod network fault shares; return the wait (s)."""
    parse_label_selector(selector, name="selector")
    check_name("namespace", namespace)
    validate_mode(mode, value)
    return as_seconds(within, name="within")


def _check_tools(container: object, image: object) -> None:
    for argument, given in (("container", container), ("image", image)):
        if given is not None:
            check_name(argument, given)


def check_cut(
    selector: object,
    *,
    namespace: object,
    to: object,
    port: object = None,
    mode: object = "one",
    value: object = None,
    container: object = None,
    image: object = None,
    within: object = 60,
) -> tuple[float, int | str | None]:
    """Check ``chaos.network.cut``'s arguments; return the wait (s) and the port."""
    wait = _check_injection(selector, namespace, mode, value, within)
    target = check_to(to)
    checked = check_port(port)
    if isinstance(checked, str) and not isinstance(target, str):
        raise ChaosConfigError(
            f"port={port!r} is a port name, which only a Service has; give a number with to={to!r}"
        )
    _check_tools(container, image)
    return wait, checked


def check_loss(
    selector: object,
    *,
    namespace: object,
    percent: object,
    to: object = None,
    port: object = None,
    mode: object = "one",
    value: object = None,
    container: object = None,
    image: object = None,
    within: object = 60,
) -> tuple[float, float, int | str | None]:
    """Check ``chaos.network.loss``'s arguments; return the percent, the wait (s), the port."""
    wait = _check_injection(selector, namespace, mode, value, within)
    loss = check_loss_percent(percent)
    if to is not None:
        check_to(to)
    checked = check_port(port)
    if checked is not None and to is None:
        raise ChaosConfigError(f"port={port!r} needs to= (the Service or IP it belongs to)")
    _check_tools(container, image)
    return loss, wait, checked


def check_latency(
    selector: object,
    *,
    namespace: object,
    delay: object,
    jitter: object = 0,
    mode: object = "one",
    value: object = None,
    container: object = None,
    image: object = None,
    within: object = 60,
) -> tuple[float, float, float]:
    """Check ``chaos.network.latency``'s arguments; return delay and jitter (ms), wait (s)."""
    wait = _check_injection(selector, namespace, mode, value, within)
    delay_ms, jitter_ms = check_delay(delay, jitter)
    _check_tools(container, image)
    return delay_ms, jitter_ms, wait


def check_loss_percent(percent: object) -> float:
    """A loss above 0 and at most 100 percent."""
    checked = check_percent(percent)
    if checked == 0:
        raise ChaosConfigError("percent=0 would drop nothing; give a number above 0, up to 100")
    return checked


def check_delay(delay: object, jitter: object) -> tuple[float, float]:
    """A delay above 0 and a jitter >= 0, in milliseconds."""
    delay_ms = as_seconds(delay, name="delay") * 1000
    jitter_ms = as_seconds(jitter, name="jitter") * 1000
    if delay_ms < 1:
        raise ChaosConfigError(f"delay={delay!r} must be at least 1ms (e.g. '200ms' or '1s')")
    return delay_ms, jitter_ms


# --- NetworkPolicy building (pure) -------------------------------------------------------------


def label_selector(requirements: Sequence[Requirement]) -> dict[str, Any]:
    """A Kubernetes LabelSelector (matchExpressions) equivalent to parsed requirements."""
    expressions = []
    for each in requirements:
        expression: dict[str, Any] = {"key": each.key, "operator": _EXPRESSION[each.operator]}
        if each.values:
            expression["values"] = list(each.values)
        expressions.append(expression)
    return {"matchExpressions": expressions} if expressions else {}


def negated_selectors(requirements: Sequence[Requirement]) -> list[dict[str, Any]]:
    """LabelSelectors whose union is "NOT (all requirements)": one per negated requirement.

    NetworkPolicy only allows; "every pod but the peers" is the union of the pods that miss at
    least one requirement of the peers' selector (De Morgan), one peer entry per requirement.
    """
    selectors = []
    for each in requirements:
        expression: dict[str, Any] = {"key": each.key, "operator": _NEGATED[each.operator]}
        if each.values:
            expression["values"] = list(each.values)
        selectors.append({"matchExpressions": [expression]})
    return selectors


def allow_all_but(
    peers: PeersSpec, own_namespace: str, peer_ips: Sequence[str]
) -> list[dict[str, Any]]:
    """NetworkPolicy peer entries that allow everything except the peers.

    * pods in every other namespace;
    * pods in the peers' namespace that do not match the peers' selector (De Morgan);
    * everything outside the cluster (``0.0.0.0/0`` and ``::/0``) minus the peers' pod IPs, for
      the network plugins that apply ipBlock to pod traffic too.
    """
    namespace = peers.namespace or own_namespace
    requirements = parse_label_selector(peers.selector, name="peers")
    entries: list[dict[str, Any]] = [
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": [namespace]}
                ]
            }
        }
    ]
    in_namespace = {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}
    entries += [
        {"namespaceSelector": in_namespace, "podSelector": selector}
        for selector in negated_selectors(requirements)
    ]
    for block, bits in (("0.0.0.0/0", 32), ("::/0", 128)):
        version = 4 if bits == 32 else 6
        excluded = sorted(
            f"{ip}/{bits}" for ip in peer_ips if ipaddress.ip_address(ip).version == version
        )
        entries.append({"ipBlock": {"cidr": block, **({"except": excluded} if excluded else {})}})
    return entries


def partition_policy(
    name: str,
    tag: str,
    requirements: Sequence[Requirement],
    direction: str,
    peers: PeersSpec | None,
    *,
    namespace: str,
    peer_ips: Sequence[str] = (),
) -> dict[str, Any]:
    """The partition's NetworkPolicy: isolate the pods, allow all but the peers (or nothing)."""
    types = {"ingress": ["Ingress"], "egress": ["Egress"], "both": ["Ingress", "Egress"]}
    spec: dict[str, Any] = {
        "podSelector": label_selector(requirements),
        "policyTypes": types[direction],
    }
    if peers is not None:
        allowed = allow_all_but(peers, namespace, peer_ips)
        if direction in ("ingress", "both"):
            spec["ingress"] = [{"from": allowed}]
        if direction in ("egress", "both"):
            spec["egress"] = [{"to": allowed}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, FAULT_LABEL: tag},
        },
        "spec": spec,
    }


def policy_selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a NetworkPolicy's pod selector selects labels (None: every pod)."""
    return selects(selector, labels, when_missing=True)


# --- Service resolution -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a cut or loss goes: peers to match, and how to describe them."""

    peers: tuple[Peer, ...]
    description: str
    ips: tuple[str, ...]
    ports: tuple[str, ...]


def resolve_destination(kube: Kube, namespace: str, to: str, port: int | str | None) -> Destination:
    """Turn ``to`` (a Service or an IP/CIDR) and ``port`` into peers; errors name what exists."""
    target = check_to(to)
    if not isinstance(target, str):
        ports: tuple[tuple[str, int], ...] = ()
        if isinstance(port, int):
            ports = (("tcp", port), ("udp", port))
        peer = Peer(str(target), ports)
        shown = tuple(f"{p}/{proto}" for proto, p in ports)
        return Destination(
            (peer,), f"{target}" + (f" port {port}" if port else ""), (peer.cidr,), shown
        )
    name, _, other = target.partition(".")
    where = other or namespace
    service = _read_service(kube, where, name)
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        raise ChaosConfigError(
            f"to={to!r} is an ExternalName Service (an alias of {spec.get('externalName')!r}); "
            "give the IP address or CIDR it resolves to instead"
        )
    chosen_ports = _service_ports(spec, port, f"Service {where}/{name}")
    peers: dict[str, list[tuple[str, int]]] = {}
    for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
        if ip and ip != "None":
            peers.setdefault(ip, []).extend(
                (p.get("protocol", "TCP").lower(), int(p["port"])) for p in chosen_ports
            )
    wanted_names = {p.get("name") or "" for p in chosen_ports}
    for address, endpoint_ports in _endpoints(kube, where, name):
        matching = [
            (protocol, number)
            for port_name, protocol, number in endpoint_ports
            if port_name in wanted_names
        ]
        if matching:
            peers.setdefault(address, []).extend(matching)
    if not peers:
        raise TargetingError(
            f"Service {where}/{name} has no ClusterIP and no endpoints on the chosen port(s): "
            "there is nothing to cut (is it headless with no ready pods?)"
        )
    built = tuple(
        Peer(f"{ip}/{32 if ipaddress.ip_address(ip).version == 4 else 128}", tuple(sorted(set(ps))))
        for ip, ps in sorted(peers.items())
    )
    shown = tuple(
        f"{p.get('port')}/{p.get('protocol', 'TCP')}" + (f" ({p['name']})" if p.get("name") else "")
        for p in chosen_ports
    )
    return Destination(built, f"Service {where}/{name}", tuple(sorted(peers)), shown)


def _read_service(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException

    try:
        found = call(kube.core.read_namespaced_service, name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
        listing = kube.list_raw(kube.core.list_namespaced_service, namespace)
        existing = {
            s["metadata"]["name"]: s["metadata"].get("labels") or {}
            for s in listing.get("items", [])
        }
        message = nothing_matched("services", None, namespace, existing)
        raise TargetingError(
            f"to={name!r}: there is no Service {name!r} in namespace {namespace!r}; {message}"
        ) from None
    data: dict[str, Any] = kube.serialize(found)
    return data


def _service_ports(
    spec: Mapping[str, Any], port: int | str | None, what: str
) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = list(spec.get("ports") or [])
    if port is None:
        return ports
    chosen = [p for p in ports if p.get("port") == port or (p.get("name") and p["name"] == port)]
    if not chosen:
        listed = ", ".join(
            f"{p.get('port')}/{p.get('protocol', 'TCP')}"
            + (f" ({p['name']})" if p.get("name") else "")
            for p in ports
        )
        raise ChaosConfigError(
            f"port={port!r} is not a port of {what} (its ports: {listed or 'none'})"
        )
    return chosen


def _endpoints(
    kube: Kube, namespace: str, service: str
) -> list[tuple[str, list[tuple[str, str, int]]]]:
    """(address, [(port name, protocol, port)]) of every endpoint of a Service, ready or not."""
    listing = kube.list_raw(
        kube.discovery.list_namespaced_endpoint_slice,
        namespace,
        label_selector=f"kubernetes.io/service-name={service}",
    )
    found = []
    for endpoint_slice in listing.get("items", []):
        ports = [
            (p.get("name") or "", str(p.get("protocol", "TCP")).lower(), int(p["port"]))
            for p in endpoint_slice.get("ports") or []
            if p.get("port")
        ]
        found += [
            (address, ports)
            for endpoint in endpoint_slice.get("endpoints") or []
            for address in endpoint.get("addresses") or []
        ]
    return found


# --- the verbs --------------------------------------------------------------------------------


class _NetemMissingError(InjectError):
    """The node's kernel has no netem: the latency test cannot run there (a skip, not an error)."""


class NetworkFaults:
    """``chaos.network``: see the module docstring."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx

    def cut(
        self,
        selector: str | None,
        *,
        namespace: str,
        to: str,
        port: int | str | None = None,
        mode: str = "one",
        value: float | None = None,
        container: str | None = None,
        image: str | None = None,
        within: Duration = 60,
    ) -> Fault:
        """Cut the chosen pods off a Service (or IP/CIDR): new and established connections.

        Inside each pod's network namespace, traffic with the destination is rejected both ways
        (TCP with a reset) and the open connections are destroyed; the pod keeps running (same
        uid, no restart). Revert removes exactly those rules.

        Args:
            selector: the client pods, e.g. ``"app=orders"``.
            namespace: where they are (and the Service, unless ``to`` says ``name.namespace``).
            to: a Service name (its ClusterIP and every endpoint pod IP, on its ports) or an
                IP address / CIDR.
            port: only this Service port (number or name), or this port of the IP; None: all.
            mode: how many of the matching pods (``one``, ``all``, ``fixed``...).
            value: the number or percent for the modes that need one.
            container: the container whose namespaces the ephemeral container targets
                (default: the pod's first).
            image: the toolbox image (default: ``--chaos-toolbox-image``).
            within: how long the injecting containers may take on a real node.
        """
        ctx = self._ctx
        wait, checked_port = check_cut(
            selector,
            namespace=namespace,
            to=to,
            port=port,
            mode=mode,
            value=value,
            container=container,
            image=image,
            within=within,
        )
        image = self._image(image)
        ctx.safety.check_namespace(namespace)
        destination = resolve_destination(ctx.kube, namespace, to, checked_port)
        chosen, matching = self._pods(selector, namespace, mode, value, "chaos.network.cut")
        extra = {
            "chain": None,
            "to": to,
            "ips": list(destination.ips),
            "ports": list(destination.ports),
        }
        injections = [
            new_injection(
                ctx,
                pod,
                kind="network.cut",
                effect="iptables",
                script_for=lambda tag: scripts.shell(scripts.cut_script(tag, destination.peers)),
                container=container,
                image=image,
                capabilities=CAPABILITIES,
                run_as_user=0,
                extra=extra,
            )
            for pod in chosen
        ]
        for each in injections:
            each.payload["chain"] = scripts.chain_name(each.tag)
        plan = (
            f"cut {len(chosen)} of {matching} pod(s) {matching_text(selector)} in {namespace} off "
            f"{destination.description} ({', '.join(destination.ips)}"
            + (f"; ports {', '.join(destination.ports)}" if destination.ports else "")
            + f"): {', '.join(i.ref for i in injections)}"
        )
        return self._inject(
            "network.cut",
            plan,
            injections,
            wait,
            lambda done: {
                "to": to,
                "ips": list(destination.ips),
                "ports": list(destination.ports),
                "connections": _connections(done),
            },
        )

    def loss(
        self,
        selector: str | None,
        *,
        namespace: str,
        percent: float,
        to: str | None = None,
        port: int | str | None = None,
        mode: str = "one",
        value: float | None = None,
        container: str | None = None,
        image: str | None = None,
        within: Duration = 60,
    ) -> Fault:
        """Drop percent of the chosen pods' outgoing packets (to ``to`` only, or to everything).

        Uses iptables ``-m statistic --mode random`` in the fault's own chain: no netem needed.
        Loopback traffic is never dropped. Revert removes the chain.
        """
        ctx = self._ctx
        loss, wait, checked_port = check_loss(
            selector,
            namespace=namespace,
            percent=percent,
            to=to,
            port=port,
            mode=mode,
            value=value,
            container=container,
            image=image,
            within=within,
        )
        image = self._image(image)
        ctx.safety.check_namespace(namespace)
        destination = (
            resolve_destination(ctx.kube, namespace, to, checked_port) if to is not None else None
        )
        peers = destination.peers if destination else ()
        chosen, matching = self._pods(selector, namespace, mode, value, "chaos.network.loss")
        injections = [
            new_injection(
                ctx,
                pod,
                kind="network.loss",
                effect="iptables",
                script_for=lambda tag: scripts.shell(scripts.loss_script(tag, loss, peers)),
                container=container,
                image=image,
                capabilities=CAPABILITIES,
                run_as_user=0,
                extra={
                    "percent": loss,
                    "to": to,
                    "ips": list(destination.ips if destination else ()),
                },
            )
            for pod in chosen
        ]
        for each in injections:
            each.payload["chain"] = scripts.chain_name(each.tag)
        towards = destination.description if destination else "everything but loopback"
        plan = (
            f"drop {loss:g}% of the packets {len(chosen)} of {matching} pod(s) "
            f"{matching_text(selector)} in {namespace} send to {towards}: "
            f"{', '.join(i.ref for i in injections)}"
        )
        return self._inject(
            "network.loss", plan, injections, wait, lambda _: {"percent": loss, "to": to}
        )

    def latency(
        self,
        selector: str | None,
        *,
        namespace: str,
        delay: Duration,
        jitter: Duration = 0,
        mode: str = "one",
        value: float | None = None,
        container: str | None = None,
        image: str | None = None,
        within: Duration = 60,
    ) -> Fault:
        """Delay every packet the chosen pods send (loopback excepted) by delay ± jitter.

        With a netem qdisc on their default-route interface where the node's kernel has
        ``sch_netem``; otherwise with the toolbox's NFQUEUE delayer, which keeps the packets in
        order (netem may reorder them under jitter). ``details["mechanism"]`` says which, per
        pod. On a fake node, or where neither works, the test is skipped with the reason.
        Revert removes the qdisc or the chain and stops the delayer.
        """
        import pytest

        ctx = self._ctx
        delay_ms, jitter_ms, wait = check_latency(
            selector,
            namespace=namespace,
            delay=delay,
            jitter=jitter,
            mode=mode,
            value=value,
            container=container,
            image=image,
            within=within,
        )
        image = self._image(image)
        ctx.safety.check_namespace(namespace)
        chosen, matching = self._pods(selector, namespace, mode, value, "chaos.network.latency")
        injections = [
            new_injection(
                ctx,
                pod,
                kind="network.latency",
                effect="latency",
                script_for=lambda tag: scripts.shell(
                    scripts.latency_script(tag, delay_ms, jitter_ms)
                ),
                container=container,
                image=image,
                capabilities=CAPABILITIES,
                run_as_user=0,
                extra={"delay_ms": delay_ms, "jitter_ms": jitter_ms},
            )
            for pod in chosen
        ]
        for each in injections:
            each.payload["ready_container"] = f"chaos-ready-{each.tag}"
        if any(i.fake_node for i in injections):
            fake = sorted({str(i.payload["node"]) for i in injections if i.fake_node})
            pytest.skip(f"{FAKE_NODE_LATENCY} (fake node(s): {', '.join(fake)})")
        plan = (
            f"delay the packets of {len(chosen)} of {matching} pod(s) {matching_text(selector)} in "
            f"{namespace} by {delay_ms:g}ms"
            + (f" ± {jitter_ms:g}ms" if jitter_ms else "")
            + f": {', '.join(i.ref for i in injections)}"
        )
        mechanisms: dict[str, str] = {}

        def ready(injection: Injection) -> None:
            mechanism = self._latency_ready(injection)
            mechanisms[injection.ref] = mechanism
            how = LATENCY_MECHANISMS[mechanism]
            ctx.timeline.add(
                "inject",
                f"network.latency: {injection.ref} delayed with {how}",
                targets=[injection.ref],
            )

        try:
            return self._inject(
                "network.latency",
                plan,
                injections,
                wait,
                lambda _: {
                    "delay_ms": delay_ms,
                    "jitter_ms": jitter_ms,
                    "mechanism": dict(mechanisms),
                },
                done=started,
                then=ready,
            )
        except _NetemMissingError as exc:
            pytest.skip(f"{NO_NETEM}: {exc}")

    def _latency_ready(self, injection: Injection) -> str:
        """Which mechanism delays: netem (the container ended by itself) or the NFQUEUE delayer.

        A running latency container is the delayer: a second container checks that it serves
        its queue, then sends the pod's packets to it, and reports.
        """
        ctx = self._ctx
        state = injection.state
        if state is None or state.state != "running":
            return "netem"
        meta = injection.pod["metadata"]
        name = str(injection.payload["ready_container"])
        add_ephemeral_container(
            ctx.kube,
            meta["namespace"],
            meta["name"],
            name=name,
            image=str(injection.payload["image"]),
            command=scripts.shell(scripts.latency_ready_script(injection.tag)),
            target_container=None,
            capabilities=list(CAPABILITIES),
            run_as_user=0,
        )
        try:
            checked = wait_for_container(
                ctx.kube,
                meta["namespace"],
                meta["name"],
                name,
                uid=meta.get("uid"),
                done=ran_to_completion,
                within=READY_WITHIN,
                what=f"network.latency readiness check {name} in pod {injection.ref}",
            )
        except WaitTimeout as exc:
            raise InjectError(f"network.latency: {exc}") from None
        delayer = ephemeral_status(
            ctx.kube, meta["namespace"], meta["name"], injection.inject_container
        )
        if delayer is not None and delayer.state == "terminated":
            injection.state = delayer  # the delayer ended: its own report says why
        else:
            injection.state = checked
        return "nfqueue"

    def partition(
        self,
        selector: str | None,
        *,
        namespace: str,
        peers: str | Mapping[str, str] | None = None,
        direction: str = "both",
    ) -> Fault:
        """Isolate the selected pods with a NetworkPolicy; revert deletes it.

        Args:
            selector: the pods to isolate (every pod matching it, now and later).
            namespace: their namespace.
            peers: None: isolate from everything; a label selector: only from those pods in the
                same namespace; ``{"selector": ..., "namespace": ...}``: from pods of another
                namespace (no selector: the whole namespace).
            direction: ``ingress``, ``egress`` or ``both``.

        The policy is enforced only by a network plugin that implements NetworkPolicy, and it
        cannot close established connections (use ``cut``). Other NetworkPolicies that select
        the same pods add their allow rules to ours (they are listed in the fault's details).
        """
        ctx = self._ctx
        requirements, peer_spec, checked_direction = check_partition(
            selector, namespace=namespace, peers=peers, direction=direction
        )
        ctx.safety.check_namespace(namespace)
        chosen, matching = self._pods(selector, namespace, "all", None, "chaos.network.partition")
        peer_ips = self._peer_ips(peer_spec, namespace) if peer_spec else []
        tag = ctx.ledger.new_id()
        name = f"pytest-chaos-partition-{tag}"
        policy = partition_policy(
            name,
            tag,
            requirements,
            checked_direction,
            peer_spec,
            namespace=namespace,
            peer_ips=peer_ips,
        )
        others = self._other_policies(namespace, chosen)
        from_what = "everything" if peer_spec is None else _describe_peers(peer_spec, namespace)
        plan = (
            f"partition {matching} pod(s) {matching_text(selector)} in {namespace} from "
            f"{from_what} ({checked_direction}) with NetworkPolicy {name}"
        )
        ctx.plan("network.partition", plan)
        kind = "network.partition"
        records: list[UndoRecord] = []
        target = f"{namespace}/{name}"
        with injecting(ctx, kind, records):
            records.append(
                ctx.record(
                    kind,
                    kind="NetworkPolicy",
                    namespace=namespace,
                    name=name,
                    uid=None,
                    undo=POLICY_UNDO,
                    payload={"tag": tag, "spec": policy["spec"]},
                )
            )
            _create_policy(ctx.kube, namespace, policy)
            ctx.timeline.add("inject", f"{kind}: {plan}", targets=[target])
        details: dict[str, Any] = {
            "policy": name,
            "direction": checked_direction,
            "pods": [f"{namespace}/{p['metadata']['name']}" for p in chosen],
            "peers": from_what,
            "peer_ips": peer_ips,
            "other_policies": others,
            "enforcement": "only if the cluster's network plugin enforces NetworkPolicy; "
            "established connections are not cut",
        }
        if others:
            ctx.timeline.add(
                "inject",
                f"{kind}: other NetworkPolicies select these pods and add their allow rules: "
                f"{', '.join(others)}",
            )
        return ctx.done(Fault(ctx, kind, (target,), records, details=details))

    # --- helpers ---

    def _image(self, image: str | None) -> str:
        return check_name("image", image) if image is not None else self._ctx.toolbox_image

    def _pods(
        self, selector: str | None, namespace: str, mode: str, value: float | None, verb: str
    ) -> tuple[list[dict[str, Any]], int]:
        validate_mode(mode, value)
        if verb != "chaos.network.partition":
            labels = namespace_labels(self._ctx.kube, namespace)
            check_pod_security(namespace, labels, CAPABILITIES, verb)
        return choose_pods(self._ctx, selector, namespace, mode, value)

    def _peer_ips(self, peers: PeersSpec, namespace: str) -> list[str]:
        where = peers.namespace or namespace
        listing = self._ctx.kube.list_raw(
            self._ctx.kube.core.list_namespaced_pod, where, label_selector=peers.selector or None
        )
        pods = listing.get("items", [])
        if not pods:
            everything = self._ctx.kube.list_raw(self._ctx.kube.core.list_namespaced_pod, where)
            existing = {
                p["metadata"]["name"]: p["metadata"].get("labels") or {}
                for p in everything.get("items", [])
            }
            raise TargetingError(
                "peers: " + nothing_matched("pods", peers.selector, where, existing)
            )
        ips = {
            entry["ip"]
            for pod in pods
            for entry in (pod.get("status") or {}).get("podIPs") or []
            if entry.get("ip")
        }
        return sorted(ips)

    def _other_policies(self, namespace: str, pods: Sequence[Mapping[str, Any]]) -> list[str]:
        listing = self._ctx.kube.list_raw(
            self._ctx.kube.networking.list_namespaced_network_policy, namespace
        )
        names = []
        for policy in listing.get("items", []):
            selector = (policy.get("spec") or {}).get("podSelector")
            if any(policy_selects(selector, p["metadata"].get("labels") or {}) for p in pods):
                names.append(policy["metadata"]["name"])
        return sorted(names)

    def _inject(
        self,
        kind: str,
        plan: str,
        injections: list[Injection],
        wait: float,
        more: Callable[[list[Injection]], dict[str, Any]],
        *,
        done: Callable[[ContainerState], bool] = ran_to_completion,
        then: Callable[[Injection], None] | None = None,
    ) -> Fault:
        ctx = self._ctx
        ctx.plan(kind, plan)
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            inject_all(ctx, kind, injections, records)
            ctx.timeline.add("inject", f"{kind}: {plan}", targets=[i.ref for i in injections])
            await_all(ctx, kind, injections, done=done, within=wait)
            for each in injections:
                if then is not None and not each.fake_node:
                    then(each)
                _check_script_outcome(kind, each)
        per_pod = outcomes(injections)
        fault = Fault(
            ctx,
            kind,
            tuple(i.ref for i in injections),
            records,
            details={
                "pods": per_pod,
                "containers": {i.ref: i.inject_container for i in injections},
                "effect": API_ONLY
                if all(i.fake_node for i in injections)
                else "applied in the pods' network namespaces",
                **more(injections),
            },
        )
        verified = (
            "API side only (fake nodes)" if all(i.fake_node for i in injections) else "applied"
        )
        ctx.timeline.add("verify", f"{kind}: {verified}: {per_pod}")
        return ctx.done(fault)


def _check_script_outcome(kind: str, injection: Injection) -> None:
    state = injection.state
    if state is None or state.succeeded:
        return
    if (
        scripts.NETEM_UNAVAILABLE in state.message
        or scripts.LATENCY_UNAVAILABLE in state.message
        or state.exit_code == scripts.NETEM_UNAVAILABLE_EXIT
    ):
        raise _NetemMissingError(f"node {injection.payload['node']}: {state.message.strip()}")
    raise InjectError(
        f"{kind}: container {injection.inject_container} in pod {injection.ref} failed: {state}"
    )


def _connections(injections: Sequence[Injection]) -> dict[str, dict[str, int]]:
    """closed/left connections per pod, parsed from each cut script's report."""
    found: dict[str, dict[str, int]] = {}
    for each in injections:
        message = each.state.message if each.state else ""
        numbers = dict(re.findall(r"(closed|left)=(\d+)", message))
        if numbers:
            found[each.ref] = {k: int(v) for k, v in numbers.items()}
    return found


def _describe_peers(peers: PeersSpec, namespace: str) -> str:
    where = peers.namespace or namespace
    if peers.selector:
        return f"pods matching {peers.selector!r} in {where}"
    return f"every pod in namespace {where}"


def _create_policy(kube: Kube, namespace: str, policy: dict[str, Any]) -> None:
    read = functools.partial(
        kube.read, kube.networking.read_namespaced_network_policy, namespace=namespace
    )
    create = kube.networking.create_namespaced_network_policy
    kube.create(create, namespace, policy, ours=tagged(policy, read))


@reverter(POLICY_UNDO)
def delete_partition(kube: Kube, record: UndoRecord) -> str:
    """Delete the partition's NetworkPolicy, only if it is still ours (uid-checked)."""
    from kubernetes.client.exceptions import ApiException

    namespace = str(record.namespace)
    found = kube.read(kube.networking.read_namespaced_network_policy, record.name, namespace)
    if found is None:
        return "already reverted"
    meta = found["metadata"]
    if (meta.get("labels") or {}).get(FAULT_LABEL) != record.payload.get("tag"):
        raise DriftError(
            f"{record.target} was replaced by another NetworkPolicy of the same name while the "
            f"partition was active; left as it is (record {record.id})"
        )
    body: Any = {"preconditions": {"uid": meta["uid"]}}
    try:
        call(kube.networking.delete_namespaced_network_policy, record.name, namespace, body=body)
    except ApiException as exc:
        if exc.status == 404:
            return "already reverted"
        raise
    return "reverted"
