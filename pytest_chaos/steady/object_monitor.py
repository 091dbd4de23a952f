"""A hypothesis about Kubernetes objects, recorded over time from watches: ``ObjectMonitor``.

``with steady.deployment("web", namespace="shop").monitor() as web:`` lists the objects the
hypothesis reads (the workload and its pods, say) and records the first reading before the block
starts; daemon threads then watch them, and every change the API reports is judged again and
recorded when the judgement changed. No polling: a dip that lasts one event is seen. Leaving the
block stops the watches (their streams are shut, so at once) and records the stop time. The
readings give the deviations (maximal runs where the hypothesis did not hold), the lowest ready
count and the time not ok; ``assert_*`` turn them into verdicts with when, how long and what was
seen. Point checks of the object probes use the same machinery with a deadline (``wait_for``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import NotSteadyError
from pytest_chaos.kube.watch_thread import Watcher
from pytest_chaos.steady.counting import Count
from pytest_chaos.steady.readings import (
    Deviation,
    Reading,
    deviations,
    late,
    min_ready,
    unready_time,
)

if TYPE_CHECKING:
    from pytest_chaos.report.timeline import Timeline

log = logging.getLogger(__name__)

#: One watched list: the client's list call and its keyword arguments (selectors).
Source = tuple[Callable[..., Any], dict[str, Any]]
#: Judges the current objects of every source (in order) into a Count.
Judge = Callable[[list[list[dict[str, Any]]]], Count]

_JOIN = 5.0
_CATCH_UP = 5.0


class ObjectMonitor:
    """Records whether a hypothesis about objects holds, on every change, while its block runs.

    Args:
        what: the objects, e.g. ``"Deployment shop/backend"``.
        hypothesis: what must hold, in words, e.g. ``"all 3 replicas ready"``.
        sources: the lists to watch.
        judge: turns the current objects of every source into a Count.
        timeline: when given, a ``probe`` event marks each deviation's start and end.
        diagnosis: extra lines for a failure message (pods now, recent events).
        settle: catch up with the API when the block ends (see :meth:`catch_up`).
    """

    def __init__(
        self,
        what: str,
        hypothesis: str,
        sources: Sequence[Source],
        judge: Judge,
        *,
        timeline: Timeline | None = None,
        diagnosis: Callable[[], str] | None = None,
        settle: bool = True,
    ) -> None:
        self.what = what
        self._settle = settle
        self.hypothesis = hypothesis
        self._sources = list(sources)
        self._judge = judge
        self._timeline = timeline
        self._diagnosis = diagnosis
        self._cond = threading.Condition()
        self._readings: list[Reading] = []
        self._watchers: list[Watcher] = []
        self._live = False
        self._entered = False
        self._started_at: float | None = None
        self._stopped_at: float | None = None

    def __repr__(self) -> str:
        return f"ObjectMonitor({self.what}: {self.hypothesis}): {self}"

    # --- lifetime ------------------------------------------------------------------------------

    def __enter__(self) -> ObjectMonitor:
        if self._entered:
            raise RuntimeError(
                "an ObjectMonitor can be entered only once; call .monitor() for a new one"
            )
        self._entered = True
        self._started_at = time.monotonic()
        self._watchers = [
            Watcher(fn, what=f"{self.what} ({i})", on_change=self._changed, **kwargs)
            for i, (fn, kwargs) in enumerate(self._sources)
        ]
        try:
            for watcher in self._watchers:
                watcher.start()
            with self._cond:
                self._live = True
            self._changed()  # the first reading, from the lists
        except BaseException:
            self._stop_watchers()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None and self._settle:
            self.catch_up()  # the record covers what the API said up to the block's end
        self._stop_watchers()
        log.debug("monitor of %s stopped: %s", self.what, self)
        failure = self.failure
        if failure is not None and exc_type is None:
            raise failure

    def _stop_watchers(self) -> None:
        with self._cond:
            self._live = False
        for watcher in self._watchers:
            watcher.stop(_JOIN)
        with self._cond:
            self._stopped_at = time.monotonic()
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        """True between the start of the block and its end."""
        return self._live

    @property
    def failure(self) -> BaseException | None:
        """The error that ended a watch (not a transient API error), if one did."""
        return next((w.failure for w in self._watchers if w.failure is not None), None)

    def _changed(self) -> None:
        with self._cond:
            if not self._live:
                return
            count = self._judge([w.objects for w in self._watchers])
            last = self._readings[-1] if self._readings else None
            if last is None or (last.ready, last.wanted, last.ok, last.seen) != (
                count.ready,
                count.wanted,
                count.ok,
                count.seen,
            ):
                reading = Reading(
                    time.monotonic(), time.time(), count.ready, count.wanted, count.ok, count.seen
                )
                self._readings.append(reading)
                if (last.ok if last is not None else True) != reading.ok:
                    self._mark(reading)
            self._cond.notify_all()

    def _mark(self, reading: Reading) -> None:
        log.debug("monitor of %s: %s", self.what, reading.seen)
        if self._timeline is None:
            return
        if reading.ok:
            self._timeline.add("probe", f"{self.what}: {self.hypothesis} holds again")
        else:
            self._timeline.add(
                "probe",
                f"{self.what} deviated: {self.hypothesis} does not hold ({reading.seen})",
                ready=reading.ready,
                wanted=reading.wanted,
            )

    def catch_up(self, within: float = _CATCH_UP) -> bool:
        """Wait (by watch) until the readings reflect the API's state now; False at within.

        A watch delivers events a moment after they happen: right after a fault returns, the
        monitor may not have seen its effect yet. This lists each source once and waits until
        its watch has delivered at least that state.
        """
        if not self._live:
            return False
        try:
            fresh = [w.fresh() for w in self._watchers]
        except Exception:  # an API hiccup: the watch's own view is all there is
            log.debug("monitor of %s: could not list to catch up", self.what, exc_info=True)
            return False
        deadline = time.monotonic() + within
        with self._cond:
            while not all(w.caught_up(f) for w, f in zip(self._watchers, fresh, strict=True)):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._live or self.failure is not None:
                    return False
                self._cond.wait(remaining)
        return True

    def wait_for(self, predicate: Callable[[Reading], bool], within: float) -> Reading | None:
        """Block until the latest reading satisfies predicate (by watch); it, or None at within.

        Returns at once when the monitor is not running (checking the last reading only).
        """
        deadline = time.monotonic() + within
        with self._cond:
            while True:
                last = self._readings[-1] if self._readings else None
                if last is not None and predicate(last):
                    return last
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._live or self.failure is not None:
                    return None
                self._cond.wait(remaining)

    # --- results -------------------------------------------------------------------------------

    @property
    def readings(self) -> list[Reading]:
        """A copy of the readings so far, oldest first."""
        with self._cond:
            return list(self._readings)

    def _until(self) -> float:
        return self._stopped_at if self._stopped_at is not None else time.monotonic()

    @property
    def intervals(self) -> list[Deviation]:
        """The deviations: maximal runs of readings where the hypothesis did not hold."""
        return deviations(self.readings, self._until())

    @property
    def min_ready(self) -> int | None:
        """The lowest ready count any reading saw (None when the readings carry none)."""
        return min_ready(self.readings)

    @property
    def unready_time(self) -> float:
        """Seconds the hypothesis did not hold, in total."""
        return unready_time(self.intervals)

    @property
    def recovered(self) -> bool:
        """True when the last reading held (or there is none)."""
        readings = self.readings
        return not readings or readings[-1].ok

    @property
    def duration(self) -> float:
        """Seconds monitored so far (to the stop, once stopped)."""
        return self._until() - (self._started_at if self._started_at is not None else 0.0)

    # --- verdicts ------------------------------------------------------------------------------

    def assert_never_below(self, n: int) -> None:
        """No reading saw fewer than n ready."""
        readings = self.readings
        low = [r for r in readings if r.ready is not None and r.ready < n]
        expected = f"never fewer than {n} ready"
        if low:
            worst = min(low, key=lambda r: r.ready or 0)
            below = [d for d in self.intervals if d.min_ready is not None and d.min_ready < n]
            self._fail(
                expected,
                f"{worst.ready} ready at {self._offset(worst.at)} ({worst.seen})",
                below,
            )
        self._steady_event(expected, held=True)

    def assert_steady(self) -> None:
        """The hypothesis held at every reading: no deviation at all."""
        found = self.intervals
        if found:
            self._fail(f"{self.hypothesis} throughout", f"{len(found)} deviation(s)", found)
        self._steady_event(f"{self.hypothesis} throughout", held=True)

    def assert_recovered(self, *, within: Duration) -> None:
        """Every deviation ended within ``within`` of its start, and the hypothesis holds now.

        While the monitor runs and the hypothesis does not hold, wait (by watch) until the
        current deviation is ``within`` old.
        """
        limit = as_seconds(within, name="within")
        self.catch_up()  # a fault that just returned is seen before the verdict
        found = self.intervals
        if found and found[-1].end is None and self.running:
            remaining = found[-1].start + limit - time.monotonic()
            self.wait_for(lambda r: r.ok, max(remaining, 0.0))
            found = self.intervals
        expected = f"{self.hypothesis} again within {limit:g}s of every deviation"
        slow = late(found, limit)
        if slow or not self.recovered:
            seen = (
                f"{len(slow)} deviation(s) lasted longer"
                if slow
                else "the last deviation had not ended"
            )
            self._fail(expected, seen, slow or found[-1:])
        self._steady_event(expected, held=True)

    def _fail(self, expected: str, seen: str, found: Sequence[Deviation]) -> None:
        self._steady_event(expected, held=False)
        lines = [
            f"{self.what}: expected {expected}",
            f"seen: {seen}",
        ]
        if found:
            lines.append("deviations:\n" + "\n".join(f"  {self._deviation(d)}" for d in found))
        lines.append(f"monitor: {self}")
        if self._diagnosis is not None:
            try:
                lines.append(self._diagnosis())
            except Exception as exc:  # a diagnosis never hides the verdict
                lines.append(f"(diagnosis unavailable: {exc})")
        raise NotSteadyError("\n".join(lines))

    def _steady_event(self, expected: str, *, held: bool) -> None:
        if self._timeline is not None:
            outcome = "held" if held else "NOT held"
            self._timeline.add(
                "steady", f"{self.what}: {expected}: {outcome} (monitored {self.duration:.1f}s)"
            )

    def _offset(self, at: float) -> str:
        origin = self._started_at if self._started_at is not None else at
        return f"+{at - origin:.2f}s"

    def _deviation(self, d: Deviation) -> str:
        end = "still deviated" if d.end is None else f"to {self._offset(d.end)}"
        low = "" if d.min_ready is None else f", min {d.min_ready} ready"
        return f"from {self._offset(d.start)} {end} ({d.duration:.2f}s{low}): {d.seen}"

    def summary(self) -> dict[str, object]:
        """The record as a JSON-able dict.

        Keys: what, hypothesis, duration, readings (their number), min_ready, unready_time,
        deviations (start/end as offsets from the start, duration, min_ready, seen), recovered,
        last_seen.
        """
        readings = self.readings
        found = deviations(readings, self._until())
        origin = self._started_at if self._started_at is not None else 0.0
        return {
            "what": self.what,
            "hypothesis": self.hypothesis,
            "duration": self.duration,
            "readings": len(readings),
            "min_ready": min_ready(readings),
            "unready_time": unready_time(found),
            "deviations": [
                {
                    "start": d.start - origin,
                    "end": None if d.end is None else d.end - origin,
                    "duration": d.duration,
                    "min_ready": d.min_ready,
                    "seen": d.seen,
                }
                for d in found
            ],
            "recovered": not readings or readings[-1].ok,
            "last_seen": readings[-1].seen if readings else None,
        }

    def __str__(self) -> str:
        readings = self.readings
        if not readings:
            return "no readings"
        found = deviations(readings, self._until())
        low = min_ready(readings)
        text = f"{len(readings)} reading(s) over {self.duration:.1f}s"
        if low is not None:
            text += f", min {low} ready"
        if not found:
            return text + ", no deviation"
        text += f", {len(found)} deviation(s) for {unready_time(found):.1f}s"
        if readings[-1].ok:
            return text + ", recovered"
        return text + f", not recovered ({readings[-1].seen})"
