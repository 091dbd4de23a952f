"""The ledger: write-ahead records of how to undo every fault, kept where a crash cannot lose them.

Before a fault touches anything, its :class:`UndoRecord` is written twice:

1. appended to a local JSON-lines file (one per process, fsynced), and
2. stored in the cluster, as a ConfigMap named ``pytest-chaos-undo-<id>`` in the target's
   namespace (``default`` for cluster-scoped targets such as nodes), labelled
   ``chaos.pytest.dev/undo=true`` and with the owner's run id.

Only then is the object mutated. A revert undoes the change idempotently and deletes the record;
the local file gets a ``reverted`` line. Cleanup (``pytest-chaos cleanup``, ``--chaos-cleanup``,
and the warning at the start of every run) finds records in the cluster even when the local file
is gone. Records are matched to objects by kind, namespace, name *and uid*: annotations are not
proof of anything (a Deployment's annotations are copied to its ReplicaSets), and a record whose
owner process still runs is left alone, so a parallel run's faults are never reverted under it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_chaos.cluster.processes import start_time_of
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import call

UNDO_LABEL = "chaos.pytest.dev/undo"
RUN_LABEL = "chaos.pytest.dev/run"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "pytest-chaos"
RECORD_KEY = "record.json"
#: Where the records of cluster-scoped targets (nodes) are kept in the cluster.
CLUSTER_SCOPE_NAMESPACE = "default"


def new_run_id() -> str:
    """A run id: sortable by time, unique, a valid label value."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True, slots=True)
class Owner:
    """The process that made a record: a record is stale once its owner is gone."""

    run: str
    host: str
    pid: int
    start_time: int

    @classmethod
    def current(cls, run: str) -> Owner:
        """This process, in the run called run."""
        pid = os.getpid()
        return cls(run, socket.gethostname(), pid, start_time_of(pid) or 0)

    def is_alive(self) -> bool:
        """True when the owner process still runs (only knowable on its own host)."""
        if self.host != socket.gethostname():
            return False
        return start_time_of(self.pid) == self.start_time


@dataclass(frozen=True, slots=True)
class UndoRecord:
    """How to undo one mutation of one object."""

    id: str
    fault: str
    test: str
    owner: Owner
    kind: str
    namespace: str | None
    name: str
    uid: str | None
    undo: str
    payload: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    @property
    def target(self) -> str:
        """``Kind namespace/name``, as messages name objects."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @property
    def store_namespace(self) -> str:
        """The namespace of the record's ConfigMap: the target's, or ``default``."""
        return self.namespace or CLUSTER_SCOPE_NAMESPACE

    @property
    def configmap_name(self) -> str:
        """Name of the record's ConfigMap in the cluster."""
        return f"pytest-chaos-undo-{self.id}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict of this record."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UndoRecord:
        """Rebuild a record from :meth:`to_json` output."""
        values = dict(data)
        values["owner"] = Owner(**values["owner"])
        return cls(**values)


def ledger_dir() -> Path:
    """Where local ledger files live: ``$PYTEST_CHAOS_LEDGER_DIR`` or the user state dir."""
    explicit = os.environ.get("PYTEST_CHAOS_LEDGER_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "pytest-chaos" / "ledger"


class Ledger:
    """The undo records of one process."""

    def __init__(self, kube: Kube, owner: Owner, *, directory: Path | None = None) -> None:
        """Keep the records of owner, locally under directory and in kube's cluster."""
        self.kube = kube
        self.owner = owner
        self.directory = directory or ledger_dir()
        self.path = self.directory / f"{owner.run}-{owner.pid}.jsonl"
        self.open_records: dict[str, UndoRecord] = {}
        self._local_only: set[str] = set()  # records this process never stored in the cluster

    def new_id(self) -> str:
        """A fresh record id (a valid name suffix)."""
        return secrets.token_hex(6)

    def _append(self, entry: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, record: UndoRecord, *, in_cluster: bool = True) -> None:
        """Record how to undo a mutation: locally (fsynced), then in the cluster. Call first!"""
        self._append({"state": "pending", "record": record.to_json()})
        if not in_cluster:
            self._local_only.add(record.id)
        else:
            body: Any = {
                "metadata": {
                    "name": record.configmap_name,
                    "labels": {
                        UNDO_LABEL: "true",
                        RUN_LABEL: record.owner.run,
                        MANAGED_BY_LABEL: MANAGED_BY,
                    },
                    "annotations": {"chaos.pytest.dev/target": record.target},
                },
                "data": {RECORD_KEY: json.dumps(record.to_json(), sort_keys=True)},
            }
            from kubernetes.client.exceptions import ApiException

            try:
                call(self.kube.core.create_namespaced_config_map, record.store_namespace, body)
            except ApiException as exc:
                # A retried create whose first attempt was applied but not answered.
                if exc.status != 409 or not self._stored(record):
                    raise
        self.open_records[record.id] = record

    def finish(self) -> None:
        """The run is over: remove this process's file when every record in it was closed.

        A crashed run's file stays, for cleanup (which removes it once it is reverted).
        """
        if not self.open_records:
            self.path.unlink(missing_ok=True)

    def _stored(self, record: UndoRecord) -> bool:
        existing = call(
            self.kube.core.read_namespaced_config_map,
            record.configmap_name,
            record.store_namespace,
        )
        return bool(
            (existing.data or {}).get(RECORD_KEY) == json.dumps(record.to_json(), sort_keys=True)
        )

    def close(self, record: UndoRecord, *, outcome: str = "reverted") -> None:
        """Mark a record done: delete its cluster copy (idempotent) and log the outcome."""
        from kubernetes.client.exceptions import ApiException

        if record.id not in self._local_only:
            try:
                call(
                    self.kube.core.delete_namespaced_config_map,
                    record.configmap_name,
                    record.store_namespace,
                )
            except ApiException as exc:
                if exc.status not in (404, 403):  # gone, or its namespace is terminating
                    raise
        self._append({"state": outcome, "id": record.id, "at": time.time()})
        self.open_records.pop(record.id, None)
        self._local_only.discard(record.id)


def _open_records(path: Path) -> dict[str, UndoRecord]:
    """The records of one ledger file that were written and never closed."""
    pending: dict[str, UndoRecord] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash mid-write
            if entry.get("state") == "pending":
                record = UndoRecord.from_json(entry["record"])
                pending[record.id] = record
            else:
                pending.pop(str(entry.get("id")), None)
    return pending


def _ledger_files(directory: Path | None) -> list[Path]:
    base = directory or ledger_dir()
    return sorted(base.glob("*.jsonl")) if base.is_dir() else []


def read_local(directory: Path | None = None) -> Iterator[UndoRecord]:
    """Records of every local ledger file that were never closed."""
    for path in _ledger_files(directory):
        yield from _open_records(path).values()


def read_cluster(kube: Kube) -> list[UndoRecord]:
    """Every undo record stored in the cluster, in any namespace."""
    listing = call(
        kube.core.list_config_map_for_all_namespaces, label_selector=f"{UNDO_LABEL}=true"
    )
    records = []
    for item in listing.items or []:
        data = (item.data or {}).get(RECORD_KEY)
        if data:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                records.append(UndoRecord.from_json(json.loads(data)))
    return records


def forget_local(record_ids: set[str], directory: Path | None = None) -> None:
    """Remove local ledger files whose every record is closed or in record_ids."""
    for path in _ledger_files(directory):
        if set(_open_records(path)) <= record_ids:
            path.unlink(missing_ok=True)
