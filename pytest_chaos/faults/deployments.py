"""Workload faults: delete, scale and restart Deployments and StatefulSets.

``chaos.deployments`` and ``chaos.statefulsets`` share these verbs:

* ``delete``: the manifest is recorded first; undo re-creates it exactly (same spec, labels,
  annotations; only server-set fields differ). If someone re-created it meanwhile with another
  spec, that is reported as drift and left alone.
* ``scale``: undo sets the previous replicas back, unless someone else changed them meanwhile.
* ``restart``: a rollout restart, like ``kubectl rollout restart``; nothing to undo.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import (
    ChaosConfigError,
    DriftError,
    InconclusiveError,
    InjectError,
    TargetingError,
    WaitTimeout,
)
from pytest_chaos.faults import Fault, FaultContext, injecting
from pytest_chaos.faults.checks import check_name
from pytest_chaos.faults.undo import FAULT_LABEL, restorable_manifest
from pytest_chaos.kube.retry import call
from pytest_chaos.ledger import UndoRecord
from pytest_chaos.targeting import nothing_matched


def check_restart(name: object, *, namespace: object) -> None:
    """The checks of ``chaos.deployments.restart`` and its marker (statefulsets too)."""
    check_name("name", name)
    check_name("namespace", namespace)


def check_delete(name: object, *, namespace: object, within: object = 60) -> float:
    """The checks of ``chaos.deployments.delete`` and its marker; return the wait (s)."""
    check_restart(name, namespace=namespace)
    return as_seconds(within, name="within")


def check_scale(name: object, *, namespace: object, replicas: object) -> int:
    """The checks of ``chaos.deployments.scale`` and its marker; return the replicas."""
    check_restart(name, namespace=namespace)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ChaosConfigError(f"replicas={replicas!r} must be a whole number >= 0")
    return replicas


class WorkloadFaults:
    """``chaos.deployments`` / ``chaos.statefulsets``: faults on one kind of workload."""

    def __init__(self, ctx: FaultContext, kind: str) -> None:
        """Bind the verbs to a fault context and a kind (``Deployment`` or ``StatefulSet``)."""
        self._ctx = ctx
        self.kind = kind
        self._family = "deployments" if kind == "Deployment" else "statefulsets"

    def _read(self, name: str, namespace: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        if not isinstance(name, str) or not name:
            raise ChaosConfigError(f"name={name!r} must be the name of a {self.kind}")
        self._ctx.safety.check_namespace(namespace)
        try:
            obj = call(self._ctx.kube.workload_api(self.kind, "read"), name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            listing = self._ctx.kube.list_raw(
                self._ctx.kube.workload_api(self.kind, "list"), namespace
            )
            existing = {
                o["metadata"]["name"]: o["metadata"].get("labels") or {}
                for o in listing.get("items", [])
            }
            message = nothing_matched(f"{self.kind}s", None, namespace, existing)
            raise TargetingError(
                f"{self.kind} {namespace}/{name} does not exist; {message}"
            ) from None
        data: dict[str, Any] = self._ctx.kube.serialize(obj)
        return data

    def delete(self, name: str, *, namespace: str, within: Duration = 60) -> Fault:
        """Delete the workload (its pods go with it); revert re-creates it from its manifest."""
        from kubernetes.client.exceptions import ApiException

        ctx = self._ctx
        wait = check_delete(name, namespace=namespace, within=within)
        current = self._read(name, namespace)
        target = f"{namespace}/{name}"
        ctx.plan(self._family, f"delete {self.kind} {target}")
        kind = f"{self._family}.delete"
        uid = current["metadata"]["uid"]
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            records.append(
                ctx.record(
                    kind,
                    kind=self.kind,
                    namespace=namespace,
                    name=name,
                    uid=uid,
                    undo="recreate",
                    payload={"manifest": restorable_manifest(current)},
                )
            )
            body: Any = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
            try:
                call(ctx.kube.workload_api(self.kind, "delete"), name, namespace, body=body)
            except ApiException as exc:
                # 404: a retried delete whose first attempt was applied but not answered.
                if exc.status != 404:
                    raise
            ctx.timeline.add("inject", f"{kind}: {self.kind} {target} deleted", targets=[target])
        # Registered before verifying: even an inconclusive delete is re-created at teardown.
        fault = ctx.done(Fault(ctx, kind, (target,), records))
        try:
            ctx.kube.wait(
                functools.partial(ctx.kube.workload_api(self.kind, "list"), namespace),
                lambda objects: all(o.metadata.uid != uid for o in objects),
                within=wait,
                what=f"{self.kind} {target} to be gone",
                field_selector=f"metadata.name={name}",
            )
        except WaitTimeout as exc:
            raise InconclusiveError(
                f"{kind} did not take effect: {exc} (a finalizer may hold it)"
            ) from None
        ctx.timeline.add("verify", f"{kind}: {self.kind} {target} is gone")
        return fault

    def scale(self, name: str, *, namespace: str, replicas: int) -> Fault:
        """Set the replicas; revert sets the previous number back (unless changed meanwhile)."""
        ctx = self._ctx
        check_scale(name, namespace=namespace, replicas=replicas)
        current = self._read(name, namespace)
        before = int(current.get("spec", {}).get("replicas", 1))
        target = f"{namespace}/{name}"
        ctx.plan(self._family, f"scale {self.kind} {target} from {before} to {replicas}")
        kind = f"{self._family}.scale"
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            records.append(
                ctx.record(
                    kind,
                    kind=self.kind,
                    namespace=namespace,
                    name=name,
                    uid=current["metadata"]["uid"],
                    undo="scale",
                    payload={"from": before, "to": replicas},
                )
            )
            self._set_replicas(name, namespace, current, before, replicas, records[-1].id)
            ctx.timeline.add(
                "inject",
                f"{kind}: {self.kind} {target} {before} -> {replicas} replicas",
                targets=[target],
            )
        return ctx.done(
            Fault(ctx, kind, (target,), records, details={"from": before, "to": replicas})
        )

    def _set_replicas(
        self,
        name: str,
        namespace: str,
        current: dict[str, Any],
        before: int,
        replicas: int,
        record_id: str,
    ) -> None:
        """Patch replicas under optimistic concurrency, telling our own write from others'."""
        from kubernetes.client.exceptions import ApiException

        patch = self._ctx.kube.workload_api(self.kind, "patch")
        for _attempt in range(10):
            # The label shows (`kubectl get -l chaos.pytest.dev/fault`) which fault holds the
            # object; cleanup trusts the ledger record (kind, namespace, name, uid, owner).
            body: Any = {
                "metadata": {
                    "resourceVersion": current["metadata"]["resourceVersion"],
                    "labels": {FAULT_LABEL: record_id},
                },
                "spec": {"replicas": replicas},
            }
            try:
                call(patch, name, namespace, body)
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
            # The object changed since we read it: a status update, our own write whose answer
            # was lost, or someone else's edit. Look again and decide.
            current = self._read(name, namespace)
            now = current.get("spec", {}).get("replicas", 1)
            if now == replicas:
                return
            if now != before:
                raise DriftError(
                    f"{self.kind} {namespace}/{name} was scaled to {now} by someone "
                    "else while the fault was being injected"
                )
        raise InjectError(f"{self.kind} {namespace}/{name} kept changing; could not scale it")

    def restart(self, name: str, *, namespace: str) -> Fault:
        """Roll every pod, as ``kubectl rollout restart`` does (there is nothing to undo)."""
        ctx = self._ctx
        check_restart(name, namespace=namespace)
        current = self._read(name, namespace)
        target = f"{namespace}/{name}"
        ctx.plan(self._family, f"restart {self.kind} {target}")
        kind = f"{self._family}.restart"
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            records.append(
                ctx.record(
                    kind,
                    kind=self.kind,
                    namespace=namespace,
                    name=name,
                    uid=current["metadata"]["uid"],
                    undo="none",
                    in_cluster=False,
                )
            )
            body: Any = {
                "spec": {
                    "template": {
                        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}
                    }
                }
            }
            call(ctx.kube.workload_api(self.kind, "patch"), name, namespace, body)
            ctx.timeline.add("inject", f"{kind}: {self.kind} {target} restarted", targets=[target])
        return ctx.done(Fault(ctx, kind, (target,), records))
