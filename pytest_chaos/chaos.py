"""The ``chaos`` fixture's object and the per-session state behind it."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

from pytest_chaos.errors import RevertError
from pytest_chaos.faults import Fault, FaultContext, journal_verbs
from pytest_chaos.faults.deployments import WorkloadFaults
from pytest_chaos.faults.istio import IstioFaults
from pytest_chaos.faults.load import LoadFaults
from pytest_chaos.faults.monkey import RandomFaults
from pytest_chaos.faults.network import NetworkFaults
from pytest_chaos.faults.nodes import NodeFaults
from pytest_chaos.faults.pods import PodFaults
from pytest_chaos.faults.stress import StressFaults
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import Ledger, Owner, UndoRecord, read_cluster
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SessionStats:
    """What the chaos summary reports at the end of a run, derived from the run's faults."""

    faults: list[Fault] = field(default_factory=list)
    revert_failures: list[str] = field(default_factory=list)

    @property
    def injected(self) -> int:
        """Faults injected."""
        return len(self.faults)

    @property
    def reverted(self) -> int:
        """Faults no longer active, however they were reverted."""
        return sum(not f.active and not f.discarded for f in self.faults)

    @property
    def discarded(self) -> int:
        """Faults forgotten after an accepted drift."""
        return sum(f.discarded for f in self.faults)


class ChaosSession:
    """One pytest process's chaos state: cluster, ledger, guards, seed and counters."""

    def __init__(self, kube: Kube, settings: Settings, *, run_id: str, seed: int) -> None:
        """Guard kube's cluster with settings; records are owned by this process in run_id."""
        self.kube = kube
        self.settings = settings
        self.run_id = run_id
        self.seed = seed
        self.safety = Safety(settings, kube.context)
        self.ledger = Ledger(kube, Owner.current(run_id))
        self.stats = SessionStats()

    def leftovers(self) -> list[UndoRecord]:
        """Undo records in the cluster whose owner process is gone (crashed runs)."""
        return [r for r in read_cluster(self.kube) if not r.owner.is_alive()]

    def open_records(self) -> list[UndoRecord]:
        """This process's records still in the cluster (should be none after teardown)."""
        return [r for r in read_cluster(self.kube) if r.owner == self.ledger.owner]


class Chaos:
    """The fault injector: one group of verbs per family of faults.

    Groups: ``pods``, ``deployments``, ``statefulsets``, ``nodes``, ``istio``, ``network``,
    ``stress``, ``load``, ``random``.

    Every verb returns a :class:`~pytest_chaos.faults.Fault`. Whatever is still active when the
    fixture ends is reverted, newest first; every revert is attempted even if one fails.
    """

    def __init__(
        self,
        session: ChaosSession,
        test: str,
        timeline: Timeline,
        hook: Any = None,
    ) -> None:
        """Inject faults for test (a node id) and log them on timeline; call pytest hooks."""
        self._hook = hook
        self._test = test
        self._session = session
        self.timeline = timeline
        self.faults: list[Fault] = []
        # Seeded per test, so a test picks the same targets under xdist and in any order.
        rng = random.Random(f"{session.seed}:{test}")  # noqa: S311 - not for security
        ctx = FaultContext(
            kube=session.kube,
            ledger=session.ledger,
            safety=session.safety,
            rng=rng,
            timeline=timeline,
            test=test,
            dry_run=session.settings.dry_run,
            toolbox_image=session.settings.toolbox_image,
            lease_wait=session.settings.lease_wait,
            revert_timeout=session.settings.revert_timeout,
            on_fault=self._track,
            on_revert=self._reverted,
        )
        self.pods = PodFaults(ctx)
        self.deployments = WorkloadFaults(ctx, "Deployment")
        self.statefulsets = WorkloadFaults(ctx, "StatefulSet")
        self.nodes = NodeFaults(ctx)
        self.istio = IstioFaults(ctx)
        self.network = NetworkFaults(ctx)
        self.stress = StressFaults(ctx)
        self.load = LoadFaults(ctx)
        self.random = RandomFaults(ctx)
        journal_verbs(self)  # last: every group above is journaled

    @property
    def seed(self) -> int:
        """The run's seed (``--chaos-seed`` replays the same random choices)."""
        return self._session.seed

    def _reverted(self, fault: Fault) -> None:
        if self._hook is not None:
            self._hook.pytest_chaos_fault_reverted(fault=fault, test=self._test)

    def _track(self, fault: Fault) -> None:
        if self._hook is not None:
            self._hook.pytest_chaos_fault_injected(fault=fault, test=self._test)
        self.faults.append(fault)
        self._session.stats.faults.append(fault)

    @property
    def active(self) -> list[Fault]:
        """Faults not reverted yet."""
        return [f for f in self.faults if f.active]

    def revert_all(self) -> None:
        """Revert every active fault, newest first; raise after all were attempted."""
        errors: list[Exception] = []
        for fault in reversed(self.faults):
            if not fault.active:
                continue
            try:
                fault.revert()
            except Exception as exc:
                self._session.stats.revert_failures.append(f"{fault!r}: {exc}")
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup(f"{len(errors)} chaos reverts failed", errors)


__all__ = ["Chaos", "ChaosSession", "RevertError", "SessionStats"]
