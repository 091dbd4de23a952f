"""``--chaos-journal``: every activity of a run as one JSON line, as Chaos Toolkit journals do.

One line per activity: a fault verb (``type`` action, ``phase`` inject), a revert (action,
revert), a steady check or a monitor's summary (probe), any other timeline event that happened
outside an activity (event), each test's verdict (test), and the run's start and end (run).
Every line carries the run id (the same on every xdist worker) and the test's node id. See the
README's "The journal" section for the schema.

Lines are appended with one ``write`` each, so parallel workers never interleave them. The file is
truncated once, when the run starts (by the xdist controller), unless appending was asked for.
"""

from __future__ import annotations

import contextvars
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

ActivityType = Literal["action", "probe", "event", "test", "run"]
Status = Literal["succeeded", "failed", "skipped"]

#: Timeline phases whose events are probes (steady checks, monitor summaries).
PROBE_PHASES: Final = frozenset({"steady", "probe", "monitor"})
#: Keys of an event's data that give how long the step took, in seconds.
_DURATION_KEYS: Final = ("duration", "elapsed")
#: The longest ``name: text`` head of an event taken as its name.
_NAME_CHARS: Final = 60

#: The activity running in this thread of control (steps inside it join it, not the file).
_CURRENT: contextvars.ContextVar[Activity | None] = contextvars.ContextVar(
    "pytest_chaos_activity", default=None
)
#: Wall time each run started at, by run id (the controller's, for the run's last line).
_RUN_STARTED: dict[str, float] = {}


