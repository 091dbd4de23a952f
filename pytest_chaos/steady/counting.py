"""Which pods count, in one place for every probe and monitor.

A pod counts as present only when it is not terminating (no deletionTimestamp), and as ready
only when it is present, Running and Ready. A workload's readiness is computed from the pods its
selector matches AND its controller's observedGeneration, never from its status counts alone:
those lag an eviction or a kill, so they would report a drained Deployment healthy while its
replacement pod is still Pending. Pure functions over the API's JSON (dicts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_chaos.steady.diagnosis import pod_problem, pod_ready, read_field, terminating
from pytest_chaos.targeting import Requirement, matches, matching_text

_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
_NAMED = 3


@dataclass(frozen=True, slots=True)
class Count:
    """A judged state: ready of wanted, whether the hypothesis holds, and why in words."""

    ready: int | None
    wanted: int | None
    ok: bool
    seen: str


def requirements(selector: Mapping[str, Any] | None) -> tuple[Requirement, ...]:
    """A LabelSelector (``matchLabels``, ``matchExpressions``) as selector clauses."""
    if not selector:
        return ()
    found = [
        Requirement(k, "=", (str(v),)) for k, v in sorted(selector.get("matchLabels", {}).items())
    ]
    for expression in selector.get("matchExpressions") or []:
        operator = _OPERATORS[expression["operator"]]
        values = tuple(expression.get("values") or ()) if operator in ("in", "notin") else ()
        found.append(Requirement(expression["key"], operator, values))  # type: ignore[arg-type]
    return tuple(found)


def selector_text(clauses: Sequence[Requirement]) -> str:
    """The clauses as a label selector string, for a server-side list."""
    return ",".join(str(c) for c in clauses)


def present(pods: Sequence[Any]) -> list[Any]:
    """The pods that are not terminating."""
    return [p for p in pods if not terminating(p)]


def ready_count(pods: Sequence[Any]) -> int:
    """How many pods are ready (never a terminating one)."""
    return sum(pod_ready(p) for p in pods)


def selected(pods: Sequence[Any], clauses: Sequence[Requirement], namespace: str) -> list[Any]:
    """The pods of namespace whose labels satisfy clauses (an empty selector matches none)."""
    if not clauses:
        return []
    return [
        p
        for p in pods
        if read_field(p, "metadata", "namespace") == namespace
        and matches(clauses, read_field(p, "metadata", "labels"))
    ]


def generation_current(obj: Any) -> bool:
    """The controller has observed the object's latest spec (observedGeneration >= generation)."""
    observed = read_field(obj, "status", "observed_generation") or 0
    return bool(observed >= (read_field(obj, "metadata", "generation") or 0))


def wanted_of(kind: str, obj: Any) -> int:
    """The replicas a workload wants: spec.replicas (default 1), a DaemonSet's desired pods."""
    if kind == "DaemonSet":
        return int(read_field(obj, "status", "desired_number_scheduled") or 0)
    replicas = read_field(obj, "spec", "replicas")
    return 1 if replicas is None else int(replicas)


def pods_text(ready: int, wanted: int, pods: Sequence[Any]) -> str:
    """``"1/3 ready: web-x Terminating, web-y Pending (Unschedulable)"``."""
    bad = [p for p in pods if not pod_ready(p)]
    text = f"{ready}/{wanted} ready"
    if not bad:
        return text
    named = [f"{read_field(p, 'metadata', 'name')} {pod_problem(p)}" for p in bad[:_NAMED]]
    more = f", +{len(bad) - _NAMED} more" if len(bad) > _NAMED else ""
    return f"{text}: {', '.join(named)}{more}"


def status_available(kind: str, obj: Any) -> int:
    """The available replicas the workload's status reports (it lags the pods)."""
    field = "number_available" if kind == "DaemonSet" else "available_replicas"
    return int(read_field(obj, "status", field) or 0)


def judge_workload(
    kind: str,
    name: str,
    obj: Any | None,
    pods: Sequence[Any],
    *,
    wanted: int | None = None,
    available: bool = False,
) -> Count:
    """A workload's state from its pods: ok when ready >= wanted and its spec is observed.

    Args:
        kind: Deployment, StatefulSet or DaemonSet.
        name: its name, for the text when it does not exist.
        obj: the workload (None: it does not exist).
        pods: the pods its selector matches (terminating ones included: they are named).
        wanted: the count to hold (None: the workload's own, see :func:`wanted_of`).
        available: also require the status to report that many available (minReadySeconds
            served): the status may only confirm what the pods show, never replace it.
    """
    ready = ready_count(pods)
    if obj is None:
        return Count(ready, wanted, False, f"{kind} {name} does not exist ({ready} ready)")
    want = wanted_of(kind, obj) if wanted is None else wanted
    text = pods_text(ready, want, pods)
    current = generation_current(obj)
    if not current:
        text += " (the controller has not seen the latest spec yet)"
    own = wanted_of(kind, obj)
    if want != own:
        text += f" (spec wants {own})"
    ok = current and ready >= want
    if available and status_available(kind, obj) < want:
        ok = False
        text += f" ({status_available(kind, obj)} available per its status)"
    return Count(ready, want, ok, text)


def judge_namespace(
    workloads: Sequence[tuple[str, Any]],
    pods: Sequence[Any],
    *,
    namespace: str,
    wanted_by: Mapping[str, int] | None = None,
    available: bool = False,
) -> Count:
    """Every workload of a namespace judged from its pods; ok when each one is.

    Args:
        workloads: (kind, object) of every Deployment, StatefulSet and DaemonSet.
        pods: every pod of the namespace.
        namespace: the namespace.
        wanted_by: the count to hold per ``"Kind/name"`` (a monitor's, from its start); a key
            without a workload is one that was deleted meanwhile.
        available: also require each status to report its pods available.
    """
    wanted_by = wanted_by or {}
    bad: list[str] = []
    ready_total = wanted_total = 0
    seen: set[str] = set()
    for kind, obj in workloads:
        name = str(read_field(obj, "metadata", "name"))
        key = f"{kind}/{name}"
        seen.add(key)
        clauses = requirements(read_field(obj, "spec", "selector"))
        count = judge_workload(
            kind,
            name,
            obj,
            selected(pods, clauses, namespace),
            wanted=wanted_by.get(key),
            available=available,
        )
        ready_total += count.ready or 0
        wanted_total += count.wanted or 0
        if not count.ok:
            bad.append(f"{kind} {name}: {count.seen}")
    for key in sorted(set(wanted_by) - seen):
        kind, name = key.split("/", 1)
        wanted_total += wanted_by[key]
        bad.append(f"{kind} {name} does not exist (deleted)")
    total = len(seen | set(wanted_by))
    if not bad:
        return Count(ready_total, wanted_total, True, f"all {total} workload(s) ok")
    return Count(
        ready_total, wanted_total, False, f"{len(bad)} of {total} not ok: " + "; ".join(bad)
    )


def judge_pods(pods: Sequence[Any], selector: str | None, *, min_ready: int | None) -> Count:
    """Pods by selector: ok when some are present and all ready (or >= min_ready ready)."""
    alive = present(pods)
    ready = ready_count(alive)
    wanted = len(alive) if min_ready is None else min_ready
    if not alive and min_ready is None:
        return Count(0, 0, False, f"no pod {matching_text(selector)}")
    ok = ready >= wanted if min_ready is not None else ready == len(alive)
    return Count(ready, wanted, ok, pods_text(ready, wanted, pods))
