"""Random chaos, the running part: ``chaos.random.pods`` and the engine behind it.

A :class:`Monkey` kills on its :class:`~pytest_chaos.faults.monkey_plan.Schedule` from a thread
of its own, until the schedule is over or it is stopped. Every kill is recorded (ledger) before
the pod is deleted, and noted with its time, pod and node. There is nothing to undo: stopping
the schedule is the fault's revert, so a ``with`` block, the marker's ``finally`` and the
fixture's teardown all end it, on failure too.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pytest_chaos.durations import Duration
from pytest_chaos.errors import RevertError
from pytest_chaos.faults import Fault, FaultContext
from pytest_chaos.faults.monkey_plan import (
    Pod,
    Schedule,
    check_random_pods,
    eligible,
    in_flight,
    in_scope,
    name_of,
    victims,
)
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import UndoRecord


@dataclass(frozen=True, slots=True)
class Kill:
    """One kill: when (wall clock and seconds after the start), which pod, on which node."""

    tick: int
    at: float
    wall: float
    pod: str
    node: str

    def __str__(self) -> str:
        """``+4.0s shop/web-1 on node-2``."""
        return f"+{self.at:.1f}s {self.pod} on {self.node or '(unscheduled)'}"


class Monkey:
    """Kill random pods of one namespace on a seeded schedule (one thread; stop() ends it)."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        schedule: Schedule,
        rng: random.Random,
        *,
        before_kill: Callable[[Pod], None] = lambda _pod: None,
        say: Callable[[str, dict[str, Any]], None] = lambda _text, _data: None,
        dry_run: bool = False,
    ) -> None:
        """Kill in namespace on schedule; before_kill records each kill before it is made."""
        self.kube = kube
        self.namespace = namespace
        self.schedule = schedule
        self.rng = rng
        self.kills: list[Kill] = []
        self.skipped: list[str] = []
        self.errors: list[str] = []
        self._before_kill = before_kill
        self._say = say
        self._dry_run = dry_run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def run(self, on_done: Callable[[], None] = lambda: None) -> None:
        """Run the schedule in this thread until it is over or stop() is called; then on_done."""
        try:
            self._run()
        finally:
            on_done()

    def _run(self) -> None:
        self._started = time.monotonic()
        for tick in range(self.schedule.ticks):
            wait = self.schedule.due(tick) - (time.monotonic() - self._started)
            if self._stop.wait(max(0.0, wait)):
                return
            try:
                self._tick(tick)
            except Exception as exc:  # the API refused: note it, the next tick tries again
                self.errors.append(f"tick {tick}: {type(exc).__name__}: {exc}")
                self._say(f"tick {tick} failed: {type(exc).__name__}: {exc}", {})

    def start(self, on_done: Callable[[], None] = lambda: None) -> None:
        """Run the schedule in a daemon thread (on_done is called in it when it ends)."""
        self._thread = threading.Thread(
            target=self.run, args=(on_done,), name="pytest-chaos-monkey", daemon=True
        )
        self._thread.start()

    def stop(self, *, timeout: float = 60.0) -> bool:
        """End the schedule (a kill under way completes); False if the thread did not end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the schedule is over (True) or timeout passes (False)."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """Whether the schedule still runs."""
        return self._thread is not None and self._thread.is_alive()

    def summary(self) -> str:
        """Every kill, in order, for the timeline and the report."""
        kills = "; ".join(str(k) for k in self.kills) or "none"
        extra = f", {len(self.skipped)} tick(s) skipped" if self.skipped else ""
        failed = f", {len(self.errors)} tick(s) failed" if self.errors else ""
        return f"{len(self.kills)} kill(s){extra}{failed}: {kills}"

    def _tick(self, tick: int) -> None:
        listing = self.kube.list_raw(self.kube.core.list_namespaced_pod, self.namespace)
        pods = listing.get("items", [])
        busy = in_flight(in_scope(pods, self.schedule))
        if busy >= self.schedule.max_in_flight:
            limit = self.schedule.max_in_flight
            self._skip(tick, f"{busy} pod(s) still going or not Ready (max_in_flight={limit})")
            return
        chosen = victims(eligible(pods, self.schedule, self.rng), self.schedule, self.rng)
        if not chosen:
            self._skip(tick, f"no eligible pod in {self.namespace}")
            return
        for pod in chosen:
            kill = Kill(
                tick=tick,
                at=round(time.monotonic() - self._started, 3),
                wall=time.time(),
                pod=name_of(pod),
                node=str((pod.get("spec") or {}).get("nodeName") or ""),
            )
            if self._dry_run:
                self._say(f"would kill {kill}", asdict(kill))
                self.kills.append(kill)
                continue
            self._before_kill(pod)
            self._delete(pod)
            self.kills.append(kill)
            self._say(f"killed {kill}", asdict(kill))

    def _skip(self, tick: int, why: str) -> None:
        self.skipped.append(f"tick {tick}: {why}")
        self._say(f"tick {tick} skipped: {why}", {"tick": tick})

    def _delete(self, pod: Pod) -> None:
        meta = pod["metadata"]
        delete = self.kube.core.delete_namespaced_pod
        self.kube.delete(delete, meta["name"], meta["namespace"], uid=meta.get("uid"))


class RandomPodsFault(Fault):
    """``chaos.random.pods``'s handle: ``.kills``, ``.wait()``; revert() stops the schedule."""

    def __init__(self, ctx: FaultContext, monkey: Monkey, plan: str) -> None:
        """Wrap a started monkey (use ``chaos.random.pods``)."""
        super().__init__(
            ctx, "random.pods", (monkey.namespace,), [], details={"schedule": plan, "kills": []}
        )
        self.monkey = monkey

    def __enter__(self) -> RandomPodsFault:
        """Use as ``with chaos.random.pods(...) as monkey:``; the schedule stops on exit."""
        return self

    @property
    def kills(self) -> list[Kill]:
        """The kills so far, in order."""
        return list(self.monkey.kills)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the schedule is over (True), or timeout passes (False)."""
        return self.monkey.wait(timeout)

    def revert(self) -> None:
        """Stop the schedule, note every kill, close the kills' records (nothing to undo)."""
        if not self.active:
            return
        if not self.monkey.stop(timeout=self._ctx.revert_timeout):
            raise RevertError("random.pods: the schedule's thread did not stop")
        self.details["kills"] = [asdict(k) for k in self.monkey.kills]
        self._ctx.timeline.add(
            "revert",
            f"random.pods: schedule stopped after {self.monkey.summary()}",
            kills=self.details["kills"],
        )
        super().revert()