def iso(wall: float) -> str:
    """A wall-clock time as ISO 8601 UTC with milliseconds: ``2026-01-31T12:00:00.123Z``."""
    stamp = datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def line(
    *,
    run: str,
    test: str | None,
    type: ActivityType,
    name: str,
    phase: str,
    start: float,
    end: float,
    status: Status = "succeeded",
    input: Mapping[str, Any] | None = None,
    output: Mapping[str, Any] | None = None,
    error: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One journal line (the schema in one place)."""
    return {
        "run": run,
        "test": test,
        "type": type,
        "name": name,
        "phase": phase,
        "status": status,
        "input": dict(input or {}),
        "output": dict(output) if output is not None else None,
        "error": dict(error) if error is not None else None,
        "start": iso(start),
        "end": iso(end),
        "duration": round(max(end - start, 0.0), 3),
    }


def error_of(exc: BaseException) -> dict[str, str]:
    """An exception as the journal records it: its type and its message."""
    return {"type": type(exc).__name__, "message": str(exc)}


def write(path: Path, entry: Mapping[str, Any]) -> None:
    """Append one JSON line (a single write: lines from parallel workers never interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def start(path: Path, *, run: str, seed: int, append: bool) -> None:
    """The run begins (called once, by the xdist controller): truncate unless append, say so."""
    now = time.time()
    _RUN_STARTED[run] = now
    path.parent.mkdir(parents=True, exist_ok=True)
    if not append:
        path.write_bytes(b"")
    write(
        path,
        line(
            run=run,
            test=None,
            type="run",
            name="pytest-chaos",
            phase="start",
            start=now,
            end=now,
            input={"seed": seed, "append": append},
        ),
    )


def finish(
    path: Path,
    *,
    run: str,
    tests: Sequence[Mapping[str, Any]],
    outcomes: Mapping[str, int],
    totals: Mapping[str, Any],
) -> None:
    """The run ends: one ``test`` line per chaos test (its verdict), then the run's last line."""
    now = time.time()
    for test in tests:
        outcome = str(test.get("outcome", "passed"))
        message = test.get("message")
        write(
            path,
            line(
                run=run,
                test=str(test["nodeid"]),
                type="test",
                name=str(test["nodeid"]),
                phase="outcome",
                start=now,
                end=now,
                status=_test_status(outcome),
                output={"outcome": outcome},
                error={"type": outcome, "message": str(message)} if message else None,
            ),
        )
    failed = bool(totals.get("revert_failures") or totals.get("leftovers")) or any(
        kind in ("failed", "error") for kind in outcomes
    )
    write(
        path,
        line(
            run=run,
            test=None,
            type="run",
            name="pytest-chaos",
            phase="end",
            start=_RUN_STARTED.get(run, now),
            end=now,
            status="failed" if failed else "succeeded",
            output={"outcomes": dict(outcomes), **totals},
        ),
    )


def _test_status(outcome: str) -> Status:
    kind = outcome.split()[0]
    if kind == "skipped":
        return "skipped"
    return "succeeded" if kind == "passed" else "failed"


@dataclass
class Activity:
    """An activity being run: set ``output`` before it ends; steps join ``steps``."""

    type: ActivityType
    name: str
    phase: str
    input: dict[str, Any]
    started: float = field(default_factory=time.time)
    output: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    nested: bool = False


@contextmanager
def activity(
    writer: JournalWriter | None,
    type: ActivityType,
    name: str,
    *,
    phase: str,
    input: Mapping[str, Any],
) -> Iterator[Activity]:
    """Run an activity and journal it as one line when it ends, however it ends.

    Nested activities (a revert inside a failing inject) join the outer one's steps.
    A ``pytest.skip`` (a dry run) is status ``skipped`` with its message as ``output.plan``.
    """
    current = Activity(type, name, phase, dict(input), nested=_CURRENT.get() is not None)
    if current.nested:
        yield current  # its steps go to the outer activity, which is the line
        return
    token = _CURRENT.set(current)
    status: Status = "succeeded"
    error: dict[str, str] | None = None
    try:
        yield current
    except BaseException as exc:
        if _is_skip(exc):
            status = "skipped"
            current.output.setdefault("plan", str(getattr(exc, "msg", exc)))
        else:
            status, error = "failed", error_of(exc)
        raise
    finally:
        _CURRENT.reset(token)
        if writer is not None:
            output = dict(current.output)
            if current.steps:
                output["steps"] = list(current.steps)
            writer.write(
                line(
                    run=writer.run,
                    test=writer.test,
                    type=type,
                    name=name,
                    phase=phase,
                    start=current.started,
                    end=time.time(),
                    status=status,
                    input=current.input,
                    output=output,
                    error=error,
                )
            )


def _is_skip(exc: BaseException) -> bool:
    import pytest

    return isinstance(exc, pytest.skip.Exception)


@dataclass(frozen=True, slots=True)
class JournalWriter:
    """Where one test's lines go: the file, the run id and the test's node id."""

    path: Path
    run: str
    test: str

    def write(self, entry: Mapping[str, Any]) -> None:
        """Append a line."""
        write(self.path, entry)

    def event(self, wall: float, phase: str, text: str, data: Mapping[str, Any]) -> None:
        """A timeline event: a step of the running activity, else a line of its own."""
        current = _CURRENT.get()
        if current is not None:
            current.steps.append(f"{phase}: {text}")
            return
        seconds = next(
            (float(data[k]) for k in _DURATION_KEYS if isinstance(data.get(k), int | float)), 0.0
        )
        failed = data.get("ok") is False or "error" in data or text.startswith("NOT ")
        raw_error = data.get("error")
        error = (
            {"type": str(raw_error.get("type", phase)), "message": str(raw_error.get("message"))}
            if isinstance(raw_error, Mapping)
            else {"type": phase, "message": str(raw_error if raw_error is not None else text)}
        )
        self.write(
            line(
                run=self.run,
                test=self.test,
                type="probe" if phase in PROBE_PHASES else "event",
                name=_name_of(phase, text),
                phase=phase,
                start=wall - seconds,
                end=wall,
                status="failed" if failed else "succeeded",
                input={k: v for k, v in data.items() if k != "error"},
                output={"text": text},
                error=error if failed else None,
            )
        )


def _name_of(phase: str, text: str) -> str:
    """``pods.kill: kill 1 of 3...`` is named ``pods.kill``; other texts by their phase."""
    head, sep, _rest = text.partition(": ")
    return head if sep and head and len(head) <= _NAME_CHARS else phase
