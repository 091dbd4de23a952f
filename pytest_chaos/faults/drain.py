"""The drain machinery of chaos.nodes: cordon, evict through the Eviction API, wait until gone.

Evictions run concurrently and honour PodDisruptionBudgets; a budget that blocks them is retried
until the deadline, then the error names the budget with its numbers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pytest_chaos.errors import InjectError, WaitTimeout
from pytest_chaos.faults import FaultContext
from pytest_chaos.faults.node_rules import (
    CORDON_TAINT,
    DrainPlan,
    PodRef,
    budget_selects,
    node_name,
    plan_drain,
    short_listing,
)
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import describe, is_transient
from pytest_chaos.ledger import UndoRecord


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


class _BlockedError(Exception):
    """An eviction a PodDisruptionBudget kept refusing until the deadline."""

    def __init__(self, pod: PodRef, message: str) -> None:
        super().__init__(message)
        self.pod = pod
        self.message = message


class Drainer:
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
        await_cordon_taint(self.ctx, [node_name(n) for n in nodes])
        # Listed again after the cordon: nothing new can land on the node from now on.
        plans = [
            plan_drain(
                node_name(n),
                pods_on(kube, node_name(n)),
                delete_emptydir_data=self.delete_emptydir_data,
            )
            for n in nodes
        ]
        refused = [p.refusal() for p in plans if p.refused]
        if refused:
            raise InjectError(
                f"{kind}: pods arrived that may not be evicted:\n  " + "\n  ".join(refused)
            )
        going = [str(pod) for plan in plans for pod in plan.terminating]
        if going:
            self.ctx.timeline.add(
                "inject", f"{kind}: waiting for pod(s) already going: {short_listing(going)}"
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
            self.evict(pod)
        except _BlockedError:
            raise
        except BaseException:
            self.stop.set()
            raise

    def evict(self, pod: PodRef) -> None:
        """Evict one pod; retry while a budget refuses (429) until the deadline.

        A pod that is gone, replaced, or already being deleted in a namespace being deleted
        (403, cause NamespaceTerminating) counts as evicted: the drain waits for it to go.
        """
        from kubernetes.client.exceptions import ApiException

        # The API's JSON, not the client's V1Eviction model: the client checks a model's class
        # by identity, and a re-imported models module (pytester's in-process runs drop the
        # modules they imported) makes a second V1Eviction class that fails that check.
        body: Any = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
            "deleteOptions": {"preconditions": {"uid": pod.uid}},
        }
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
                if exc.status == 403 and namespace_terminating(exc):
                    # Its namespace is being deleted: no eviction can be created there, and the
                    # namespace controller deletes the pod anyway. As kubectl drain does: a pod
                    # already going is waited for (with the evicted ones); one not yet marked is
                    # asked again until the controller marks it (or the deadline).
                    if _going(self.ctx.kube, pod):
                        return
                    if time.monotonic() >= self.deadline:
                        raise
                    self.stop.wait(delay)
                    delay = min(delay * 2, 1.0)
                    continue
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
                if budget_selects((b.get("spec") or {}).get("selector"), labels)
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
                f"still there: {short_listing(left) or 'unknown'} (a long grace period or a "
                "finalizer holds them); the drain was undone (node uncordoned)"
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
    found = kube.read(kube.core.read_namespaced_pod, pod.name, pod.namespace)
    return dict(((found or {}).get("metadata") or {}).get("labels") or {})


def namespace_terminating(exc: Any) -> bool:
    """True when an API error's cause is ``NamespaceTerminating`` (a namespace being deleted)."""
    import json

    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return False
    if not isinstance(body, dict):
        return False
    causes = (body.get("details") or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes)


def _going(kube: Kube, pod: PodRef) -> bool:
    """Gone, replaced, or being deleted already (deletionTimestamp set)."""
    found = kube.read(kube.core.read_namespaced_pod, pod.name, pod.namespace)
    return (
        found is None
        or found["metadata"].get("uid") != pod.uid
        or bool(found["metadata"].get("deletionTimestamp"))
    )


def _replaced_or_gone(kube: Kube, pod: PodRef) -> bool:
    found = kube.read(kube.core.read_namespaced_pod, pod.name, pod.namespace)
    return found is None or found["metadata"].get("uid") != pod.uid


def pods_on(kube: Kube, node: str) -> list[dict[str, Any]]:
    listing = kube.list_raw(
        kube.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}"
    )
    return list(listing.get("items", []))


def drain_summary(plans: Sequence[DrainPlan]) -> str:
    parts = []
    for plan in plans:
        text = f"drain {plan.node}: evict {len(plan.evict)} pod(s)"
        if plan.terminating:
            text += f", wait for {len(plan.terminating)} terminating"
        if plan.skipped:
            text += f", leave {len(plan.skipped)} ({short_listing(plan.skipped)})"
        parts.append(text)
    return "; ".join(parts)


def drain_details(plans: Sequence[DrainPlan]) -> dict[str, Any]:
    return {
        "evicted": [str(p) for plan in plans for p in plan.evict],
        "skipped": [s for plan in plans for s in plan.skipped],
    }
