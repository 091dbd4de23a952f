"""Target leases: one fault at a time per target, across xdist workers, processes and CI jobs.

Before a fault mutates an existing object, it takes a ``coordination.k8s.io/v1`` Lease for the
object's *target* (:func:`target_of`): the workload for a pod, the object itself otherwise, in the
target's namespace (``default`` for nodes). The Lease names its holder (run, worker, pid, test),
is written to the ledger before it is created, is renewed by a daemon thread while held, and is
deleted when the last fault of this process on that target is reverted. If the process dies, its
Leases expire after :data:`LEASE_SECONDS`, and ``pytest-chaos cleanup`` deletes them.

What overlaps (one rule, no special cases): a fault holds the *target of every existing object
it records an undo for*. So a Deployment scale and a pod kill in the same Deployment overlap (a
pod's target is its top controller: ReplicaSet -> Deployment); a node drain and a node taint on
the same node overlap; a drain does not hold the workloads whose pods it evicts (it changes no
workload, only the node); faults that only create objects of their own (a NetworkPolicy, a
stress or load pod) hold nothing. Faults of one process never wait for each other: a target this
process holds is shared by its own faults (a test may stack faults on purpose).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_chaos.errors import InjectError, WaitTimeout
from pytest_chaos.faults.undo import reverter
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import call
from pytest_chaos.ledger import (
    CLUSTER_SCOPE_NAMESPACE,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    RUN_LABEL,
    Ledger,
    UndoRecord,
)
from pytest_chaos.settings import DEFAULT_LEASE_WAIT

if TYPE_CHECKING:
    from kubernetes import client

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The undo kind of a lease's ledger record.
UNDO_LEASE = "lease"
#: Label of every Lease pytest-chaos holds (``kubectl get leases -A -l chaos.pytest.dev/lease``).
LEASE_LABEL = "chaos.pytest.dev/lease"
TARGET_ANNOTATION = "chaos.pytest.dev/target"
#: Who released a free Lease last (a fault of this process never reads its own release as stale).
RELEASED_BY_ANNOTATION = "chaos.pytest.dev/released-by"
#: How long a Lease outlives its last renewal (a killed holder frees its targets after this).
LEASE_SECONDS = 15
#: How often the holder renews its Leases.
RENEW_EVERY = 5.0
#: How often a waiting fault says it is still waiting (timeline and log).
PROGRESS_EVERY = 10.0
#: Clock difference tolerated between hosts comparing a release time with a fault's start.
CLOCK_SLACK = 1.0

_INVALID = re.compile(r"[^a-z0-9.-]+")


@dataclass(frozen=True, slots=True)
class LeaseTarget:
    """What a Lease protects: one object, by kind, namespace (None: cluster-scoped) and name."""

    kind: str
    namespace: str | None
    name: str

    @property
    def text(self) -> str:
        """``Deployment shop/web``, ``Node kwok-node-0``."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @property
    def lease_namespace(self) -> str:
        """The Lease's namespace: the target's, or ``default`` for cluster-scoped targets."""
        return self.namespace or CLUSTER_SCOPE_NAMESPACE

    @property
    def lease_name(self) -> str:
        """A valid, stable Lease name: ``pytest-chaos.<kind>.<name>`` (hashed when too long)."""
        readable = _INVALID.sub("-", f"pytest-chaos.{self.kind.lower()}.{self.name.lower()}")
        exact = f"{self.kind}/{self.name}"
        if len(readable) <= 200 and readable.endswith(self.name.lower()):
            return readable
        digest = hashlib.sha256(exact.encode()).hexdigest()[:16]
        return f"{readable[:180].rstrip('.-')}.{digest}"


class TargetHeldError(InjectError):
    """A target is held by another run's fault (a Lease); the message names the holder."""

    def __init__(self, target: LeaseTarget, holder: str, *, waited: float | None = None) -> None:
        """The target, its current holder, and how long this fault waited (None: not yet)."""
        self.target = target
        self.holder = holder
        self.waited = waited
        lease = f"Lease {target.lease_namespace}/{target.lease_name}"
        if waited is None:
            tail = ""
        elif waited <= 0:
            tail = "; not waiting (--chaos-lease-wait=0)"
        else:
            tail = f"; still held after waiting {waited:g}s (raise --chaos-lease-wait)"
        super().__init__(f"{target.text} is held by another fault: {holder} ({lease}){tail}")


