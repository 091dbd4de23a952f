"""chaos.nodes: cordon, drain, taint, delete and zone outages of nodes.

Every verb picks its nodes the same way: ``name=`` (one node or a list), ``selector=`` (a node
label selector) and ``hosting=`` + ``namespace=`` (the nodes running pods that match a pod label
selector); given together, a node must satisfy all of them. ``count=`` then picks that many
distinct nodes at random (seeded: ``--chaos-seed`` replays the choice). Nothing matching, fewer
nodes than ``count``, or a bad argument is an error before anything is touched, and the error
lists the nodes that do exist with their labels.

What each verb does and how it is undone:

* ``cordon``: marks nodes unschedulable. Only nodes that were schedulable are targets, so the
  undo uncordons exactly the nodes this fault cordoned; a node an operator had cordoned stays
  cordoned.
* ``drain``: what ``kubectl drain`` and every cluster upgrade do. Cordon first, then evict every
  pod through the Eviction API, so PodDisruptionBudgets are honoured (DaemonSet and mirror pods are
  left alone; pods with emptyDir data or without a controller are refused up front, naming them).
  Evictions run concurrently; a budget that blocks them is retried until ``timeout``, then the
  error names the budget. A drain that cannot finish undoes its own cordon before raising: never a
  half-applied fault (the book's drain left its node ``SchedulingDisabled``). The undo uncordons;
  evicted pods are not brought back: their controllers have already re-created them elsewhere,
  which is what the test observes, and an eviction cannot be reversed.
* ``taint``: adds exactly one taint (key, value, effect). A node that already carries a taint with
  that key and effect is not a target (that taint is not ours to remove). The undo removes exactly
  our taint and leaves every other one alone, including taints added meanwhile; a taint whose value
  someone changed meanwhile is reported as drift, not removed.
* ``delete``: deletes the Node object, not the machine. On a cloud cluster the VM keeps running
  (its containers too) and in most setups its kubelet re-registers the Node by itself; the cloud
  node controller deletes Node objects whose VM is gone. The undo re-creates the Node from the
  manifest recorded before the delete, unless a node of that name exists again (re-registered),
  which is left as it is.
* ``zone_outage``: every node of a ``topology.kubernetes.io/zone`` at once, by cordon, drain,
  NoExecute taint or delete, as one fault, undone node by node as above.

Every change is written to the ledger first and made with optimistic concurrency (the node's
resourceVersion, retried on 409), so the undo works from the record alone (``pytest-chaos
cleanup`` after a crash) and never overwrites someone else's change.

Safety: a verb that takes nodes out of scheduling refuses to take out the last schedulable node
and obeys ``--chaos-max-percent`` over the schedulable nodes. A node counts as schedulable when it
reports Ready, is not cordoned, has no NoExecute taint, and has no NoSchedule taint that means the
node is unusable: a ``node.kubernetes.io/...`` taint (not-ready, unreachable, pressure...) or one a
pytest-chaos fault holds. Other NoSchedule taints (dedicated pools: GPU nodes, ``dedicated=infra``)
still count, as capacity for the pods that tolerate them.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import (
    ChaosConfigError,
    DriftError,
    InconclusiveError,
    InjectError,
    RevertError,
    TargetingError,
    WaitTimeout,
)
from pytest_chaos.faults import Fault, FaultContext, injecting
from pytest_chaos.faults.checks import check_count, check_name, check_taint
from pytest_chaos.faults.undo import restorable_manifest, reverter
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import call, describe, is_transient
from pytest_chaos.ledger import CLUSTER_SCOPE_NAMESPACE, RECORD_KEY, UNDO_LABEL, UndoRecord
from pytest_chaos.targeting import (
    Requirement,
    matches,
    nothing_matched,
    parse_label_selector,
)

#: The label every zone-aware cluster puts on its nodes.
ZONE_LABEL: Final = "topology.kubernetes.io/zone"
#: The NoExecute taint of ``zone_outage(how="taint")``.
ZONE_OUTAGE_TAINT: Final = "chaos.pytest.dev/zone-outage"
#: On a node this fault cordoned: the id of the ledger record that will uncordon it. It tells our
#: cordon from an operator's, also on a node re-created from the ledger (new uid).
CORDON_ANNOTATION: Final = "chaos.pytest.dev/cordoned-by"
#: Mirror pods (static pods of a kubelet) carry this annotation; they cannot be evicted.
MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
#: How a zone outage takes nodes out.
OUTAGE_HOWS: Final = ("cordon", "drain", "taint", "delete")
#: Taint effects that take a node out of scheduling (the safety check applies to them).
BLOCKING_EFFECTS: Final = ("NoSchedule", "NoExecute")
#: NoSchedule taints under this prefix say the node itself is unusable (not-ready, pressure...).
SYSTEM_TAINT_PREFIX: Final = "node.kubernetes.io/"
#: The taint the node-lifecycle controller mirrors ``spec.unschedulable`` with.
CORDON_TAINT: Final = "node.kubernetes.io/unschedulable"

#: The field manager of our node writes: managedFields then tell our cordon from a later one.
FIELD_MANAGER: Final = "pytest-chaos"

#: How long deleted Node objects may take to go before the fault is inconclusive (seconds).
DELETE_WITHIN: Final = 60.0

_UNDO_UNCORDON: Final = "uncordon"
_UNDO_UNTAINT: Final = "untaint"
_UNDO_RECREATE: Final = "recreate-node"
_ATTEMPTS: Final = 10
_SHOWN: Final = 10
_FINISHED: Final = ("Succeeded", "Failed")


# ---------------------------------------------------------------------------------------------
# Pure helpers: argument checks (markers call them at collection) and decisions without a cluster
# ---------------------------------------------------------------------------------------------


def check_node_targeting(
    name: object, selector: object, hosting: object, namespace: object
) -> list[str] | None:
    """Check how nodes are picked; return the node names given (None when ``name`` is None).

    Raises:
        ChaosConfigError: none of name/selector/hosting given, a name that is not a non-empty
            string, an invalid selector, hosting without namespace or namespace without hosting.
    """
    if name is None and selector is None and hosting is None:
        raise ChaosConfigError(
            "say which nodes: name='node-1' (or a list of names), "
            "selector='kubernetes.io/os=linux', or hosting='app=web' with namespace='shop'"
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
        check_name("namespace", namespace)
    elif namespace is not None:
        raise ChaosConfigError(
            f"namespace={namespace!r} is only used with hosting= (nodes are not namespaced); "
            "add hosting='app=...' or leave namespace out"
        )
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
) -> None:
    """The checks of ``chaos.nodes.cordon`` and ``delete`` (no cluster access)."""
    check_node_targeting(name, selector, hosting, namespace)
    check_count(count)


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
    seconds = as_seconds(timeout, name="timeout")  # type: ignore[arg-type]
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
    seconds = as_seconds(timeout, name="timeout")  # type: ignore[arg-type]
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
            f"{_listing(ordered) or 'none'}"
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
    return sorted(_name(n) for n in nodes if is_schedulable(n, held.get(_name(n), ())))


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether a Kubernetes LabelSelector (``matchLabels``/``matchExpressions``) selects labels.

    As in policy/v1: an empty selector selects everything, a missing one (None) nothing.
    """
    if selector is None:
        return False
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    requirements = [
        Requirement(str(k), "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        operator = operators.get(str(expression.get("operator")))
        if operator is None:
            return False
        values = tuple(str(v) for v in expression.get("values") or ())
        requirements.append(Requirement(str(expression.get("key")), operator, values))  # type: ignore[arg-type]
    return matches(requirements, labels)


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
                f"{_listing(self.unmanaged)}"
            )
        if self.emptydir:
            parts.append(
                f"pods with emptyDir volumes, whose data an eviction deletes (pass "
                f"delete_emptydir_data=True to evict them anyway): {_listing(self.emptydir)}"
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


def _name(node: Mapping[str, Any]) -> str:
    return str(node["metadata"]["name"])


def _labels(node: Mapping[str, Any]) -> dict[str, str]:
    return dict(node.get("metadata", {}).get("labels") or {})


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return f"{shown}, +{len(names) - _SHOWN} more" if len(names) > _SHOWN else shown


def _existing_lines(nodes: Sequence[Mapping[str, Any]]) -> str:
    """The node listing of nothing_matched, without its first line."""
    message = nothing_matched("nodes", None, None, {_name(n): _labels(n) for n in nodes})
    return message.split("\n", 1)[1]


# ---------------------------------------------------------------------------------------------
# The verbs
# ---------------------------------------------------------------------------------------------


@dataclass
class _Targets:
    """The nodes a verb will touch, and the cluster's nodes it decided among."""

    chosen: list[dict[str, Any]]
    nodes: list[dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return [_name(n) for n in self.chosen]


class NodeFaults:
    """``chaos.nodes``: see the module docstring."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx

    # ------------------------------------------------------------------ cordon

    def cordon(
        self,
        name: str | Sequence[str] | None = None,
        *,
        selector: str | None = None,
        hosting: str | None = None,
        namespace: str | None = None,
        count: int = 1,
    ) -> Fault:
        """Mark nodes unschedulable (``kubectl cordon``): running pods stay, new ones go elsewhere.

        Args:
            name: a node name, or a list of them.
            selector: a node label selector, e.g. ``"kubernetes.io/os=linux"``.
            hosting: a pod label selector: nodes running such pods (needs ``namespace``).
            namespace: the namespace of the ``hosting`` pods.
            count: how many of the matching nodes, picked at random (seeded), never twice.

        Undo: uncordons the nodes this fault cordoned, and only those. A node already cordoned
        (by an operator, by another fault) is not a target, so it stays cordoned; if every
        matching node is already cordoned, that is a TargetingError. A node someone uncordoned
        meanwhile is left alone; one someone uncordoned and cordoned again (the node's
        managedFields name another owner of ``spec.unschedulable``) is a DriftError and stays
        cordoned; a node deleted meanwhile has nothing to undo.
        """
        ctx = self._ctx
        names = check_node_targeting(name, selector, hosting, namespace)
        check_count(count)
        targets = self._target(
            names, selector, hosting, namespace, count, skip=_cordoned, verb="cordon"
        )
        ctx.safety.check_nodes(targets.names, self._schedulable(targets.nodes), "cordon")
        ctx.plan("nodes.cordon", f"cordon {', '.join(targets.names)}")
        records: list[UndoRecord] = []
        with injecting(ctx, "nodes.cordon", records):
            for node in targets.chosen:
                self._cordon(node, "nodes.cordon", records)
            await_cordon_taint(ctx, targets.names)
            ctx.timeline.add(
                "inject",
                f"nodes.cordon: {', '.join(targets.names)} cordoned",
                targets=targets.names,
            )
        return ctx.done(Fault(ctx, "nodes.cordon", tuple(targets.names), records))

    # ------------------------------------------------------------------ drain

    def drain(
        self,
        name: str | Sequence[str] | None = None,
        *,
        selector: str | None = None,
        hosting: str | None = None,
        namespace: str | None = None,
        count: int = 1,
        timeout: Duration = "120s",
        delete_emptydir_data: bool = False,
        concurrency: int = 10,
    ) -> Fault:
        """Drain nodes as ``kubectl drain --ignore-daemonsets`` does, and as upgrades do.

        Each node is cordoned, then every pod on it is evicted through the Eviction API, which
        honours PodDisruptionBudgets; the call returns once the evicted pods are gone from the
        node. DaemonSet pods and mirror pods are left in place; pods already terminating are
        waited for; finished pods are evicted.

        Args:
            name: a node name, or a list of them.
            selector: a node label selector, e.g. ``"kubernetes.io/os=linux"``.
            hosting: a pod label selector: nodes running such pods (needs ``namespace``).
            namespace: the namespace of the ``hosting`` pods.
            count: how many of the matching nodes, picked at random (seeded), never twice.
            timeout: how long the whole drain may take. A budget that blocks an eviction
                (HTTP 429) is retried with backoff until then; at the deadline the drain fails
                with an InjectError naming the budget(s).
            delete_emptydir_data: evict pods with emptyDir volumes too (their data is lost).
                Without it such pods are refused, by name, before anything is touched.
            concurrency: evictions in flight at once.

        Pods without a controller (nothing would re-create them) are refused, by name, before
        anything is touched, as ``kubectl drain`` does without ``--force``. Nodes already
        cordoned are not targets (they are out of service already and their cordon is not ours).

        Undo: uncordons the nodes. Evicted pods are not brought back: their controllers
        re-created them elsewhere during the fault (that is what the test checks), and an
        eviction cannot be reversed. If the drain cannot finish (a budget, the timeout, any
        error), it uncordons the nodes before raising: the fault is never left half-applied;
        pods evicted until then stay evicted.
        """
        ctx = self._ctx
        seconds = check_drain_arguments(
            name,
            selector=selector,
            hosting=hosting,
            namespace=namespace,
            count=count,
            timeout=timeout,
            delete_emptydir_data=delete_emptydir_data,
            concurrency=concurrency,
        )
        names = check_node_targeting(name, selector, hosting, namespace)
        targets = self._target(
            names, selector, hosting, namespace, count, skip=_cordoned, verb="drain"
        )
        ctx.safety.check_nodes(targets.names, self._schedulable(targets.nodes), "drain")
        plans = self._drain_plans(targets.names, delete_emptydir_data)
        ctx.plan("nodes.drain", _drain_summary(plans))
        drainer = _Drainer(ctx, seconds, delete_emptydir_data, concurrency)
        records: list[UndoRecord] = []
        with injecting(ctx, "nodes.drain", records):
            plans = drainer.run(targets.chosen, "nodes.drain", records, self._cordon)
            ctx.timeline.add(
                "inject", f"nodes.drain: {_drain_summary(plans)}", targets=targets.names
            )
        return ctx.done(
            Fault(ctx, "nodes.drain", tuple(targets.names), records, details=_drain_details(plans))
        )

    # ------------------------------------------------------------------ taint

    def taint(
        self,
        key: str,
        *,
        name: str | Sequence[str] | None = None,
        selector: str | None = None,
        hosting: str | None = None,
        namespace: str | None = None,
        value: str | None = None,
        effect: str = "NoSchedule",
        count: int = 1,
    ) -> Fault:
        """Add a taint to nodes (``kubectl taint nodes <node> key=value:effect``).

        Args:
            key: the taint key, e.g. ``"chaos.pytest.dev/down"``.
            name: a node name, or a list of them.
            selector: a node label selector.
            hosting: a pod label selector: nodes running such pods (needs ``namespace``).
            namespace: the namespace of the ``hosting`` pods.
            value: the taint value (None: no value).
            effect: ``NoSchedule`` (new pods go elsewhere), ``PreferNoSchedule`` (a preference
                only) or ``NoExecute`` (running pods that do not tolerate it are evicted too).
            count: how many of the matching nodes, picked at random (seeded), never twice.

        A node that already has a taint with this key and effect is not a target: that taint is
        not ours to remove (if every matching node has one, that is a TargetingError). The safety
        check (last schedulable node, ``--chaos-max-percent``) applies to NoSchedule and
        NoExecute.

        Undo: removes exactly this taint (same key, value and effect), leaving every other taint,
        including ones added meanwhile. If someone changed the taint's value meanwhile, that is a
        DriftError and the node is left as it is.
        """
        ctx = self._ctx
        taint = check_taint_arguments(
            key,
            name=name,
            selector=selector,
            hosting=hosting,
            namespace=namespace,
            value=value,
            effect=effect,
            count=count,
        )
        names = check_node_targeting(name, selector, hosting, namespace)
        targets = self._target(
            names,
            selector,
            hosting,
            namespace,
            count,
            skip=functools.partial(_has_slot, taint),
            verb=f"taint ({taint})",
        )
        if taint.effect in BLOCKING_EFFECTS:
            ctx.safety.check_nodes(
                targets.names, self._schedulable(targets.nodes), f"taint ({taint})"
            )
        ctx.plan("nodes.taint", f"taint {', '.join(targets.names)} with {taint}")
        records: list[UndoRecord] = []
        with injecting(ctx, "nodes.taint", records):
            for node in targets.chosen:
                self._taint(node, taint, "nodes.taint", records)
            ctx.timeline.add(
                "inject",
                f"nodes.taint: {taint} on {', '.join(targets.names)}",
                targets=targets.names,
            )
        return ctx.done(
            Fault(ctx, "nodes.taint", tuple(targets.names), records, details={"taint": str(taint)})
        )

    # ------------------------------------------------------------------ delete

    def delete(
        self,
        name: str | Sequence[str] | None = None,
        *,
        selector: str | None = None,
        hosting: str | None = None,
        namespace: str | None = None,
        count: int = 1,
    ) -> Fault:
        """Delete Node objects (``kubectl delete node``); the machines are not touched.

        Args:
            name: a node name, or a list of them.
            selector: a node label selector.
            hosting: a pod label selector: nodes running such pods (needs ``namespace``).
            namespace: the namespace of the ``hosting`` pods.
            count: how many of the matching nodes, picked at random (seeded), never twice.

        The call returns once the Node objects are gone (InconclusiveError if a finalizer holds
        one for more than a minute).

        What it means: the scheduler stops placing pods there at once; the pod garbage collector
        deletes the node's pods after a while and their controllers re-create them elsewhere. On
        a cloud cluster the VM keeps running (its workloads are orphaned, as the book notes) and
        in most setups its kubelet re-registers the Node by itself within a minute; the cloud
        node controller deletes Node objects whose VM is gone. The embedded cluster's kwok nodes
        have no kubelet, so nothing re-registers them.

        Undo: re-creates the Node from the manifest recorded before deleting it (labels,
        annotations, taints, spec; the server sets uid and status), unless a node of that name
        exists again (re-registered by its kubelet), which is then left as it is. A cordon or taint
        of another pytest-chaos fault that has already been reverted is not brought back with it.
        On the embedded cluster kwok makes the re-created node Ready; on a real cluster a Node
        re-created without a kubelet behind it stays NotReady until one registers.
        """
        ctx = self._ctx
        names = check_node_targeting(name, selector, hosting, namespace)
        check_count(count)
        targets = self._target(names, selector, hosting, namespace, count, verb="delete")
        ctx.safety.check_nodes(targets.names, self._schedulable(targets.nodes), "delete")
        ctx.plan("nodes.delete", f"delete node(s) {', '.join(targets.names)}")
        records: list[UndoRecord] = []
        with injecting(ctx, "nodes.delete", records):
            self._delete(targets.chosen, "nodes.delete", records)
            ctx.timeline.add(
                "inject",
                f"nodes.delete: node(s) {', '.join(targets.names)} deleted",
                targets=targets.names,
            )
        fault = ctx.done(Fault(ctx, "nodes.delete", tuple(targets.names), records))
        self._verify_deleted(targets.chosen, DELETE_WITHIN, "nodes.delete")
        return fault

    # ------------------------------------------------------------------ zone outage

    def zone_outage(self, zone: str, *, how: str = "drain", timeout: Duration = "120s") -> Fault:
        """Take every node of a zone out at once, as one fault (a data-centre outage).

        Args:
            zone: the value of the nodes' ``topology.kubernetes.io/zone`` label.
            how: ``drain`` (cordon and evict, honouring budgets), ``cordon``, ``taint`` (a
                NoExecute taint ``chaos.pytest.dev/zone-outage``: pods without a toleration are
                evicted at once, budgets are not consulted, as when a zone goes dark) or
                ``delete`` (the Node objects).
            timeout: for ``drain``, the whole drain; for ``delete``, how long the Node objects
                may take to go.

        Nodes of the zone already cordoned (cordon, drain) or already carrying the outage taint
        are left out, as the single-node verbs do. A drained zone loses its local data as a dark
        zone would: pods with emptyDir volumes are evicted too (pods without a controller are
        still refused). The safety check covers the whole zone: a zone outage that would leave
        no schedulable node is refused.

        Undo: that of the verb used, for each node (see cordon, drain, taint, delete).
        """
        ctx = self._ctx
        seconds = check_zone_outage_arguments(zone, how=how, timeout=timeout)
        nodes = self._list_nodes()
        in_zone = [n for n in nodes if _labels(n).get(ZONE_LABEL) == zone]
        if not in_zone:
            raise TargetingError(_no_such_zone(zone, nodes))
        taint = Taint(ZONE_OUTAGE_TAINT, zone, "NoExecute")
        skips: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
            "cordon": _cordoned,
            "drain": _cordoned,
            "taint": functools.partial(_has_slot, taint),
        }
        skip = skips.get(how)
        chosen = _eligible(in_zone, skip, what=f"in zone {zone!r}", verb=f"take out ({how})")
        names = [_name(n) for n in chosen]
        verb = f"take zone {zone!r} out ({how})"
        ctx.safety.check_nodes(names, self._schedulable(nodes), verb)
        kind = "nodes.zone_outage"
        plans: list[DrainPlan] = []
        if how == "drain":
            # A dark zone loses its local data anyway: emptyDir pods are evicted too.
            plans = self._drain_plans(names, True)
        ctx.plan(kind, f"{verb}: {', '.join(names)}")
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            if how == "cordon":
                for node in chosen:
                    self._cordon(node, kind, records)
                await_cordon_taint(ctx, names)
            elif how == "drain":
                drainer = _Drainer(ctx, seconds, True, 10)
                plans = drainer.run(chosen, kind, records, self._cordon)
            elif how == "taint":
                for node in chosen:
                    self._taint(node, taint, kind, records)
            else:
                self._delete(chosen, kind, records)
            ctx.timeline.add("inject", f"{kind}: {verb}: {', '.join(names)}", targets=names)
        details: dict[str, Any] = {"zone": zone, "how": how}
        if plans:
            details |= _drain_details(plans)
        fault = ctx.done(Fault(ctx, kind, tuple(names), records, details=details))
        if how == "delete":
            self._verify_deleted(chosen, seconds, kind)
        return fault

    # ------------------------------------------------------------------ targeting

    def _list_nodes(self) -> list[dict[str, Any]]:
        listing = self._ctx.kube.list_raw(self._ctx.kube.core.list_node)
        return list(listing.get("items", []))

    def _target(
        self,
        names: list[str] | None,
        selector: str | None,
        hosting: str | None,
        namespace: str | None,
        count: int,
        *,
        verb: str,
        skip: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> _Targets:
        nodes = self._list_nodes()
        matched = self._matching(nodes, names, selector, hosting, namespace)
        eligible = _eligible(matched, skip, what="matching", verb=verb)
        what = "match"
        if skip is not None and len(eligible) < len(matched):
            left_out = ", ".join(f"{_name(n)} ({skip(n)})" for n in matched if skip(n))
            what = f"match and are not already in that state (left out: {left_out})"
        chosen = pick_nodes([_name(n) for n in eligible], count, self._ctx.rng, what=what)
        by_name = {_name(n): n for n in eligible}
        return _Targets([by_name[n] for n in chosen], nodes)

    def _matching(
        self,
        nodes: list[dict[str, Any]],
        names: list[str] | None,
        selector: str | None,
        hosting: str | None,
        namespace: str | None,
    ) -> list[dict[str, Any]]:
        existing = {_name(n) for n in nodes}
        matched = nodes
        if names is not None:
            missing = [n for n in names if n not in existing]
            if missing:
                raise TargetingError(
                    f"no node named {', '.join(missing)}\n{_existing_lines(nodes)}"
                )
            matched = [n for n in matched if _name(n) in names]
        if selector is not None:
            requirements = parse_label_selector(selector, name="selector")
            matched = [n for n in matched if matches(requirements, _labels(n))]
            if not matched:
                raise TargetingError(
                    nothing_matched("nodes", selector, None, {_name(n): _labels(n) for n in nodes})
                )
        if hosting is not None:
            assert namespace is not None  # checked by check_node_targeting
            hosts = self._hosts(hosting, namespace)
            before = [_name(n) for n in matched]
            matched = [n for n in matched if _name(n) in hosts]
            if not matched:
                raise TargetingError(
                    f"the pods matching hosting={hosting!r} in namespace {namespace!r} run on "
                    f"{', '.join(sorted(hosts))}, and none of those is among the nodes the other "
                    f"conditions selected ({_listing(before)})"
                )
        return matched

    def _hosts(self, hosting: str, namespace: str) -> set[str]:
        """The nodes running (not terminating) pods that match hosting in namespace."""
        kube = self._ctx.kube
        pods = kube.list_raw(kube.core.list_namespaced_pod, namespace, label_selector=hosting)
        hosts = {
            str(p["spec"]["nodeName"])
            for p in pods.get("items", [])
            if (p.get("spec") or {}).get("nodeName") and not p["metadata"].get("deletionTimestamp")
        }
        if not hosts:
            everything = kube.list_raw(kube.core.list_namespaced_pod, namespace)
            existing = {
                str(p["metadata"]["name"]): p["metadata"].get("labels") or {}
                for p in everything.get("items", [])
            }
            raise TargetingError(
                "no node hosts the pods of hosting=: "
                + nothing_matched("pods", hosting, namespace, existing)
                + "\n(pods not yet scheduled or already terminating do not count)"
            )
        return hosts

    def _schedulable(self, nodes: Sequence[Mapping[str, Any]]) -> list[str]:
        return schedulable_nodes(nodes, held_taints(self._ctx.kube))

    # ------------------------------------------------------------------ mutations

    def _cordon(self, node: Mapping[str, Any], kind: str, records: list[UndoRecord]) -> None:
        """Record, then cordon one node (with its resourceVersion; 409: look again)."""
        ctx = self._ctx
        name = _name(node)
        was = (node.get("spec") or {}).get("unschedulable")
        record = ctx.record(
            kind,
            kind="Node",
            namespace=None,
            name=name,
            uid=node["metadata"].get("uid"),
            undo=_UNDO_UNCORDON,
            payload={"unschedulable_before": was},
        )
        records.append(record)
        current: Mapping[str, Any] = node
        for _attempt in range(_ATTEMPTS):
            if (current.get("spec") or {}).get("unschedulable"):
                raise InjectError(
                    f"{kind}: node {name} was cordoned by someone else while this fault was "
                    "cordoning it; leaving it to them"
                )
            body: Any = {
                "metadata": {
                    "resourceVersion": current["metadata"]["resourceVersion"],
                    "annotations": {CORDON_ANNOTATION: record.id},
                },
                "spec": {"unschedulable": True},
            }
            if _patch_node(ctx.kube, name, body):
                return
            current = _read_node(ctx.kube, name) or _gone(kind, name)
        raise InjectError(f"{kind}: node {name} kept changing; could not cordon it")

    def _taint(
        self, node: Mapping[str, Any], taint: Taint, kind: str, records: list[UndoRecord]
    ) -> None:
        """Record, then add the taint to one node (with its resourceVersion; 409: look again)."""
        ctx = self._ctx
        name = _name(node)
        records.append(
            ctx.record(
                kind,
                kind="Node",
                namespace=None,
                name=name,
                uid=node["metadata"].get("uid"),
                undo=_UNDO_UNTAINT,
                payload={"taint": taint.to_api()},
            )
        )
        current: Mapping[str, Any] = node
        for _attempt in range(_ATTEMPTS):
            taints = (current.get("spec") or {}).get("taints") or []
            if any(taint.same_slot(t) for t in taints):
                raise InjectError(
                    f"{kind}: node {name} got a {taint.key}:{taint.effect} taint from someone "
                    "else while this fault was adding one; leaving it to them"
                )
            body: Any = {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "spec": {"taints": with_taint(taints, taint)},
            }
            if _patch_node(ctx.kube, name, body):
                return
            current = _read_node(ctx.kube, name) or _gone(kind, name)
        raise InjectError(f"{kind}: node {name} kept changing; could not taint it")

    def _delete(
        self, nodes: Sequence[Mapping[str, Any]], kind: str, records: list[UndoRecord]
    ) -> None:
        """Record each node's manifest (and the faults it carries), then delete it."""
        from kubernetes.client.exceptions import ApiException

        ctx = self._ctx
        held = _open_node_records(ctx.kube)
        for node in nodes:
            name, uid = _name(node), node["metadata"].get("uid")
            carried = [
                {"id": r.id, "undo": r.undo, "payload": r.payload}
                for r in held
                if r.name == name and r.undo in (_UNDO_UNCORDON, _UNDO_UNTAINT)
            ]
            records.append(
                ctx.record(
                    kind,
                    kind="Node",
                    namespace=None,
                    name=name,
                    uid=uid,
                    undo=_UNDO_RECREATE,
                    payload={"manifest": restorable_manifest(dict(node)), "carried": carried},
                )
            )
            body: Any = {"preconditions": {"uid": uid}}
            try:
                call(ctx.kube.core.delete_node, name, body=body)
            except ApiException as exc:
                if exc.status != 404:  # 404: a retried delete whose first try was applied
                    raise

    def _verify_deleted(self, nodes: Sequence[Mapping[str, Any]], within: float, kind: str) -> None:
        uids = {n["metadata"].get("uid") for n in nodes}
        try:
            self._ctx.kube.wait(
                self._ctx.kube.core.list_node,
                lambda current: not uids & {n.metadata.uid for n in current},
                within=within,
                what=f"node(s) {', '.join(_name(n) for n in nodes)} to be gone",
            )
        except WaitTimeout as exc:
            raise InconclusiveError(
                f"{kind} did not take effect: {exc} (a finalizer may hold the Node)"
            ) from None
        self._ctx.timeline.add("verify", f"{kind}: node(s) gone")

    def _drain_plans(self, names: Sequence[str], delete_emptydir_data: bool) -> list[DrainPlan]:
        """Plan each node's drain; refuse (touching nothing) when a pod may not be evicted."""
        plans = [
            plan_drain(n, _pods_on(self._ctx.kube, n), delete_emptydir_data=delete_emptydir_data)
            for n in names
        ]
        refused = [p.refusal() for p in plans if p.refused]
        if refused:
            raise InjectError("refusing to drain (nothing was touched):\n  " + "\n  ".join(refused))
        return plans


# ---------------------------------------------------------------------------------------------
# Draining
# ---------------------------------------------------------------------------------------------


class _BlockedError(Exception):
    """An eviction a PodDisruptionBudget kept refusing until the deadline."""

    def __init__(self, pod: PodRef, message: str) -> None:
        super().__init__(message)
        self.pod = pod
        self.message = message


class _Drainer:
    """Cordon, evict concurrently, wait until gone; raise on anything that stops the drain."""

    def __init__(
        self, ctx: FaultContext, timeout: float, delete_emptydir_data: bool, concurrency: int
    ) -> None:
        self.ctx = ctx
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.delete_emptydir_data = delete_emptydir_data
        self.concurrency = concurrency
        self.stop = threading.Event()

    def run(
        self,
        nodes: Sequence[Mapping[str, Any]],
        kind: str,
        records: list[UndoRecord],
        cordon: Callable[[Mapping[str, Any], str, list[UndoRecord]], None],
    ) -> list[DrainPlan]:
        kube = self.ctx.kube
        for node in nodes:
            cordon(node, kind, records)
        await_cordon_taint(self.ctx, [_name(n) for n in nodes])
        # Listed again after the cordon: nothing new can land on the node from now on.
        plans = [
            plan_drain(
                _name(n), _pods_on(kube, _name(n)), delete_emptydir_data=self.delete_emptydir_data
            )
            for n in nodes
        ]
        refused = [p.refusal() for p in plans if p.refused]
        if refused:
            raise InjectError(
                f"{kind}: pods arrived that may not be evicted:\n  " + "\n  ".join(refused)
            )
        self._evict_all([pod for plan in plans for pod in plan.evict], kind)
        for plan in plans:
            self._wait_gone(plan, kind)
        return plans

    def _evict_all(self, pods: list[PodRef], kind: str) -> None:
        if not pods:
            return
        blocked: list[_BlockedError] = []
        failures: list[BaseException] = []
        with ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(pods)), thread_name_prefix="chaos-drain"
        ) as pool:
            for future in [pool.submit(self._evict_or_stop, pod) for pod in pods]:
                try:
                    future.result()
                except _BlockedError as exc:
                    blocked.append(exc)
                except Exception as exc:  # collected; the first is raised
                    failures.append(exc)
        if failures:
            first = failures[0]
            if isinstance(first, InjectError):
                raise first
            raise InjectError(f"{kind}: evicting pods failed: {describe(first)}") from first
        if blocked:
            raise InjectError(self._blocked_message(blocked, kind))

    def _evict_or_stop(self, pod: PodRef) -> None:
        """Evict one pod; on a failure other than a budget, stop every other eviction at once."""
        try:
            self._evict(pod)
        except _BlockedError:
            raise
        except BaseException:
            self.stop.set()
            raise

    def _evict(self, pod: PodRef) -> None:
        """Evict one pod; retry while a budget refuses (429) until the deadline."""
        from kubernetes.client import V1DeleteOptions, V1Eviction, V1ObjectMeta, V1Preconditions
        from kubernetes.client.exceptions import ApiException

        body = V1Eviction(
            metadata=V1ObjectMeta(name=pod.name, namespace=pod.namespace),
            delete_options=V1DeleteOptions(preconditions=V1Preconditions(uid=pod.uid)),
        )
        delay = 0.05
        while not self.stop.is_set():
            try:
                response = self.ctx.kube.core.create_namespaced_pod_eviction(
                    pod.name, pod.namespace, body, _preload_content=False
                )
                response.release_conn()  # type: ignore[attr-defined]
                return
            except ApiException as exc:
                if exc.status in (404, 409) and _replaced_or_gone(self.ctx.kube, pod):
                    return  # gone already, or its name taken by a new pod (uid precondition)
                if exc.status == 500 and "more than one PodDisruptionBudget" in str(exc.body):
                    raise InjectError(f"cannot evict {pod}: {describe(exc)}") from None
                if exc.status == 429:
                    if time.monotonic() + delay >= self.deadline:
                        raise _BlockedError(pod, describe(exc)) from None
                elif not is_transient(exc, conflicts=True) or time.monotonic() >= self.deadline:
                    raise
            except Exception as exc:
                if not is_transient(exc) or time.monotonic() >= self.deadline:
                    raise
            self.stop.wait(delay)  # backoff; returns at once when another eviction failed
            delay = min(delay * 2, 1.0)

    def _blocked_message(self, blocked: list[_BlockedError], kind: str) -> str:
        """Name the budgets that blocked the evictions, with their numbers."""
        kube = self.ctx.kube
        budgets: dict[str, list[dict[str, Any]]] = {}
        names: set[str] = set()
        lines = []
        for item in blocked:
            namespace = item.pod.namespace
            if namespace not in budgets:
                listing = kube.list_raw(
                    kube.policy.list_namespaced_pod_disruption_budget, namespace
                )
                budgets[namespace] = list(listing.get("items", []))
            labels = _pod_labels(kube, item.pod)
            covering = [
                b
                for b in budgets[namespace]
                if selector_matches((b.get("spec") or {}).get("selector"), labels)
            ]
            names.update(f"{namespace}/{b['metadata']['name']}" for b in covering)
            named = "; ".join(_describe_budget(b) for b in covering) or "no budget found now"
            lines.append(f"{item.pod}: {named} (last answer: {item.message})")
        return (
            f"{kind}: PodDisruptionBudget {', '.join(sorted(names)) or '(unknown)'} blocked the "
            f"eviction of {len(blocked)} pod(s) for {self.timeout:g}s:\n  "
            + "\n  ".join(lines)
            + "\nA budget that allows no disruption blocks every drain, cluster upgrades "
            "included: run 2+ replicas spread over nodes, or relax the budget. The drain was "
            "undone (nodes uncordoned); pods evicted until then stay evicted."
        )

    def _wait_gone(self, plan: DrainPlan, kind: str) -> None:
        uids = {p.uid for p in plan.evict} | {p.uid for p in plan.terminating}
        if not uids:
            return
        remaining = max(0.1, self.deadline - time.monotonic())
        try:
            self.ctx.kube.wait(
                self.ctx.kube.core.list_pod_for_all_namespaces,
                lambda pods: not uids & {p.metadata.uid for p in pods},
                within=remaining,
                what=f"the evicted pods to leave node {plan.node}",
                field_selector=f"spec.nodeName={plan.node}",
            )
        except WaitTimeout as exc:
            seen: list[Any] = exc.last_seen
            left = sorted(
                f"{p.metadata.namespace}/{p.metadata.name}" for p in seen if p.metadata.uid in uids
            )
            raise InjectError(
                f"{kind}: the drain of {plan.node} did not finish within {self.timeout:g}s: "
                f"still there: {_listing(left) or 'unknown'} (a long grace period or a finalizer "
                "holds them); the drain was undone (node uncordoned)"
            ) from None


def _describe_budget(budget: Mapping[str, Any]) -> str:
    spec, status = budget.get("spec") or {}, budget.get("status") or {}
    rule = (
        f"minAvailable={spec['minAvailable']}"
        if "minAvailable" in spec
        else f"maxUnavailable={spec.get('maxUnavailable')}"
    )
    return (
        f"PodDisruptionBudget {budget['metadata']['namespace']}/{budget['metadata']['name']} "
        f"({rule}: {status.get('currentHealthy', '?')} healthy, "
        f"{status.get('desiredHealthy', '?')} needed, "
        f"{status.get('disruptionsAllowed', '?')} disruption(s) allowed)"
    )


def _pod_labels(kube: Kube, pod: PodRef) -> dict[str, str]:
    from kubernetes.client.exceptions import ApiException

    try:
        found = call(kube.core.read_namespaced_pod, pod.name, pod.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return dict((found.metadata.labels if found.metadata else None) or {})


def _replaced_or_gone(kube: Kube, pod: PodRef) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        found = call(kube.core.read_namespaced_pod, pod.name, pod.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return bool(found.metadata and found.metadata.uid != pod.uid)


def _pods_on(kube: Kube, node: str) -> list[dict[str, Any]]:
    listing = kube.list_raw(
        kube.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}"
    )
    return list(listing.get("items", []))


def _drain_summary(plans: Sequence[DrainPlan]) -> str:
    parts = []
    for plan in plans:
        text = f"drain {plan.node}: evict {len(plan.evict)} pod(s)"
        if plan.terminating:
            text += f", wait for {len(plan.terminating)} terminating"
        if plan.skipped:
            text += f", leave {len(plan.skipped)} ({_listing(plan.skipped)})"
        parts.append(text)
    return "; ".join(parts)


def _drain_details(plans: Sequence[DrainPlan]) -> dict[str, Any]:
    return {
        "evicted": [str(p) for plan in plans for p in plan.evict],
        "skipped": [s for plan in plans for s in plan.skipped],
    }


# ---------------------------------------------------------------------------------------------
# Small node helpers
# ---------------------------------------------------------------------------------------------


def _cordoned(node: Mapping[str, Any]) -> str | None:
    return "cordoned" if (node.get("spec") or {}).get("unschedulable") else None


def _has_slot(taint: Taint, node: Mapping[str, Any]) -> str | None:
    for raw in (node.get("spec") or {}).get("taints") or []:
        if taint.same_slot(raw):
            return f"tainted {Taint.of(raw)}"
    return None


def _eligible(
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
        states = ", ".join(f"{_name(n)} ({skip(n)})" for n in nodes)
        raise TargetingError(
            f"cannot {verb}: every node {what} is already in that state: {states}. Its state is "
            "not this fault's to undo, so it is not a target; pick other nodes"
        )
    return eligible


def _no_such_zone(zone: str, nodes: Sequence[Mapping[str, Any]]) -> str:
    import difflib

    zones = Counter(_labels(n).get(ZONE_LABEL) for n in nodes)
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


def await_cordon_taint(ctx: FaultContext, names: Sequence[str], within: float = 10.0) -> None:
    """Until the node-lifecycle controller has mirrored the cordon of these nodes with its taint.

    The scheduler honours ``spec.unschedulable`` at once, so this is not needed for the fault to
    work. It settles the node: the controller adds ``node.kubernetes.io/unschedulable`` a moment
    after a cordon, and one that lands after a quick revert would sit on an uncordoned node
    until the controller's next pass. A controller that does not answer in time (it always
    does in a healthy cluster) is noted on the timeline, not an error.
    """
    wanted = set(names)

    def mirrored(nodes: list[Any]) -> bool:
        tainted = {
            n.metadata.name
            for n in nodes
            if any(t.key == CORDON_TAINT for t in (n.spec.taints if n.spec else None) or [])
        }
        return wanted <= tainted

    try:
        ctx.kube.wait(
            ctx.kube.core.list_node,
            mirrored,
            within=within,
            what=f"the {CORDON_TAINT} taint on {', '.join(sorted(wanted))}",
        )
    except WaitTimeout:
        ctx.timeline.add(
            "verify", f"the node-lifecycle controller did not mirror the cordon in {within:g}s"
        )


def _read_node(kube: Kube, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        found = call(kube.core.read_node, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data: dict[str, Any] = kube.serialize(found)
    return data


def _patch_node(kube: Kube, name: str, body: Any) -> bool:
    """Patch a node under optimistic concurrency; False when it changed or went since read.

    On False (a 409 or a 404) the caller reads the node again and decides.
    """
    from kubernetes.client.exceptions import ApiException

    try:
        call(kube.core.patch_node, name, body, field_manager=FIELD_MANAGER)
    except ApiException as exc:
        if exc.status in (404, 409):
            return False
        raise
    return True


def unschedulable_owners(node: Mapping[str, Any]) -> set[str]:
    """The field managers that own ``spec.unschedulable`` (from the node's managedFields)."""
    owners = set()
    for entry in (node.get("metadata") or {}).get("managedFields") or []:
        fields = entry.get("fieldsV1") or {}
        if "f:unschedulable" in (fields.get("f:spec") or {}):
            owners.add(str(entry.get("manager")))
    return owners


def _gone(kind: str, name: str) -> NoReturn:
    raise InjectError(f"{kind}: node {name} was deleted while the fault was being injected")


def _open_node_records(kube: Kube) -> list[UndoRecord]:
    """The open undo records of nodes (kept in namespace ``default``), of every run."""
    listing = kube.list_raw(
        kube.core.list_namespaced_config_map,
        CLUSTER_SCOPE_NAMESPACE,
        label_selector=f"{UNDO_LABEL}=true",
    )
    records = []
    for item in listing.get("items", []):
        data = (item.get("data") or {}).get(RECORD_KEY)
        try:
            record = UndoRecord.from_json(json.loads(str(data)))
        except (TypeError, ValueError, KeyError):
            continue
        if record.kind == "Node":
            records.append(record)
    return records


def held_taints(kube: Kube) -> dict[str, set[Taint]]:
    """The taints pytest-chaos faults hold on nodes right now, by node (from the ledger)."""
    held: dict[str, set[Taint]] = {}
    for record in _open_node_records(kube):
        if record.undo == _UNDO_UNTAINT:
            held.setdefault(record.name, set()).add(Taint.of(record.payload["taint"]))
    return held


# ---------------------------------------------------------------------------------------------
# Undo (teardown and `pytest-chaos cleanup` alike; idempotent; from the record alone)
# ---------------------------------------------------------------------------------------------


@reverter(_UNDO_UNCORDON)
def _uncordon(kube: Kube, record: UndoRecord) -> str:
    """Uncordon a node this fault cordoned (told by our annotation), and nothing else."""
    for _attempt in range(_ATTEMPTS):
        node = _read_node(kube, record.name)
        if node is None:
            # A node re-created later from a nodes.delete record leaves this cordon out.
            return "node is gone, nothing to uncordon"
        meta, spec = node["metadata"], node.get("spec") or {}
        ours = (meta.get("annotations") or {}).get(CORDON_ANNOTATION) == record.id
        if not ours:
            if spec.get("unschedulable"):
                # Our patch never landed (a crash between record and patch) and someone else
                # cordoned it, or the node was replaced and cordoned by others: theirs.
                return "cordoned, but not by this fault: left as it is"
            return "already reverted"
        owners = unschedulable_owners(node)
        if spec.get("unschedulable") and owners and FIELD_MANAGER not in owners:
            raise DriftError(
                f"{record.target} was uncordoned and cordoned again by {', '.join(sorted(owners))} "
                f"while this fault held it; that cordon is theirs, left as it is "
                f"(record {record.id})"
            )
        body: Any = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],
                "annotations": {CORDON_ANNOTATION: None},
            },
        }
        outcome = "already uncordoned (by someone else)"
        body["spec"] = {}
        if spec.get("unschedulable"):
            body["spec"]["unschedulable"] = record.payload.get("unschedulable_before")
            outcome = "reverted"
        taints = spec.get("taints") or []
        kept = without_cordon_taint(taints)
        if len(kept) < len(taints):
            # The node-lifecycle controller lifts its mirror of the cordon a moment after the
            # uncordon; lifting it in the same write leaves the node as it was when revert()
            # returns.
            body["spec"]["taints"] = kept or None
        if _patch_node(kube, record.name, body):
            return outcome
    raise RevertError(f"{record.target}: kept changing while uncordoning (record {record.id})")


@reverter(_UNDO_UNTAINT)
def _untaint(kube: Kube, record: UndoRecord) -> str:
    """Remove exactly our taint; another value under our key and effect is drift."""
    taint = Taint.of(record.payload["taint"])
    for _attempt in range(_ATTEMPTS):
        node = _read_node(kube, record.name)
        if node is None:
            return "node is gone, nothing to untaint"
        taints = (node.get("spec") or {}).get("taints") or []
        kept = without_taint(taints, taint)
        if kept is None:
            other = next((Taint.of(t) for t in taints if taint.same_slot(t)), None)
            if other is not None:
                raise DriftError(
                    f"{record.target}: the taint {taint} this fault added was changed to {other} "
                    f"by someone else; not removing theirs (record {record.id})"
                )
            return "already reverted"
        body: Any = {
            "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
            "spec": {"taints": kept or None},
        }
        if _patch_node(kube, record.name, body):
            return "reverted"
    raise RevertError(f"{record.target}: kept changing while untainting (record {record.id})")


@reverter(_UNDO_RECREATE)
def _recreate_node(kube: Kube, record: UndoRecord) -> str:
    """Re-create a deleted Node from its manifest, unless a node of that name exists again."""
    from kubernetes.client.exceptions import ApiException

    current = _read_node(kube, record.name)
    if current is not None:
        if current["metadata"].get("uid") == record.uid:
            return "already reverted (the node was never deleted)"
        return "already reverted (the node exists again: re-registered or re-created)"
    manifest = _without_ended_faults(kube, record)
    try:
        call(kube.core.create_node, manifest, field_manager=FIELD_MANAGER)
    except ApiException as exc:
        if exc.status != 409:
            raise
        return "already reverted (the node exists again: re-registered or re-created)"
    return "reverted"


def _without_ended_faults(kube: Kube, record: UndoRecord) -> Any:
    """The recorded manifest minus the cordons and taints of faults reverted since."""
    manifest: Any = json.loads(json.dumps(record.payload["manifest"]))
    carried = record.payload.get("carried") or []
    if not carried:
        return restorable_node(manifest)
    still_open = {r.id for r in _open_node_records(kube)}
    spec = manifest.setdefault("spec", {})
    annotations = manifest["metadata"].get("annotations") or {}
    for fault in carried:
        if fault["id"] in still_open:
            continue  # its own undo will run and find the node with its change
        if fault["undo"] == _UNDO_UNCORDON:
            if annotations.get(CORDON_ANNOTATION) == fault["id"]:
                annotations.pop(CORDON_ANNOTATION)
                before = fault["payload"].get("unschedulable_before")
                if before is None:
                    spec.pop("unschedulable", None)
                else:
                    spec["unschedulable"] = before
        elif fault["undo"] == _UNDO_UNTAINT:
            kept = without_taint(spec.get("taints") or [], Taint.of(fault["payload"]["taint"]))
            if kept is not None:
                if kept:
                    spec["taints"] = kept
                else:
                    spec.pop("taints", None)
    if annotations:
        manifest["metadata"]["annotations"] = annotations
    else:
        manifest["metadata"].pop("annotations", None)
    return restorable_node(manifest)
