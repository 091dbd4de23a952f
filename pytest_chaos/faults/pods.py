"""Pod faults: ``chaos.pods.kill`` deletes pods (gracefully or not) and verifies they went away.

There is nothing to undo: the pods' controllers (ReplicaSet, StatefulSet, Job...) create
replacements, and whether they do so in time is exactly what the test checks. A bare pod is gone
for good, which is the book's first lesson.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import ChaosConfigError, InconclusiveError, TargetingError, WaitTimeout
from pytest_chaos.faults import Fault, FaultContext, injecting
from pytest_chaos.faults.checks import check_name, check_names
from pytest_chaos.ledger import UndoRecord
from pytest_chaos.targeting import (
    PodFilter,
    choose,
    matching_text,
    nothing_matched,
    parse_label_selector,
    validate_mode,
)


class KillChecked(NamedTuple):
    """The checked arguments of ``chaos.pods.kill``."""

    mode: str
    value: float | None
    wait: float
    namespaces: list[str]


def check_kill(
    selector: object = None,
    *,
    namespace: object,
    mode: object = "one",
    value: object = None,
    grace_period: object = None,
    field_selector: object = None,
    node: object = None,
    phase: object = None,
    within: object = 60,
) -> KillChecked:
    """The checks of ``chaos.pods.kill`` and ``chaos_pod_kill`` (no cluster access)."""
    parse_label_selector(selector, name="selector")
    PodFilter(label_selector=selector, node=node, phase=phase)  # type: ignore[arg-type]
    checked_mode, checked_value = validate_mode(mode, value)
    if field_selector is not None:
        check_name("field_selector", field_selector)
    check_grace_period(grace_period)
    wait = as_seconds(within, name="within")
    return KillChecked(checked_mode, checked_value, wait, namespaces_of(namespace))


def _name(pod: Any) -> str:
    return str(pod["metadata"]["name"])


def _ref(pod: Any) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _all_gone(uids: set[Any]) -> Callable[[list[Any]], bool]:
    return lambda pods: not uids & {p.metadata.uid for p in pods}


def check_grace_period(grace_period: object) -> None:
    """A grace period is None (the pod's own) or whole seconds >= 0 (0 kills at once)."""
    if grace_period is not None and (
        isinstance(grace_period, bool) or not isinstance(grace_period, int) or grace_period < 0
    ):
        raise ChaosConfigError(
            f"grace_period={grace_period!r} must be a whole number of seconds >= 0 "
            "(0 kills at once) or None"
        )


def namespaces_of(namespace: object) -> list[str]:
    """One namespace or several, checked: non-empty names, no duplicates."""
    return check_names("namespace", namespace, "namespace name")


class PodFaults:
    """``chaos.pods``: faults on pods."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context (the chaos fixture does this)."""
        self._ctx = ctx

    def kill(
        self,
        selector: str | None = None,
        *,
        namespace: str | Sequence[str],
        mode: str = "one",
        value: float | None = None,
        grace_period: int | None = None,
        field_selector: str | None = None,
        node: str | None = None,
        phase: str | None = None,
        within: Duration = 60,
    ) -> Fault:
        """Delete pods matching selector in namespace(s); return when they are really gone.

        Args:
            selector: label selector, e.g. ``"app=backend"`` (None: every pod).
            namespace: where the pods are: one namespace, or several (the mode then chooses
                among the pods of all of them).
            mode: how many of the matching pods: ``one``, ``all``, ``fixed`` (value = N),
                ``fixed-percent`` / ``random-max-percent`` (value = percent).
            value: the number or percent for the modes that need one.
            grace_period: seconds the pods get to shut down (None = their own). 0 removes the
                pod objects at once; a real kubelet still sends SIGTERM and kills after 2 s.
            field_selector: server-side field selector, e.g. ``"status.phase=Running"``.
            node: only pods on this node.
            phase: only pods in this phase, e.g. ``"Running"``.
            within: how long the pods may take to go away before the test is inconclusive.
        """
        ctx = self._ctx
        checked_mode, checked_value, wait, namespaces = check_kill(
            selector,
            namespace=namespace,
            mode=mode,
            value=value,
            grace_period=grace_period,
            field_selector=field_selector,
            node=node,
            phase=phase,
            within=within,
        )
        for each in namespaces:
            ctx.safety.check_namespace(each)
        where = ", ".join(namespaces)
        # The API server applies the label and field selectors; node, phase and terminating
        # pods are filtered here.
        pod_filter = PodFilter(node=node, phase=phase)
        candidates: list[Any] = []
        for each in namespaces:
            listing = ctx.kube.list_raw(
                ctx.kube.core.list_namespaced_pod,
                each,
                label_selector=selector or None,
                field_selector=field_selector or None,
            )
            candidates += pod_filter.apply(listing.get("items", []))
        if not candidates:
            existing: dict[str, Any] = {}
            for each in namespaces:
                everything = ctx.kube.list_raw(ctx.kube.core.list_namespaced_pod, each)
                prefix = f"{each}/" if len(namespaces) > 1 else ""
                existing |= {
                    prefix + _name(p): p["metadata"].get("labels") or {}
                    for p in everything.get("items", [])
                }
            raise TargetingError(nothing_matched("pods", selector, where, existing))
        chosen = choose(candidates, checked_mode, checked_value, ctx.rng, key=_ref)
        ctx.safety.check_blast_radius(
            len(chosen), len(candidates), f"pods {matching_text(selector)} in {where}"
        )
        targets = tuple(_ref(p) for p in chosen)
        plan = (
            f"kill {len(chosen)} of {len(candidates)} pod(s) {matching_text(selector)} in "
            f"{where} (mode={mode}): {', '.join(_name(p) for p in chosen)}"
        )
        ctx.plan("pods.kill", plan)
        records: list[UndoRecord] = []
        with injecting(ctx, "pods.kill", records):
            for pod in chosen:
                meta = pod["metadata"]
                records.append(
                    ctx.record(
                        "pods.kill",
                        kind="Pod",
                        namespace=meta["namespace"],
                        name=meta["name"],
                        uid=meta.get("uid"),
                        undo="none",
                        in_cluster=False,
                    )
                )
                self._delete(meta["namespace"], meta["name"], meta.get("uid"), grace_period)
            ctx.timeline.add("inject", f"pods.kill: {plan}", targets=list(targets))
        # Registered before verifying: even an inconclusive fault is the test's to revert.
        fault = ctx.done(Fault(ctx, "pods.kill", targets, records, details={"mode": mode}))
        for each in sorted({p["metadata"]["namespace"] for p in chosen}):
            gone_uids = {
                p["metadata"].get("uid") for p in chosen if p["metadata"]["namespace"] == each
            }
            try:
                ctx.kube.wait(
                    functools.partial(ctx.kube.core.list_namespaced_pod, each),
                    _all_gone(gone_uids),
                    within=wait,
                    what=f"the killed pods to go away ({', '.join(targets)})",
                    label_selector=selector or None,
                )
            except WaitTimeout as exc:
                raise InconclusiveError(
                    f"pods.kill did not take effect: {exc}. A finalizer or a very long grace "
                    "period may hold them; the test proves nothing until they are gone"
                ) from None
        ctx.timeline.add("verify", f"pods.kill: {len(targets)} pod(s) gone")
        return fault

    def _delete(self, namespace: str, name: str, uid: str | None, grace_period: int | None) -> None:
        kube = self._ctx.kube
        body = {} if grace_period is None else {"gracePeriodSeconds": grace_period}
        # The uid precondition: never delete a replacement that took the name (StatefulSets).
        kube.delete(kube.core.delete_namespaced_pod, name, namespace, uid=uid, body=body)
