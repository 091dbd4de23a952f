"""Faults and their handle.

Each verb plans (resolves targets, checks safety), records its undo, injects, verifies that the
fault took effect, and returns a :class:`Fault` whose ``revert()`` undoes it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

from pytest_chaos.errors import ChaosError, InjectError, RevertError
from pytest_chaos.faults import undo
from pytest_chaos.faults.leases import (
    DEFAULT_LEASE_WAIT,
    LeaseKeeper,
    call_waiting,
    keeper_for,
    target_of,
)
from pytest_chaos.faults.outage import through_outage
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import describe
from pytest_chaos.ledger import Ledger, UndoRecord
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import DEFAULT_REVERT_TIMEOUT, DEFAULT_TOOLBOX_IMAGE

log = logging.getLogger(__name__)


@dataclass
class FaultContext:
    """What every fault needs: the cluster, the ledger, the guards, the seeded randomness."""

    kube: Kube
    ledger: Ledger
    safety: Safety
    rng: random.Random
    timeline: Timeline
    test: str
    dry_run: bool = False
    toolbox_image: str = DEFAULT_TOOLBOX_IMAGE
    on_fault: Callable[[Fault], None] | None = None
    on_revert: Callable[[Fault], None] | None = None
    #: ``--chaos-lease-wait``: how long a fault waits for a target another run's fault holds.
    lease_wait: float = DEFAULT_LEASE_WAIT
    #: ``--chaos-revert-timeout``: how long a revert retries an API server that refuses it.
    revert_timeout: float = DEFAULT_REVERT_TIMEOUT
    #: When the running verb started (wall clock): a Lease released after it means stale reads.
    attempt_started: float = 0.0

    @property
    def leases(self) -> LeaseKeeper:
        """The session's target Leases (one keeper per ledger, shared by its tests)."""
        return keeper_for(self.kube, self.ledger)

    def record(
        self,
        fault: str,
        *,
        kind: str,
        namespace: str | None,
        name: str,
        uid: str | None,
        undo: str,
        payload: dict[str, Any] | None = None,
        in_cluster: bool = True,
    ) -> UndoRecord:
        """Write an undo record (locally and in the cluster) before the mutation it covers.

        An existing object (uid known) is leased first: its target (:func:`target_of`) is held
        until the record is reverted; a target another run holds raises TargetHeldError, which
        the verb's wrapper turns into a bounded wait (``--chaos-lease-wait``).
        """
        record = UndoRecord(
            id=self.ledger.new_id(),
            fault=fault,
            test=self.test,
            owner=self.ledger.owner,
            kind=kind,
            namespace=namespace,
            name=name,
            uid=uid,
            undo=undo,
            payload=payload or {},
        )
        if uid is not None and not self.dry_run:
            target = target_of(self.kube, kind, namespace, name)
            self.leases.take(
                target, record_id=record.id, fault=fault, test=self.test, since=self.attempt_started
            )
        try:
            self.ledger.write(record, in_cluster=in_cluster)
        except BaseException:
            self.leases.release(record.id)
            raise
        return record

    def plan(self, family: str, plan: str) -> None:
        """In a dry run, log what the fault would do and skip the test; else do nothing."""
        if self.dry_run:
            self.timeline.add("plan", f"{family}: {plan}")
            skip_dry_run(plan)

    def done(self, fault: Fault) -> Fault:
        """Register an injected fault with the session (summary, hooks, teardown)."""
        if self.on_fault:
            self.on_fault(fault)
        return fault


def skip_dry_run(plan: str) -> NoReturn:
    """Skip the test in a dry run, reported at the test's own line (not pytest-chaos's)."""
    import pytest

    # The test item's location, as for a skip marker: ``-rs`` shows the test's file:line.
    raise pytest.skip.Exception(f"chaos dry run: would {plan}", _use_item_location=True)


def journal_verbs(injector: object) -> None:
    """Make every verb of injector's fault groups an activity of its timeline's journal.

    A group is an attribute holding a :class:`FaultContext` as ``_ctx`` (``chaos.pods``...); each
    of its public methods is wrapped on the instance: the call's arguments are the activity's
    input, the Fault's kind, targets and details its output, an exception its error.
    """
    for family, group in vars(injector).items():
        ctx = getattr(group, "_ctx", None)
        if family.startswith("_") or not isinstance(ctx, FaultContext):
            continue
        # From the class, not getattr on every name: a property must not run here.
        verbs = {
            name
            for klass in type(group).__mro__
            for name, value in vars(klass).items()
            if inspect.isfunction(value) and not name.startswith("_")
        }
        for verb in sorted(verbs):
            setattr(group, verb, _journaled(getattr(group, verb), f"{family}.{verb}", ctx))


def _journaled(method: Callable[..., Any], name: str, ctx: FaultContext) -> Callable[..., Any]:
    @functools.wraps(method)
    def verb(*args: Any, **kwargs: Any) -> Any:
        arguments = {"verb": name, "args": list(args), "kwargs": kwargs}
        with ctx.timeline.activity("action", name, phase="inject", input=arguments) as activity:
            result = _waiting_for_leases(ctx, name, lambda: method(*args, **kwargs))
            if isinstance(result, Fault):
                activity.output.update(
                    kind=result.kind, targets=list(result.targets), details=result.details
                )
            elif result is not None:
                activity.output["result"] = repr(result)
            return result

    return verb


