"""The pure rules of chaos.nodes: argument checks and decisions made without a cluster.

Markers call the argument checks at collection. Everything else decides from API dicts alone
(nodes and pods as the server sends them): which nodes a verb picks, which taint is ours, what a
drain evicts, and which nodes count as schedulable.

A node counts as schedulable (for the safety check: the last schedulable node and
``--chaos-max-percent``) when it reports Ready, is not cordoned, has no NoExecute taint, and has
no NoSchedule taint that means the node is unusable: a ``node.kubernetes.io/...`` taint
(not-ready, unreachable, pressure...) or one a pytest-chaos fault holds. Other NoSchedule taints
(dedicated pools: GPU nodes, ``dedicated=infra``) still count, as capacity for the pods that
tolerate them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pytest_chaos.durations import as_seconds
from pytest_chaos.errors import ChaosConfigError, TargetingError
from pytest_chaos.faults.checks import check_count, check_name, check_taint
from pytest_chaos.targeting import (
    nothing_matched,
    parse_label_selector,
    selects,
)

#: The label every zone-aware cluster puts on its nodes.
ZONE_LABEL: Final = "topology.kubernetes.io/zone"
#: On a node this fault cordoned: the id of the ledger record that will uncordon it. It tells our
#: cordon from an operator's, also on a node re-created from the ledger (new uid).
CORDON_ANNOTATION: Final = "chaos.pytest.dev/cordoned-by"
#: Mirror pods (static pods of a kubelet) carry this annotation; they cannot be evicted.
MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
#: How a zone outage takes nodes out.
OUTAGE_HOWS: Final = ("cordon", "drain", "taint", "delete", "stop")
#: NoSchedule taints under this prefix say the node itself is unusable (not-ready, pressure...).
SYSTEM_TAINT_PREFIX: Final = "node.kubernetes.io/"
#: The taint the node-lifecycle controller mirrors ``spec.unschedulable`` with.
CORDON_TAINT: Final = "node.kubernetes.io/unschedulable"

_SHOWN: Final = 10
_FINISHED: Final = ("Succeeded", "Failed")


def check_node_targeting(
    name: object, selector: object, hosting: object, namespace: object
) -> list[str] | None:
    """Check how nodes are picked; return the node names given (None when ``name`` is None).

    ``namespace`` alone picks the nodes hosting any pod of that namespace; with ``hosting``,
    the nodes hosting the pods it selects there.

    Raises:
        ChaosConfigError: none of name/selector/hosting/namespace given, a name that is not a
            non-empty string, an invalid selector or namespace, hosting without namespace.
    """
    if name is None and selector is None and hosting is None and namespace is None:
        raise ChaosConfigError(
            "say which nodes: name='node-1' (or a list of names), "
            "selector='kubernetes.io/os=linux', namespace='shop' (the nodes hosting its pods), "
            "or hosting='app=web' with namespace='shop'"
        )
    names: list[str] | None = None
    if name is not None:
        given = [name] if isinstance(name, str) else name
        if not (
            isinstance(given, Sequence) and given and all(isinstance(n, str) and n for n in given)
        ):
            raise ChaosConfigError(f"name={name!r} must be a node name or a list of node names")
        names = list(dict.fromkeys(str(n) for n in given))
    if selector is not None:
        parse_label_selector(_as_text(selector, "selector"), name="selector")
    if hosting is not None:
        parse_label_selector(_as_text(hosting, "hosting"), name="hosting")
        if namespace is None:
            raise ChaosConfigError(
                f"hosting={hosting!r} needs namespace= (the namespace of the pods it selects)"
            )
    if namespace is not None:
        check_name("namespace", namespace)
    return names


def _as_text(value: object, argument: str) -> str:
    if not isinstance(value, str):
        raise ChaosConfigError(
            f"{argument}={value!r} ({type(value).__name__}) is not a label selector; "
            "write it as text, e.g. 'app=web'"
        )
    return value


def check_cordon_arguments(
    name: object = None,
    *,
    selector: object = None,
    hosting: object = None,
    namespace: object = None,
    count: object = 1,
) -> list[str] | None:
    """The checks of ``chaos.nodes.cordon`` and ``delete``; return the names given."""
    names = check_node_targeting(name, selector, hosting, namespace)
    check_count(count)
    return names


def check_stop_arguments(
    name: object = None, *, selector: object = None, count: object = 1, timeout: object = "60s"
) -> tuple[list[str] | None, float]:
    """The checks of ``chaos.nodes.stop``; return the names given and the timeout (s)."""
    names = check_node_targeting(name, selector, None, None)
    check_count(count)
    return names, as_seconds(timeout, name="timeout")


def check_drain_arguments(
    name: object = None,
    *,
    selector: object = None,
    hosting: object = None,
    namespace: object = None,
    count: object = 1,
    timeout: object = "120s",
    delete_emptydir_data: object = False,
    concurrency: object = 10,
) -> float:
    """The checks of ``chaos.nodes.drain`` and ``chaos_node_drain``; return the timeout (s)."""
    check_node_targeting(name, selector, hosting, namespace)
    check_count(count)
    check_count(concurrency, argument="concurrency")
    if not isinstance(delete_emptydir_data, bool):
        raise ChaosConfigError(
            f"delete_emptydir_data={delete_emptydir_data!r} must be True or False"
        )
    seconds = as_seconds(timeout, name="timeout")
    if seconds <= 0:
        raise ChaosConfigError(f"timeout={timeout!r} must be longer than zero, e.g. '120s'")
    return seconds


def check_taint_arguments(
    key: object,
    *,
    name: object = None,
    selector: object = None,
    hosting: object = None,
    namespace: object = None,
    value: object = None,
    effect: object = "NoSchedule",
    count: object = 1,
) -> Taint:
    """The checks of ``chaos.nodes.taint`` and ``chaos_node_taint``; return the taint."""
    checked_key, checked_value, checked_effect = check_taint(key, value, effect)
    check_node_targeting(name, selector, hosting, namespace)
    check_count(count)
    return Taint(checked_key, checked_value or "", checked_effect)


def check_zone_outage_arguments(
    zone: object, *, how: object = "drain", timeout: object = "120s"
) -> float:
    """The checks of ``chaos.nodes.zone_outage``; return the timeout (s)."""
    check_name("zone", zone)
    if how not in OUTAGE_HOWS:
        raise ChaosConfigError(f"how={how!r} must be one of {', '.join(OUTAGE_HOWS)}")
    seconds = as_seconds(timeout, name="timeout")
    if seconds <= 0:
        raise ChaosConfigError(f"timeout={timeout!r} must be longer than zero, e.g. '120s'")
    return seconds


def pick_nodes(names: Iterable[str], count: int, rng: Any, *, what: str = "match") -> list[str]:
    """``count`` distinct names, drawn without replacement by rng; sorted.

    The names are sorted before drawing, so the choice depends on the seed and the set of names,
    not on the order the API listed them in.

    Raises:
        TargetingError: fewer distinct names than count (the message lists them).
    """
    ordered = sorted(set(names))
    if count > len(ordered):
        raise TargetingError(
            f"count={count} needs {count} distinct nodes but only {len(ordered)} {what}: "
            f"{short_listing(ordered) or 'none'}"
        )
    return sorted(rng.sample(ordered, count))


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint as Kubernetes matches it: key, value (``""`` for none) and effect."""

    key: str
    value: str
    effect: str

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Taint:
        """The taint of an API dict (``timeAdded`` is ignored: the server sets it)."""
        return cls(str(raw.get("key", "")), str(raw.get("value") or ""), str(raw.get("effect", "")))

    def to_api(self) -> dict[str, str]:
        """As the API writes it (no ``value`` key when empty)."""
        body = {"key": self.key, "effect": self.effect}
        if self.value:
            body["value"] = self.value
        return body

    def same_slot(self, raw: Mapping[str, Any]) -> bool:
        """Whether raw has our key and effect (Kubernetes allows one taint per key and effect)."""
        return raw.get("key") == self.key and raw.get("effect") == self.effect

    def __str__(self) -> str:
        """``key=value:Effect``, as ``kubectl taint`` writes it."""
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