class RandomFaults:
    """``chaos.random``: faults on random targets, on a seeded schedule."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context (the chaos fixture does this)."""
        self._ctx = ctx

    def pods(
        self,
        *,
        namespace: str,
        every: Duration,
        for_: Duration,
        selector: str | None = None,
        exclude: str | None = None,
        max_in_flight: int = 1,
        kube_monkey: bool = False,
    ) -> RandomPodsFault:
        """Kill a random pod of namespace every ``every`` for ``for_``, in the background.

        Args:
            namespace: whose pods (any pod of it when no selector).
            every: time between kills (``"30s"``); the first is due at once.
            for_: how long the schedule runs (``"10m"``); it stops earlier when the handle is
                reverted: at the end of its ``with`` block or of the test, failed or not.
            selector: only pods matching this label selector.
            exclude: never pods matching this label selector (e.g. ``"role=db"``).
            max_in_flight: a tick skips while this many pods are still going or not Ready.
            kube_monkey: honour kube-monkey's labels (``kube-monkey/enabled``, ``/mtbf``,
                ``/kill-mode``, ``/kill-value``, ``/identifier``).
        """
        ctx = self._ctx
        schedule = check_random_pods(
            namespace=namespace,
            every=every,
            for_=for_,
            selector=selector,
            exclude=exclude,
            max_in_flight=max_in_flight,
            kube_monkey=kube_monkey,
        )
        ctx.safety.check_namespace(namespace)
        plan = schedule.describe(namespace, selector)
        ctx.plan("random.pods", plan)
        # Its own seeded stream, drawn from the test's: the background thread never shares the
        # test's rng, and the same seed gives the same victims in the same order.
        rng = random.Random(ctx.rng.getrandbits(64))  # noqa: S311 - not for security
        records: list[UndoRecord] = []

        def record(pod: Pod) -> None:
            meta = pod["metadata"]
            records.append(
                ctx.record(
                    "random.pods",
                    kind="Pod",
                    namespace=meta["namespace"],
                    name=meta["name"],
                    uid=None,  # no lease: a pod's kill has nothing to hold or undo
                    undo="none",
                    in_cluster=False,
                )
            )

        def note(text: str, data: dict[str, Any]) -> None:
            ctx.timeline.add("inject", f"random.pods: {text}", **data)

        monkey = Monkey(
            ctx.kube,
            namespace,
            schedule,
            rng,
            before_kill=record,
            say=lambda text, data: note(text, data),
        )
        fault = RandomPodsFault(ctx, monkey, plan)
        fault.records = records
        ctx.timeline.add("inject", f"random.pods: {plan}")
        ctx.done(fault)
        monkey.start()
        return fault