class TargetReleasedError(TargetHeldError):
    """Another fault released target after this fault read it: read again (no waiting)."""

    def __init__(self, target: LeaseTarget) -> None:
        """The target whose Lease was released under the fault's feet."""
        super().__init__(target, "a fault that released it just now")


def holder_identity(run: str, test: str, *, worker: str | None = None) -> str:
    """Who holds a Lease: run, xdist worker (or main), pid@host and the test's node id."""
    import socket

    who = worker or os.environ.get("PYTEST_XDIST_WORKER") or "main"
    return f"run={run} worker={who} pid={os.getpid()}@{socket.gethostname()} test={test}"


def _micro_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def expires_in(lease: dict[str, Any], now: float) -> float:
    """Seconds until lease (the API's JSON) expires; <= 0 when expired or held by no one."""
    spec = lease.get("spec") or {}
    if not spec.get("holderIdentity"):
        return 0.0
    renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
    if renewed is None:
        return 0.0
    return renewed + float(spec.get("leaseDurationSeconds") or LEASE_SECONDS) - now


def lease_body(
    target: LeaseTarget, holder: str, *, run: str, now: float, transitions: int = 0
) -> dict[str, Any]:
    """The Lease pytest-chaos writes for target, held by holder since now."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": target.lease_name,
            "namespace": target.lease_namespace,
            "labels": {LEASE_LABEL: "true", RUN_LABEL: run, MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {TARGET_ANNOTATION: target.text},
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": LEASE_SECONDS,
            "acquireTime": _micro_time(now),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        },
    }


def coordination(kube: Kube) -> client.CoordinationV1Api:
    """coordination.k8s.io/v1 on kube's client."""
    from kubernetes import client

    return client.CoordinationV1Api(kube.api_client)


def read_lease(kube: Kube, target: LeaseTarget) -> dict[str, Any] | None:
    """The Lease of target as the API's JSON, or None."""
    api = coordination(kube)
    return kube.read(api.read_namespaced_lease, target.lease_name, target.lease_namespace)


def target_of(kube: Kube, kind: str, namespace: str | None, name: str) -> LeaseTarget:
    """The target a fault on this object holds: a pod's top controller, else the object."""
    if kind != "Pod" or namespace is None:
        return LeaseTarget(kind, namespace, name)
    pod = kube.read(kube.core.read_namespaced_pod, name, namespace)
    owner = _controller(pod)
    if owner is None:
        return LeaseTarget("Pod", namespace, name)
    if owner["kind"] == "ReplicaSet":
        replicas = kube.read(kube.apps.read_namespaced_replica_set, owner["name"], namespace)
        top = _controller(replicas)
        if top is not None:
            return LeaseTarget(top["kind"], namespace, top["name"])
    return LeaseTarget(owner["kind"], namespace, owner["name"])


