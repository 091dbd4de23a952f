"""The words of a failed steady-state check: which pods are bad and why, and recent events."""

from __future__ import annotations

from typing import Any

from pytest_chaos.kube import Kube


def read_field(obj: Any, *path: str) -> Any:
    """Read a field from a client model or an API dict alike (snake_case or camelCase keys)."""
    for key in path:
        if obj is None:
            return None
        if isinstance(obj, dict):
            camel = key.split("_")[0] + "".join(w.title() for w in key.split("_")[1:])
            obj = obj.get(camel, obj.get(key))
        else:
            obj = getattr(obj, key, None)
    return obj


def terminating(pod: Any) -> bool:
    """Its deletion has begun (deletionTimestamp set): it never counts as present or ready."""
    return bool(read_field(pod, "metadata", "deletion_timestamp"))


def pod_ready(pod: Any) -> bool:
    """Running, Ready and not terminating: the only pods that count as healthy."""
    if terminating(pod):
        return False
    if read_field(pod, "status", "phase") != "Running":
        return False
    conditions = read_field(pod, "status", "conditions") or []
    return any(
        read_field(c, "type") == "Ready" and read_field(c, "status") == "True" for c in conditions
    )


def node_ready(node: Any) -> bool:
    """The node reports Ready and accepts new pods (not cordoned)."""
    conditions = read_field(node, "status", "conditions") or []
    ready = any(
        read_field(c, "type") == "Ready" and read_field(c, "status") == "True" for c in conditions
    )
    return ready and not read_field(node, "spec", "unschedulable")


def pod_problem(pod: Any) -> str:
    """Why a pod is not ready, in a few words (``CrashLoopBackOff``, ``Terminating``...)."""
    if terminating(pod):
        return "Terminating"
    reasons = [  # Pending (Unschedulable): no node takes it
        str(read_field(c, "reason") or "not scheduled")
        for c in read_field(pod, "status", "conditions") or []
        if read_field(c, "type") == "PodScheduled" and read_field(c, "status") == "False"
    ]
    for status in read_field(pod, "status", "container_statuses") or []:
        waiting = read_field(status, "state", "waiting")
        if waiting and read_field(waiting, "reason"):
            reasons.append(str(read_field(waiting, "reason")))
        terminated = read_field(status, "state", "terminated")
        if terminated and read_field(terminated, "reason"):
            reasons.append(str(read_field(terminated, "reason")))
        restarts = read_field(status, "restart_count") or 0
        if restarts:
            reasons.append(f"{restarts} restart(s)")
            last = read_field(status, "last_state", "terminated")
            if last and read_field(last, "reason"):
                reasons.append(f"last ended: {read_field(last, 'reason')}")  # OOMKilled, Error...
    phase = read_field(pod, "status", "phase") or "Unknown"
    if not reasons and phase == "Running":
        reasons.append("not Ready")
    return f"{phase}" + (f" ({', '.join(reasons)})" if reasons else "")


def describe_pods(pods: list[Any], limit: int = 10) -> str:
    """One line per pod: name, readiness, node, problem."""
    if not pods:
        return "  (no pods)"
    lines = []
    for pod in pods[:limit]:
        name = read_field(pod, "metadata", "name")
        node = read_field(pod, "spec", "node_name") or "unscheduled"
        state = "ready" if pod_ready(pod) else f"NOT READY: {pod_problem(pod)}"
        lines.append(f"  {name} on {node}: {state}")
    if len(pods) > limit:
        lines.append(f"  +{len(pods) - limit} more")
    return "\n".join(lines)


def recent_events(kube: Kube, namespace: str, limit: int = 8) -> str:
    """The namespace's latest events, newest last."""
    try:
        listing = kube.list_raw(kube.core.list_namespaced_event, namespace)
    except Exception as exc:  # a diagnosis must never hide the real failure
        return f"  (events unavailable: {exc})"
    events = listing.get("items", [])

    def when(event: dict[str, Any]) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event.get("metadata", {}).get("creationTimestamp")
            or ""
        )

    events.sort(key=when)
    if not events:
        return "  (none)"
    lines = []
    for event in events[-limit:]:
        obj = event.get("involvedObject", {})
        lines.append(
            f"  {when(event)} {event.get('type', '')} {obj.get('kind', '')}/"
            f"{obj.get('name', '')}: {event.get('reason', '')} {event.get('message', '')}"
        )
    return "\n".join(lines)
