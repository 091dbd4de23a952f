"""Cleanup: find the faults of crashed runs in the cluster and revert them.

Records are read from the cluster (they survive a SIGKILLed runner) and from this machine's
local ledger files; a record whose owner process still runs belongs to a live run and is left
alone unless ``include_live`` is set. Target Leases nobody holds any more (released, or expired
with their holder) are deleted too.
"""

from __future__ import annotations

from pytest_chaos.errors import ChaosError
from pytest_chaos.faults import undo
from pytest_chaos.faults.leases import UNDO_LEASE, remove_free_leases
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import describe
from pytest_chaos.ledger import Ledger, Owner, UndoRecord, forget_local, read_cluster, read_local
from pytest_chaos.settings import Settings


def find_leftovers(
    kube: Kube, *, include_live: bool = False, run: str | None = None
) -> list[UndoRecord]:
    """Records of faults still in the cluster (and open local records), live owners excepted.

    With run, only that run's records (the id in a run's header, ``chaos: seed=... run ID``).
    """
    found: dict[str, UndoRecord] = {r.id: r for r in read_cluster(kube)}
    for record in read_local():
        if record.undo != "none":
            found.setdefault(record.id, record)
    return [
        r
        for r in found.values()
        if (include_live or not r.owner.is_alive()) and (run is None or r.owner.run == run)
    ]


def clean(
    kube: Kube, *, include_live: bool = False, dry_run: bool = False, run: str | None = None
) -> tuple[list[str], list[str]]:
    """Revert every leftover; return (report lines, failures)."""
    lines: list[str] = []
    failures: list[str] = []
    done: set[str] = set()
    # Leases last: a target stays held until what was done to it is undone.
    leftovers = sorted(
        find_leftovers(kube, include_live=include_live, run=run),
        key=lambda r: r.undo == UNDO_LEASE,
    )
    for record in leftovers:
        label = f"{record.fault} on {record.target} (run {record.owner.run}, {record.test})"
        if dry_run:
            lines.append(f"would revert {label}")
            continue
        try:
            outcome = undo.revert(kube, record)
            Ledger(kube, record.owner).close(record, outcome=f"cleaned: {outcome}")
        except ChaosError as exc:
            failures.append(f"{label}: {exc}")
            lines.append(f"FAILED {label}: {exc}")
            continue
        except Exception as exc:
            failures.append(f"{label}: {describe(exc)}")
            lines.append(f"FAILED {label}: {describe(exc)}")
            continue
        done.add(record.id)
        lines.append(f"{outcome}: {label}")
    if not dry_run:
        forget_local(done)  # also tidies files whose every record was already closed
    try:
        lines += remove_free_leases(kube, run=run, dry_run=dry_run)
    except Exception as exc:
        failures.append(f"removing free target leases: {describe(exc)}")
        lines.append(f"FAILED removing free target leases: {describe(exc)}")
    return lines, failures


def cleanup_for_settings(settings: Settings) -> tuple[list[str], list[str]]:
    """Clean the cluster the settings point at (``--chaos-cleanup``)."""
    from pytest_chaos.cluster import provider_for

    provider = provider_for(settings)
    if not provider.running():
        return [
            f"chaos cleanup: the {settings.cluster} cluster is not running; nothing to clean"
        ], []
    handle = provider.acquire()
    kube = Kube.from_kubeconfig(handle.kubeconfig, handle.context)
    try:
        return clean(kube)
    finally:
        kube.close()
        provider.release()


__all__ = ["Owner", "clean", "cleanup_for_settings", "find_leftovers"]