def _controller(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    for ref in (obj or {}).get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


@dataclass
class _Held:
    target: LeaseTarget
    record: UndoRecord
    holder: str
    resource_version: str
    refs: set[str] = field(default_factory=set)


class LeaseKeeper:
    """This process's Leases: taken for records, shared by its faults, renewed, released."""

    def __init__(self, kube: Kube, ledger: Ledger) -> None:
        """Hold Leases in kube's cluster, recorded in ledger (whose owner names the run)."""
        self.kube = kube
        self.ledger = ledger
        self._held: dict[LeaseTarget, _Held] = {}
        self._seen: dict[LeaseTarget, str] = {}  # releases that made a fault read again
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> list[LeaseTarget]:
        """The targets this process holds now."""
        with self._lock:
            return list(self._held)

    def take(
        self, target: LeaseTarget, *, record_id: str, fault: str, test: str, since: float = 0.0
    ) -> None:
        """Hold target for the undo record record_id, or raise TargetHeldError (no waiting).

        since: when the fault started reading its targets (wall clock). A Lease released by
        another holder after that raises TargetReleasedError: the fault read the state while
        the other fault still held it, and must read it again.
        """
        from kubernetes.client.exceptions import ApiException

        with self._lock:
            held = self._held.get(target)
            if held is not None:
                held.refs.add(record_id)
                return
            api = coordination(self.kube)
            holder = holder_identity(self.ledger.owner.run, test)
            current = read_lease(self.kube, target)
            now = time.time()
            if current is not None:
                spec = current.get("spec") or {}
                if expires_in(current, now) > 0:
                    raise TargetHeldError(target, str(spec["holderIdentity"]))
                stamp = str(spec.get("renewTime") or "")
                released = _parse_time(stamp) or 0.0
                recent = since and released >= since - CLOCK_SLACK
                by = (current["metadata"].get("annotations") or {}).get(RELEASED_BY_ANNOTATION)
                ours = str(by or "").startswith(holder_identity(self.ledger.owner.run, ""))
                fresh = self._seen.get(target) != stamp
                if recent and not spec.get("holderIdentity") and not ours and fresh:
                    self._seen[target] = stamp  # once per release: the next attempt proceeds
                    raise TargetReleasedError(target)
            # The ledger first: a crash between these two lines leaves a record, not a lease.
            # Locally only: the Lease is the cluster's copy (labelled, naming its holder, and
            # expiring by itself), so another host's cleanup removes it once it has expired.
            record = UndoRecord(
                id=self.ledger.new_id(),
                fault=fault,
                test=test,
                owner=self.ledger.owner,
                kind="Lease",
                namespace=target.lease_namespace,
                name=target.lease_name,
                uid=None,
                undo=UNDO_LEASE,
                payload={"holder": holder, "target": target.text},
            )
            self.ledger.write(record, in_cluster=False)
            run = self.ledger.owner.run
            body: Any
            created: Any
            try:
                if current is None:
                    body = lease_body(target, holder, run=run, now=now)
                    created = call(api.create_namespaced_lease, target.lease_namespace, body)
                else:  # free or expired: take it over, as leader election does
                    transitions = int(current["spec"].get("leaseTransitions") or 0) + 1
                    body = lease_body(target, holder, run=run, now=now, transitions=transitions)
                    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                    created = call(
                        api.replace_namespaced_lease,
                        target.lease_name,
                        target.lease_namespace,
                        body,
                    )
            except ApiException as exc:
                mine = exc.status == 409 and self._holds_now(target, holder)
                if not mine:
                    self.ledger.close(record, outcome="lease not taken")
                    if exc.status == 409:  # another run created or took it first
                        theirs = read_lease(self.kube, target) or {}
                        raise TargetHeldError(
                            target, str((theirs.get("spec") or {}).get("holderIdentity"))
                        ) from None
                    raise
                created = call(api.read_namespaced_lease, target.lease_name, target.lease_namespace)
            self._held[target] = _Held(
                target, record, holder, str(created.metadata.resource_version), {record_id}
            )
            self._start_renewing()

    def _holds_now(self, target: LeaseTarget, holder: str) -> bool:
        # A retried write whose first attempt was applied but not answered.
        lease = read_lease(self.kube, target)
        return bool(lease and (lease.get("spec") or {}).get("holderIdentity") == holder)

    def release(self, record_id: str) -> None:
        """The undo record record_id is done: free targets no other record of ours holds."""
        with self._lock:
            for target, held in list(self._held.items()):
                held.refs.discard(record_id)
                if held.refs:
                    continue
                del self._held[target]
                outcome = _release(self.kube, target, held.holder)
                self.ledger.close(held.record, outcome=f"lease {outcome}")
            if not self._held:
                self._stop_renewing()

    def _start_renewing(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew_loop, args=(self._stop,), name="pytest-chaos-leases", daemon=True
        )
        self._thread.start()

    def _stop_renewing(self) -> None:
        self._stop.set()
        self._thread = None

    def _renew_loop(self, stop: threading.Event) -> None:
        while not stop.wait(RENEW_EVERY):
            with self._lock:
                if stop.is_set():
                    return
                for held in list(self._held.values()):
                    try:
                        self._renew(held)
                    except Exception as exc:  # the next round tries again; expiry is far
                        log.warning("could not renew the lease of %s: %s", held.target.text, exc)

    def _renew(self, held: _Held) -> None:
        from kubernetes.client.exceptions import ApiException

        api = coordination(self.kube)
        body: Any = {
            "metadata": {"resourceVersion": held.resource_version},
            "spec": {"renewTime": _micro_time(time.time())},
        }
        renewed: Any
        try:
            renewed = call(
                api.patch_namespaced_lease,
                held.target.lease_name,
                held.target.lease_namespace,
                body,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
            lease = read_lease(self.kube, held.target)
            if lease is None or lease["spec"].get("holderIdentity") != held.holder:
                log.error(
                    "lost the lease of %s (now held by %s)",
                    held.target.text,
                    (lease or {}).get("spec", {}).get("holderIdentity", "no one"),
                )
                return
            held.resource_version = str(lease["metadata"]["resourceVersion"])
            return
        held.resource_version = str(renewed.metadata.resource_version)

    def wait_free(self, target: LeaseTarget, *, until: float) -> None:
        """Return when target's Lease is gone or expired, or at the monotonic time until.

        Watches the Lease (a release is seen at once); an expiry, which no event announces,
        ends the watch at the expiry time.
        """
        api = coordination(self.kube)
        while (remaining := until - time.monotonic()) > 0:
            lease = read_lease(self.kube, target)
            if lease is None or expires_in(lease, time.time()) <= 0:
                self._saw_free(target, lease)
                return
            left = expires_in(lease, time.time())
            with contextlib.suppress(WaitTimeout):
                seen = self.kube.wait(
                    functools.partial(api.list_namespaced_lease, target.lease_namespace),
                    lambda leases: not any(
                        expires_in(self.kube.serialize(each), time.time()) > 0 for each in leases
                    ),
                    within=max(0.05, min(remaining, left + 0.05)),
                    what=f"the lease of {target.text} to be released",
                    field_selector=f"metadata.name={target.lease_name}",
                )
                self._saw_free(target, self.kube.serialize(seen[0]) if seen else None)
                return

    def _saw_free(self, target: LeaseTarget, lease: dict[str, Any] | None) -> None:
        # A release this fault waited for: its next attempt reads the target afresh anyway, so
        # that release must not send it round again (TargetReleasedError).
        if lease is not None:
            with self._lock:
                self._seen[target] = str((lease.get("spec") or {}).get("renewTime") or "")


def _release(kube: Kube, target: LeaseTarget, holder: str) -> str:
    """Free target's Lease if holder still holds it: no holder, renewTime = the release time.

    The Lease stays (free) so that a fault which read the target while it was held can tell,
    when it takes the Lease, that the state it read is stale (:class:`TargetReleasedError`).
    ``pytest-chaos cleanup`` deletes free Leases.
    """
    from kubernetes.client.exceptions import ApiException

    api = coordination(kube)
    for _attempt in range(5):
        lease = read_lease(kube, target)
        if lease is None:
            return "already released"
        if (lease.get("spec") or {}).get("holderIdentity") != holder:
            return "taken over by another holder since; left alone"
        body: Any = {
            "metadata": {
                "resourceVersion": lease["metadata"]["resourceVersion"],
                "annotations": {RELEASED_BY_ANNOTATION: holder},
            },
            "spec": {"holderIdentity": None, "renewTime": _micro_time(time.time())},
        }
        try:
            call(api.patch_namespaced_lease, target.lease_name, target.lease_namespace, body)
        except ApiException as exc:
            if exc.status == 404:
                return "already released"
            if exc.status == 409:
                continue  # renewed between our read and our write: look again
            raise
        return "released"
    raise InjectError(f"the lease of {target.text} kept changing; could not release it")


def _delete_if_ours(kube: Kube, namespace: str, name: str, holder: str) -> str:
    """Delete the Lease namespace/name if holder still holds it; say what happened."""
    from kubernetes.client.exceptions import ApiException

    api = coordination(kube)
    for _attempt in range(5):
        lease = kube.read(api.read_namespaced_lease, name, namespace)
        if lease is None:
            return "already released"
        if (lease.get("spec") or {}).get("holderIdentity") != holder:
            return "taken over by another holder since; left alone"
        body: Any = {"preconditions": {"resourceVersion": lease["metadata"]["resourceVersion"]}}
        try:
            call(api.delete_namespaced_lease, name, namespace, body=body)
        except ApiException as exc:
            if exc.status == 404:
                return "already released"
            if exc.status == 409:
                continue  # renewed between our read and our delete: look again
            raise
        return "released"
    raise InjectError(f"the Lease {namespace}/{name} kept changing; could not release it")


@reverter(UNDO_LEASE)
def _revert_lease(kube: Kube, record: UndoRecord) -> str:
    """Cleanup's undo of a lease record: delete the Lease if the record's holder still has it."""
    namespace = record.namespace or CLUSTER_SCOPE_NAMESPACE
    return "lease " + _delete_if_ours(kube, namespace, record.name, str(record.payload["holder"]))


_KEEPERS: dict[int, LeaseKeeper] = {}
_KEEPERS_LOCK = threading.Lock()


def keeper_for(kube: Kube, ledger: Ledger) -> LeaseKeeper:
    """The one LeaseKeeper of a ledger (a chaos session): shared by all of its tests."""
    with _KEEPERS_LOCK:
        keeper = _KEEPERS.get(id(ledger))
        if keeper is None or keeper.ledger is not ledger:
            keeper = _KEEPERS[id(ledger)] = LeaseKeeper(kube, ledger)
        return keeper


def call_waiting(
    attempt: Callable[[], T],
    *,
    keeper: LeaseKeeper,
    wait: float,
    say: Callable[[str], None],
    rewind: Callable[[], None] = lambda: None,
) -> T:
    """Run attempt; while it meets a held target, wait (up to wait seconds) and run it again.

    attempt undoes its own partial effect before it raises (``injecting``), so running it again
    starts from scratch: it re-reads the target's state after the other fault reverted.
    rewind runs before each new attempt (it restores the seeded choice). say reports progress:
    once when the wait starts, then every PROGRESS_EVERY seconds.
    """
    started = time.monotonic()
    deadline = started + wait
    said_at: float | None = None
    while True:
        try:
            return attempt()
        except TargetReleasedError:
            if time.monotonic() >= deadline:
                raise
            rewind()  # the other fault is done: read the target again, at once
            continue
        except TargetHeldError as busy:
            now = time.monotonic()
            if now >= deadline:
                raise TargetHeldError(busy.target, busy.holder, waited=wait) from None
            if said_at is None or now - said_at >= PROGRESS_EVERY:
                said_at = now
                say(
                    f"waiting for {busy.target.text}, held by {busy.holder} "
                    f"({now - started:.0f}s of up to {wait:g}s, --chaos-lease-wait)"
                )
            keeper.wait_free(busy.target, until=min(deadline, now + PROGRESS_EVERY))
            rewind()


def remove_free_leases(kube: Kube, *, run: str | None = None, dry_run: bool = False) -> list[str]:
    """Delete pytest-chaos Leases no one holds (released or expired); say which.

    A Lease released less than LEASE_SECONDS ago stays. With run, only Leases last taken by
    that run.
    """
    from kubernetes.client.exceptions import ApiException

    api = coordination(kube)
    selector = f"{LEASE_LABEL}=true" + (f",{RUN_LABEL}={run}" if run else "")
    listing = kube.list_raw(api.list_lease_for_all_namespaces, label_selector=selector)
    lines: list[str] = []
    for lease in listing.get("items", []):
        renewed = _parse_time((lease.get("spec") or {}).get("renewTime")) or 0.0
        if expires_in(lease, time.time()) > 0 or time.time() - renewed < LEASE_SECONDS:
            continue  # held, or released just now (a fault may be checking it for staleness)
        meta = lease["metadata"]
        target = (meta.get("annotations") or {}).get(TARGET_ANNOTATION, "?")
        text = f"free lease {meta['namespace']}/{meta['name']} (of {target})"
        if dry_run:
            lines.append(f"would remove {text}")
            continue
        body: Any = {"preconditions": {"resourceVersion": meta["resourceVersion"]}}
        try:
            call(api.delete_namespaced_lease, meta["name"], meta["namespace"], body=body)
        except ApiException as exc:
            if exc.status in (404, 409):  # gone, or taken again meanwhile: not ours to remove
                continue
            raise
        lines.append(f"removed {text}")
    return lines


__all__ = [
    "DEFAULT_LEASE_WAIT",
    "LEASE_LABEL",
    "LEASE_SECONDS",
    "LeaseKeeper",
    "LeaseTarget",
    "TargetHeldError",
    "call_waiting",
    "expires_in",
    "holder_identity",
    "keeper_for",
    "remove_free_leases",
    "target_of",
]
