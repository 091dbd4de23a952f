"""Undo: how each kind of record is reverted, by a test's teardown or by cleanup alike.

Every undo is idempotent (reverting twice is harmless) and conflict-aware: an object changed by
someone else since the fault is reported as drift (DriftError), never overwritten.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pytest_chaos.errors import DriftError, RevertError
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import call
from pytest_chaos.ledger import UndoRecord

#: Metadata the API server sets; a restored object must not carry the old values.
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
#: Annotations a controller writes on its own object.
CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)

#: A label on an object a fault holds (a scaled Deployment): the id of its ledger record. A label,
#: not an annotation: a Deployment's annotations are copied onto its ReplicaSets and never
#: removed there, its labels are not.
FAULT_LABEL = "chaos.pytest.dev/fault"


Reverter = Callable[[Kube, UndoRecord], str]

#: Undo kinds of the fault families, registered by :func:`reverter` when their module loads.
_REVERTERS: dict[str, Reverter] = {}
#: Modules that register reverters; imported on first need, so cleanup knows every kind.
FAMILY_MODULES = (
    "pytest_chaos.faults.leases",
    "pytest_chaos.faults.node_undo",
    "pytest_chaos.faults.node_stop",
    "pytest_chaos.faults.istio",
    "pytest_chaos.faults.network",
    "pytest_chaos.faults.stress",
)


def reverter(name: str) -> Callable[[Reverter], Reverter]:
    """Register a function as the undo called name (``record.undo``); it returns an outcome."""

    def register(function: Reverter) -> Reverter:
        _REVERTERS[name] = function
        return function

    return register


def _reverter_for(name: str) -> Reverter | None:
    if name not in _REVERTERS:
        for module in FAMILY_MODULES:
            importlib.import_module(module)
    return _REVERTERS.get(name)


def restorable_manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as read from the API, minus what the server sets: ready to create again."""
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k not in SERVER_METADATA}
    annotations = {
        k: v
        for k, v in (metadata.get("annotations") or {}).items()
        if k not in CONTROLLER_ANNOTATIONS
    }
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return {k: v for k, v in obj.items() if k != "status"} | {"metadata": metadata}


def revert(kube: Kube, record: UndoRecord) -> str:
    """Undo one record; return what happened ("reverted", "already reverted", ...)."""
    if record.undo == "none":
        return "nothing to undo"
    if record.namespace and not _namespace_alive(kube, record.namespace):
        # Everything the fault touched went with the namespace; nothing is left to restore.
        return "namespace deleted, nothing to restore"
    if record.undo == "recreate":
        return _recreate(kube, record)
    if record.undo == "scale":
        return _scale_back(kube, record)
    family_revert = _reverter_for(record.undo)
    if family_revert is not None:
        return family_revert(kube, record)
    raise RevertError(f"{record.target}: unknown undo {record.undo!r} (record {record.id})")


def _namespace_alive(kube: Kube, namespace: str) -> bool:
    found = kube.read(kube.core.read_namespace, namespace)
    return found is not None and not found["metadata"].get("deletionTimestamp")


def _read(kube: Kube, record: UndoRecord) -> dict[str, Any] | None:
    return kube.read(kube.workload_api(record.kind, "read"), record.name, record.namespace)


def tagged(
    manifest: dict[str, Any], read: Callable[[str], dict[str, Any] | None]
) -> Callable[[], bool]:
    """``Kube.create``'s ``ours``: the object of manifest's name carries manifest's fault tag.

    read(name) reads the object (None: not there); a create retried after a lost answer meets
    its own first attempt, which carries the tag.
    """

    def ours() -> bool:
        existing = read(manifest["metadata"]["name"])
        tag = manifest["metadata"]["labels"][FAULT_LABEL]
        return (
            existing is not None and existing["metadata"].get("labels", {}).get(FAULT_LABEL) == tag
        )

    return ours


def _recreate(kube: Kube, record: UndoRecord) -> str:
    manifest = record.payload["manifest"]
    if kube.create(kube.workload_api(record.kind, "create"), record.namespace, manifest):
        return "reverted"
    current = _read(kube, record)
    if current is not None and current.get("spec") == manifest.get("spec"):
        return "already reverted"
    raise DriftError(
        f"{record.target} exists again but differs from the one the fault deleted: someone "
        "else re-created it; left as it is (record " + record.id + ")"
    )


def _scale_back(kube: Kube, record: UndoRecord) -> str:
    from kubernetes.client.exceptions import ApiException

    before, during = int(record.payload["from"]), int(record.payload["to"])
    for _attempt in range(5):
        current = _read(kube, record)
        if current is None:
            raise DriftError(
                f"{record.target} was deleted while scaled to {during}: nothing to "
                f"scale back to {before} (record {record.id})"
            )
        if record.uid and current["metadata"].get("uid") != record.uid:
            raise DriftError(
                f"{record.target} was replaced by another object while the fault "
                f"was active; left as it is (record {record.id})"
            )
        replicas = current.get("spec", {}).get("replicas")
        ours = (current["metadata"].get("labels") or {}).get(FAULT_LABEL) == record.id
        if replicas == before and not ours:
            return "already reverted"
        if replicas not in (before, during):
            raise DriftError(
                f"{record.target} was scaled to {replicas} by someone else while the fault held "
                f"it at {during}; not restoring {before} over their change (record {record.id})"
            )
        body: Any = {
            "metadata": {
                "resourceVersion": current["metadata"]["resourceVersion"],
                "labels": {FAULT_LABEL: None},
            },
            "spec": {"replicas": before},
        }
        try:
            call(kube.workload_api(record.kind, "patch"), record.name, record.namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                continue  # changed between our read and our write: look again
            raise
        return "reverted"
    raise RevertError(f"{record.target}: kept changing while scaling back (record {record.id})")
