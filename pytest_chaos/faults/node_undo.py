"""Node reads, writes and undo of chaos.nodes: the reverters of cordon, taint and delete.

Writes carry the node's resourceVersion (optimistic concurrency), so nothing overwrites someone
else's change. Every undo works from its ledger record alone (teardown and ``pytest-chaos
cleanup`` alike), is idempotent, and reports a change made by someone else as drift.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from pytest_chaos.errors import DriftError, RevertError
from pytest_chaos.faults.node_rules import (
    CORDON_ANNOTATION,
    Taint,
    restorable_node,
    without_cordon_taint,
    without_taint,
)
from pytest_chaos.faults.undo import reverter
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import call
from pytest_chaos.ledger import CLUSTER_SCOPE_NAMESPACE, RECORD_KEY, UNDO_LABEL, UndoRecord

#: The field manager of our node writes: managedFields then tell our cordon from a later one.
FIELD_MANAGER: Final = "pytest-chaos"

#: The undo kinds of node faults (``record.undo``); records in clusters name them: never rename.
UNDO_UNCORDON: Final = "uncordon"
UNDO_UNTAINT: Final = "untaint"
UNDO_RECREATE: Final = "recreate-node"
#: How often a write that conflicts (409) is tried again, each time on a fresh read.
ATTEMPTS: Final = 10


def read_node(kube: Kube, name: str) -> dict[str, Any] | None:
    """A node as the API returns it (JSON), or None when it does not exist."""
    return kube.read(kube.core.read_node, name)


def patch_node(kube: Kube, name: str, body: Any) -> bool:
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


def open_node_records(kube: Kube) -> list[UndoRecord]:
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
    for record in open_node_records(kube):
        if record.undo == UNDO_UNTAINT:
            held.setdefault(record.name, set()).add(Taint.of(record.payload["taint"]))
    return held


# ---------------------------------------------------------------------------------------------
# Undo (teardown and `pytest-chaos cleanup` alike; idempotent; from the record alone)
# ---------------------------------------------------------------------------------------------


@reverter(UNDO_UNCORDON)
def _uncordon(kube: Kube, record: UndoRecord) -> str:
    """Uncordon a node this fault cordoned (told by our annotation), and nothing else."""
    for _attempt in range(ATTEMPTS):
        node = read_node(kube, record.name)
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
        if patch_node(kube, record.name, body):
            return outcome
    raise RevertError(f"{record.target}: kept changing while uncordoning (record {record.id})")


@reverter(UNDO_UNTAINT)
def _untaint(kube: Kube, record: UndoRecord) -> str:
    """Remove exactly our taint; another value under our key and effect is drift."""
    taint = Taint.of(record.payload["taint"])
    for _attempt in range(ATTEMPTS):
        node = read_node(kube, record.name)
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
        if patch_node(kube, record.name, body):
            return "reverted"
    raise RevertError(f"{record.target}: kept changing while untainting (record {record.id})")


@reverter(UNDO_RECREATE)
def _recreate_node(kube: Kube, record: UndoRecord) -> str:
    """Re-create a deleted Node from its manifest, unless a node of that name exists again."""
    current = read_node(kube, record.name)
    if current is not None:
        if current["metadata"].get("uid") == record.uid:
            return "already reverted (the node was never deleted)"
        return "already reverted (the node exists again: re-registered or re-created)"
    manifest = _without_ended_faults(kube, record)
    if not kube.create(kube.core.create_node, manifest, field_manager=FIELD_MANAGER):
        return "already reverted (the node exists again: re-registered or re-created)"
    return "reverted"


def _without_ended_faults(kube: Kube, record: UndoRecord) -> Any:
    """The recorded manifest minus the cordons and taints of faults reverted since."""
    manifest: Any = json.loads(json.dumps(record.payload["manifest"]))
    carried = record.payload.get("carried") or []
    if not carried:
        return restorable_node(manifest)
    still_open = {r.id for r in open_node_records(kube)}
    spec = manifest.setdefault("spec", {})
    annotations = manifest["metadata"].get("annotations") or {}
    for fault in carried:
        if fault["id"] in still_open:
            continue  # its own undo will run and find the node with its change
        if fault["undo"] == UNDO_UNCORDON:
            if annotations.get(CORDON_ANNOTATION) == fault["id"]:
                annotations.pop(CORDON_ANNOTATION)
                before = fault["payload"].get("unschedulable_before")
                if before is None:
                    spec.pop("unschedulable", None)
                else:
                    spec["unschedulable"] = before
        elif fault["undo"] == UNDO_UNTAINT:
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
