"""A test's chaos timeline: what was injected, verified, observed and reverted, and when."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_chaos.report import journal as journal_lines
from pytest_chaos.report.journal import Activity, ActivityType, JournalWriter


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, ``at`` seconds after the timeline started."""

    at: float
    wall: float
    phase: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


def _type_name(exc: BaseException) -> str:
    # Timeline.activity's parameter ``type`` (the schema's word) hides the builtin there.
    return type(exc).__name__


class Timeline:
    """Events of one test, in order; optionally mirrored to a JSON-lines journal."""

    def __init__(self, test: str, *, journal: Path | None = None, run: str = "") -> None:
        """Start an empty timeline for test (a node id); journal lines carry the run id."""
        self.test = test
        self.started = time.monotonic()
        self.events: list[Event] = []
        self.journal = journal
        self._writer = JournalWriter(journal, run, test) if journal is not None else None
        self._lock = threading.Lock()

    def add(self, phase: str, text: str, **data: Any) -> Event:
        """Record an event (thread-safe: monitors add events from their own thread)."""
        event = Event(round(time.monotonic() - self.started, 3), time.time(), phase, text, data)
        with self._lock:
            self.events.append(event)
        if self._writer is not None:
            self._writer.event(event.wall, phase, text, data)
        return event

    @contextmanager
    def activity(
        self,
        type: ActivityType,
        name: str,
        *,
        phase: str,
        input: Mapping[str, Any],
    ) -> Iterator[Activity]:
        """An activity (a fault verb, a revert, a probe): one journal line when it ends.

        The events added meanwhile (in this thread) are its steps in the journal; they stay
        events of the timeline as well. A fault that fails to inject is an ``error`` event.
        """
        with journal_lines.activity(self._writer, type, name, phase=phase, input=input) as current:
            try:
                yield current
            except Exception as exc:
                if phase == "inject" and not current.nested:
                    first = str(exc).strip().split("\n", 1)[0]
                    self.add("error", f"{name} failed: {_type_name(exc)}: {first}")
                raise

    def render(self) -> str:
        """The timeline as aligned text lines, for a failure report."""
        with self._lock:
            events = list(self.events)
        return "\n".join(f"{e.at:+9.3f}s  {e.phase:<8} {e.text}" for e in events)
