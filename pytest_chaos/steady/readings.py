"""What an object monitor records, and the arithmetic over it: readings, deviations, totals.

A reading is the judged state at one moment (taken on every change the watch reports). A
deviation is a maximal run of readings that were not ok: it starts at the first of them and ends
at the next ok reading (None while it lasts). Pure functions, so they are unit-tested alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reading:
    """The judged state of the monitored objects at one moment.

    Attributes:
        at: ``time.monotonic()`` of the reading.
        wall: ``time.time()`` at the same moment (for reports).
        ready: how many pods (or units) were ready; None when that does not apply.
        wanted: how many the hypothesis wants; None when that does not apply.
        ok: the hypothesis held.
        seen: a short text, e.g. ``"1/3 ready: web-x Terminating, web-y Pending (Unschedulable)"``.
    """

    at: float
    wall: float
    ready: int | None
    wanted: int | None
    ok: bool
    seen: str


@dataclass(frozen=True, slots=True)
class Deviation:
    """A maximal run of readings where the hypothesis did not hold.

    Attributes:
        start: ``at`` of its first reading (monotonic seconds).
        end: ``at`` of the first ok reading after it; None while it lasts.
        min_ready: the lowest ``ready`` during it (None when readings carry no count).
        seen: the text of its worst reading (the lowest ready; the first one on a tie).
        until: when it was last known to last (the monitor's stop, or the moment of asking);
            ``duration`` uses it when ``end`` is None.
    """

    start: float
    end: float | None
    min_ready: int | None
    seen: str
    until: float

    @property
    def duration(self) -> float:
        """Seconds from start to end (or to ``until`` while it lasts)."""
        return max((self.until if self.end is None else self.end) - self.start, 0.0)


def deviations(readings: Sequence[Reading], until: float) -> list[Deviation]:
    """The deviations of readings (oldest first); an open one is measured to until."""
    found: list[Deviation] = []
    run: list[Reading] = []
    for reading in [*readings, None]:
        if reading is not None and not reading.ok:
            run.append(reading)
            continue
        if run:
            counted = [r for r in run if r.ready is not None]
            worst = min(counted, key=lambda r: r.ready or 0) if counted else run[0]
            found.append(
                Deviation(
                    start=run[0].at,
                    end=None if reading is None else reading.at,
                    min_ready=worst.ready if counted else None,
                    seen=worst.seen,
                    until=max(until, run[-1].at) if reading is None else reading.at,
                )
            )
            run = []
    return found


def min_ready(readings: Sequence[Reading]) -> int | None:
    """The lowest ready count of any reading (None when none carries one)."""
    counts = [r.ready for r in readings if r.ready is not None]
    return min(counts) if counts else None


def unready_time(found: Sequence[Deviation]) -> float:
    """Seconds the hypothesis did not hold, in total."""
    return sum(d.duration for d in found)


def late(found: Sequence[Deviation], within: float) -> list[Deviation]:
    """The deviations that lasted longer than within seconds (an open one by its duration)."""
    return [d for d in found if d.duration > within]