def _waiting_for_leases(ctx: FaultContext, name: str, attempt: Callable[[], Any]) -> Any:
    """Run a verb; while a target it needs is held by another run, wait and run it again."""
    seeded = ctx.rng.getstate()

    def run() -> Any:
        outer = ctx.attempt_started  # a verb run by another verb keeps the outer start
        ctx.attempt_started = outer or time.time()
        try:
            return attempt()
        finally:
            ctx.attempt_started = outer

    def say(text: str) -> None:
        ctx.timeline.add("lease", f"{name}: {text}")
        log.warning("chaos: %s (%s) %s", name, ctx.test, text)

    def rewind() -> None:
        ctx.rng.setstate(seeded)  # the same seeded choice as the first attempt would make

    if ctx.dry_run:
        return attempt()
    return call_waiting(run, keeper=ctx.leases, wait=ctx.lease_wait, say=say, rewind=rewind)


class Fault:
    """An injected fault: its targets, whether it is active, and how to revert it."""

    def __init__(
        self,
        ctx: FaultContext,
        kind: str,
        targets: tuple[str, ...],
        records: list[UndoRecord],
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Wrap the records of a fault that was just injected (use the fault verbs instead)."""
        self._ctx = ctx
        self.kind = kind
        self.targets = targets
        self.records = records
        self.details = details or {}
        self.active = True
        self.discarded = False
        #: Called once the revert is done (Istio: wait until the data plane dropped the fault).
        self.after_revert: Callable[[], None] | None = None

    def revert(self) -> None:
        """Undo the fault (idempotent: reverting twice is harmless).

        Every record is attempted even when one fails; then a RevertError (one failure) or an
        ExceptionGroup of them is raised and the fault stays active.
        """
        if not self.active:
            return
        arguments = {"kind": self.kind, "targets": list(self.targets)}
        with self._ctx.timeline.activity(
            "action", self.kind, phase="revert", input=arguments
        ) as activity:
            errors: list[Exception] = []
            outcomes = activity.output.setdefault("outcomes", {})
            for record in reversed(self.records):
                try:
                    outcome = through_outage(
                        functools.partial(self._revert_one, record),
                        timeout=self._ctx.revert_timeout,
                        what=f"{self.kind}: {record.target}",
                        say=lambda text: self._ctx.timeline.add("revert", text),
                    )
                    self._ctx.leases.release(record.id)
                    outcomes[record.target] = outcome
                    if outcome != "nothing to undo":
                        self._ctx.timeline.add("revert", f"{self.kind}: {record.target} {outcome}")
                except Exception as exc:
                    outcomes[record.target] = f"FAILED: {exc}"
                    self._ctx.timeline.add("revert", f"{self.kind}: {record.target} FAILED: {exc}")
                    errors.append(
                        exc
                        if isinstance(exc, ChaosError)
                        else RevertError(f"{self.kind}: reverting {record.target} failed: {exc}")
                    )
            if errors:
                if len(errors) == 1:
                    raise errors[0]
                raise ExceptionGroup(f"{self.kind}: {len(errors)} reverts failed", errors)
        self.active = False
        if self.after_revert is not None:
            self.after_revert()
        if self._ctx.on_revert:
            self._ctx.on_revert(self)

    def _revert_one(self, record: UndoRecord) -> str:
        # Idempotent as a whole: a retry after a refused close finds the object reverted.
        outcome = undo.revert(self._ctx.kube, record)
        self._ctx.ledger.close(record, outcome=outcome)
        return outcome

    def discard(self, reason: str = "discarded") -> None:
        """Forget the fault without reverting it, e.g. after accepting a reported drift.

        Its records are closed, so cleanup will not touch the objects either.
        """
        for record in self.records:
            self._ctx.ledger.close(record, outcome=reason)
            self._ctx.leases.release(record.id)
        self._ctx.timeline.add("revert", f"{self.kind}: discarded without revert ({reason})")
        self.active = False
        self.discarded = True

    def __enter__(self) -> Fault:
        """Use as ``with chaos.deployments.scale(...) as fault:``; reverted on exit."""
        return self

    def __exit__(self, *_: object) -> None:
        """Revert when the block ends, however it ends."""
        self.revert()

    def __repr__(self) -> str:
        """``<Fault pods.kill active targets=[shop/web-1]>``."""
        state = "active" if self.active else "reverted"
        return f"<Fault {self.kind} {state} targets={list(self.targets)}>"


@contextmanager
def injecting(ctx: FaultContext, kind: str, records: list[UndoRecord]) -> Iterator[None]:
    """Undo whatever part of a fault was applied when injecting it fails, then raise."""
    try:
        yield
    except Exception as exc:
        partial = Fault(ctx, kind, (), records)
        try:
            partial.revert()
        except Exception as revert_exc:
            raise InjectError(
                f"{kind} failed ({exc}) and undoing its partial effect failed too "
                f"({revert_exc}); run `pytest-chaos cleanup`"
            ) from exc
        if isinstance(exc, ChaosError):
            raise
        raise InjectError(f"{kind} failed and was undone: {describe(exc)}") from exc