def with_taint(taints: Sequence[Mapping[str, Any]], taint: Taint) -> list[dict[str, Any]]:
    """The taints plus ours, appended (the others unchanged, ``timeAdded`` included)."""
    return [dict(t) for t in taints] + [taint.to_api()]


def without_taint(taints: Sequence[Mapping[str, Any]], taint: Taint) -> list[dict[str, Any]] | None:
    """The taints minus exactly ours (key, value and effect); None when ours is not there."""
    kept = [dict(t) for t in taints if Taint.of(t) != taint]
    return kept if len(kept) < len(taints) else None


def without_cordon_taint(taints: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The taints minus the controller's mirror of a cordon (``CORDON_TAINT``)."""
    return [dict(t) for t in taints if t.get("key") != CORDON_TAINT]


def restorable_node(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded Node manifest, ready to create: taints that mirror conditions removed.

    ``node.kubernetes.io/...`` taints (not-ready, unreachable, pressure) reflect the old node's
    status, as ``status`` does; the node-lifecycle controller sets them on the new node as its
    conditions require. The cordon's mirror stays only while the manifest is cordoned.
    """
    node: dict[str, Any] = json.loads(json.dumps(manifest))
    spec = node.setdefault("spec", {})
    cordoned = bool(spec.get("unschedulable"))
    taints = [
        t
        for t in spec.get("taints") or []
        if not str(t.get("key", "")).startswith(SYSTEM_TAINT_PREFIX)
        or (cordoned and t.get("key") == CORDON_TAINT)
    ]
    if taints:
        spec["taints"] = taints
    else:
        spec.pop("taints", None)
    return node


def is_schedulable(node: Mapping[str, Any], held: Collection[Taint] = ()) -> bool:
    """Whether a node counts as schedulable capacity for the safety check (see module doc).

    Args:
        node: the Node as the API returns it (JSON).
        held: taints pytest-chaos faults currently hold on this node (they do not count as
            capacity even when NoSchedule).
    """
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    conditions = (node.get("status") or {}).get("conditions") or []
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return False
    for raw in spec.get("taints") or []:
        effect = raw.get("effect")
        if effect == "NoExecute":
            return False
        if effect == "NoSchedule" and (
            str(raw.get("key", "")).startswith(SYSTEM_TAINT_PREFIX) or Taint.of(raw) in held
        ):
            return False
    return True


def schedulable_nodes(
    nodes: Iterable[Mapping[str, Any]], held: Mapping[str, Collection[Taint]] | None = None
) -> list[str]:
    """Names of the nodes that count as schedulable (held: taints our faults hold, by node)."""
    held = held or {}
    return sorted(node_name(n) for n in nodes if is_schedulable(n, held.get(node_name(n), ())))


def budget_selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether a PodDisruptionBudget's selector selects labels (policy/v1: None, nothing)."""
    return selects(selector, labels, when_missing=False)


@dataclass(frozen=True, slots=True)
class PodRef:
    """One pod a drain deals with."""

    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


@dataclass
class DrainPlan:
    """What draining one node means for each of its pods (decided from a pod list alone)."""

    node: str
    evict: list[PodRef] = field(default_factory=list)
    terminating: list[PodRef] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    emptydir: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """True when some pod may not be evicted (emptyDir data without the flag, no controller)."""
        return bool(self.emptydir or self.unmanaged)

    def refusal(self) -> str:
        """Why the node cannot be drained, naming the pods."""
        parts = []
        if self.unmanaged:
            parts.append(
                f"pods without a controller, which nothing would re-create (kubectl drain refuses "
                f"them too without --force; delete them or give them a controller): "
                f"{short_listing(self.unmanaged)}"
            )
        if self.emptydir:
            parts.append(
                f"pods with emptyDir volumes, whose data an eviction deletes (pass "
                f"delete_emptydir_data=True to evict them anyway): {short_listing(self.emptydir)}"
            )
        return f"{self.node}: " + "; ".join(parts)


def plan_drain(
    node: str, pods: Iterable[Mapping[str, Any]], *, delete_emptydir_data: bool
) -> DrainPlan:
    """Sort a node's pods as ``kubectl drain --ignore-daemonsets`` would.

    * mirror pods and DaemonSet pods are skipped (they are not evicted: the kubelet and the
      DaemonSet controller own them, and DaemonSet pods tolerate the cordon anyway);
    * pods already terminating are not evicted again, only waited for;
    * finished pods (Succeeded/Failed) are evicted, whatever their volumes or owners;
    * pods without a controller, and pods with emptyDir volumes unless delete_emptydir_data,
      are refused.
    """
    plan = DrainPlan(node)
    for pod in pods:
        meta = pod.get("metadata") or {}
        ref = PodRef(str(meta.get("namespace")), str(meta.get("name")), str(meta.get("uid")))
        controller = next(
            (o for o in meta.get("ownerReferences") or [] if o.get("controller")), None
        )
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            plan.skipped.append(f"{ref} (mirror pod)")
        elif controller is not None and controller.get("kind") == "DaemonSet":
            plan.skipped.append(f"{ref} (DaemonSet {controller.get('name')})")
        elif meta.get("deletionTimestamp"):
            plan.terminating.append(ref)
        elif (pod.get("status") or {}).get("phase") in _FINISHED:
            plan.evict.append(ref)
        else:
            volumes = (pod.get("spec") or {}).get("volumes") or []
            if controller is None:
                plan.unmanaged.append(str(ref))
            if not delete_emptydir_data and any("emptyDir" in v for v in volumes):
                names = ", ".join(str(v.get("name")) for v in volumes if "emptyDir" in v)
                plan.emptydir.append(f"{ref} (emptyDir {names})")
            plan.evict.append(ref)
    return plan


def hosting_nodes(pods: Iterable[Mapping[str, Any]]) -> set[str]:
    """The nodes the pods run on: scheduled pods that are not terminating."""
    return {
        str(p["spec"]["nodeName"])
        for p in pods
        if (p.get("spec") or {}).get("nodeName")
        and not (p.get("metadata") or {}).get("deletionTimestamp")
    }


def no_hosted_pods(namespace: str, pods: Sequence[Mapping[str, Any]]) -> str:
    """Why a namespace's pods put no node forward: none at all, or each one's state."""
    if not pods:
        return (
            f"namespace {namespace!r} has no pods (check the name, or that its workloads "
            "were created)"
        )
    states = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        state = "terminating" if meta.get("deletionTimestamp") else "not scheduled yet"
        states.append(f"{meta.get('name')} ({state})")
    return (
        f"its {len(pods)} pod(s) are all terminating or not scheduled yet: {short_listing(states)}"
    )


def node_name(node: Mapping[str, Any]) -> str:
    return str(node["metadata"]["name"])


def node_labels(node: Mapping[str, Any]) -> dict[str, str]:
    return dict(node.get("metadata", {}).get("labels") or {})


def short_listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return f"{shown}, +{len(names) - _SHOWN} more" if len(names) > _SHOWN else shown


def existing_lines(nodes: Sequence[Mapping[str, Any]]) -> str:
    """The node listing of nothing_matched, without its first line."""
    message = nothing_matched("nodes", None, None, {node_name(n): node_labels(n) for n in nodes})
    return message.split("\n", 1)[1]


# ---------------------------------------------------------------------------------------------
# Which of the matching nodes a verb may take (a node already in that state is not one)
# ---------------------------------------------------------------------------------------------


def already_cordoned(node: Mapping[str, Any]) -> str | None:
    return "cordoned" if (node.get("spec") or {}).get("unschedulable") else None


def already_tainted(taint: Taint, node: Mapping[str, Any]) -> str | None:
    for raw in (node.get("spec") or {}).get("taints") or []:
        if taint.same_slot(raw):
            return f"tainted {Taint.of(raw)}"
    return None


def eligible_nodes(
    nodes: list[dict[str, Any]],
    skip: Callable[[Mapping[str, Any]], str | None] | None,
    *,
    what: str,
    verb: str,
) -> list[dict[str, Any]]:
    if skip is None:
        return nodes
    eligible = [n for n in nodes if skip(n) is None]
    if not eligible:
        states = ", ".join(f"{node_name(n)} ({skip(n)})" for n in nodes)
        raise TargetingError(
            f"cannot {verb}: every node {what} is already in that state: {states}. Its state is "
            "not this fault's to undo, so it is not a target; pick other nodes"
        )
    return eligible


def no_such_zone(zone: str, nodes: Sequence[Mapping[str, Any]]) -> str:
    import difflib

    zones = Counter(node_labels(n).get(ZONE_LABEL) for n in nodes)
    known = sorted(z for z in zones if z is not None)
    lines = [f"no node is in zone {zone!r} (label {ZONE_LABEL})"]
    close = difflib.get_close_matches(zone, known, n=1)
    if close:
        lines.append(f"did you mean {close[0]!r}?")
    if known:
        lines.append("zones that exist: " + ", ".join(f"{z} ({zones[z]} node(s))" for z in known))
    else:
        lines.append(f"no node has the label {ZONE_LABEL}")
    if zones.get(None):
        lines.append(f"{zones[None]} node(s) have no zone label")
    return "\n".join(lines)
