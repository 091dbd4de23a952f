"""Deadlines for starting the local cluster that do not count the time this machine stood still.

A virtual machine can be paused (a snapshot, an overcommitted host, a CI runner put aside) and a
process can be stopped: nothing of ours runs, yet the clock moves on. A plain deadline then
expires while the API server had no chance to start, and `cluster up` fails for nothing. A
:class:`StallWatch` notices such gaps (a thread that ticks twice a second and sees far more time
pass between two ticks), and a :class:`Deadline` moves by the time stood still since it was set.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]

TICK = 0.5
"""Seconds between two ticks of the watch."""

STALL = 5.0
"""A gap between ticks longer than this (seconds) is the machine standing still."""


class StallWatch:
    """The total time this process stood still (was not running) since the watch started."""

    def __init__(self, *, clock: Clock = time.monotonic, tick: float = TICK, stall: float = STALL):
        self._clock = clock
        self._tick = tick
        self._stall = stall
        self._lock = threading.Lock()
        self._last = clock()
        self._stalled = 0.0

    def stalled(self) -> float:
        """Seconds stood still so far, including a gap still open now (no tick since)."""
        with self._lock:
            return self._stalled + self._lost(self._clock() - self._last)

    def tick(self) -> None:
        """Note that the process runs now; a long gap since the last tick is a stall."""
        with self._lock:
            now = self._clock()
            self._stalled += self._lost(now - self._last)
            self._last = now

    def _lost(self, gap: float) -> float:
        return gap - self._tick if gap > self._stall else 0.0

    def run_in_background(self) -> None:
        """Tick from a daemon thread for as long as the process lives."""

        def loop() -> None:
            while True:
                time.sleep(self._tick)
                self.tick()

        threading.Thread(target=loop, name="pytest-chaos-stall-watch", daemon=True).start()


_WATCH: StallWatch | None = None
_WATCH_LOCK = threading.Lock()


def _forget_watch_in_child() -> None:
    # A forked child has no ticking thread: an inherited watch would count all its time as stood
    # still, and its deadlines would never expire. The child starts its own on first use.
    global _WATCH, _WATCH_LOCK
    _WATCH = None
    _WATCH_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_watch_in_child)


def machine_stalls() -> StallWatch:
    """The process-wide watch, started on first use."""
    global _WATCH
    with _WATCH_LOCK:
        if _WATCH is None:
            _WATCH = StallWatch()
            _WATCH.run_in_background()
        return _WATCH


class Deadline:
    """A time budget for a wait, extended by whatever time the machine stood still meanwhile."""

    def __init__(
        self, seconds: float, *, watch: StallWatch | None = None, clock: Clock = time.monotonic
    ) -> None:
        self.seconds = seconds
        self._watch = watch if watch is not None else machine_stalls()
        self._clock = clock
        self._started = clock()
        self._stalled_before = self._watch.stalled()

    @property
    def stalled(self) -> float:
        """Seconds stood still since this deadline was set (not counted against it)."""
        return self._watch.stalled() - self._stalled_before

    def elapsed(self) -> float:
        """Seconds of the budget used: time passed, less the time stood still."""
        return self._clock() - self._started - self.stalled

    def remaining(self) -> float:
        """Seconds left (negative once expired)."""
        return self.seconds - self.elapsed()

    def expired(self) -> bool:
        """True once the whole budget is used."""
        return self.remaining() <= 0

    def poll(self, ready: Callable[[], bool], *, every: float) -> bool:
        """Call ready every `every` seconds until it is true (True) or the budget is used (False).

        ready is called at least once, so a budget spent before the wait began still gets an
        answer; what it raises (a component that exited) ends the wait.
        """
        while not ready():
            if self.expired():
                return False
            time.sleep(every)
        return True

    def describe(self) -> str:
        """How much was waited, for an error message: "120s" or "120s (and 95s stood still)"."""
        waited = f"{self.elapsed():.0f}s"
        if self.stalled >= 1:
            waited += f" (not counting {self.stalled:.0f}s this machine stood still)"
        return waited
