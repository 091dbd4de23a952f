"""A test's chaos timeline: what was injected, verified, observed and reverted, and when."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, ``at`` seconds after the timeline started."""

    at: float
    wall: float
    phase: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


class Timeline:
    """Events of one test, in order; optionally mirrored to a JSON-lines journal."""

    def __init__(self, test: str, *, journal: Path | None = None) -> None:
        """Start an empty timeline for test (a node id)."""
        self.test = test
        self.started = time.monotonic()
        self.events: list[Event] = []
        self.journal = journal
        self._lock = threading.Lock()

    def add(self, phase: str, text: str, **data: Any) -> Event:
        """Record an event (thread-safe: monitors add events from their own thread)."""
        event = Event(round(time.monotonic() - self.started, 3), time.time(), phase, text, data)
        with self._lock:
            self.events.append(event)
        if self.journal is not None:
            write_journal(self.journal, {"test": self.test, **asdict(event)})
        return event

    def render(self) -> str:
        """The timeline as aligned text lines, for a failure report."""
        with self._lock:
            events = list(self.events)
        return "\n".join(f"{e.at:+9.3f}s  {e.phase:<8} {e.text}" for e in events)


def write_journal(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line (a single write: lines from parallel workers never interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
