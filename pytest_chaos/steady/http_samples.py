"""HTTP samples and what a run of them says: availability, latency percentiles, outages.

Pure functions over ``Sample`` lists, shared by ``HttpProbe.assert_ok``'s diagnosis and the
``Monitor``'s reports. Every function takes the samples ordered by request start.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

ErrorKind = Literal["timeout", "connect", "status", "body", "other", "overload"]

#: The error kinds, in the order reports list them. ``overload``: a monitor's slot whose request
#: was not sent because ``max_in_flight`` requests were already in flight.
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)


@dataclass(frozen=True, slots=True)
class Sample:
    """The outcome of one request.

    Attributes:
        started: ``time.monotonic()`` when the request was sent.
        wall: ``time.time()`` at the same moment (for reports).
        latency: seconds until the response was read (or the error happened); 0.0 for an
            ``overload`` sample, which sent nothing.
        ok: the response had an expected status and body.
        status: the HTTP status, None when no response came.
        error: what went wrong, None when ok.
        detail: a short explanation, e.g. ``"503 Service Unavailable"``.
        scheduled: when a monitor's schedule wanted the request sent (``time.monotonic()``);
            ``started - scheduled`` is how late it went. None outside a monitor.
    """

    started: float
    wall: float
    latency: float
    ok: bool
    status: int | None = None
    error: ErrorKind | None = None
    detail: str = ""
    scheduled: float | None = None


@dataclass(frozen=True, slots=True)
class Outage:
    """A maximal run of consecutive failed samples.

    Attributes:
        start: ``started`` of its first failed sample (monotonic seconds).
        end: ``started`` of the first ok sample after it; None when it had not ended.
        samples: how many failed samples it spans.
        kinds: failed samples by error kind.
        failed_until: ``started + latency`` of its last failed sample (used by ``duration``
            when ``end`` is None).
    """

    start: float
    end: float | None
    samples: int
    kinds: dict[str, int]
    failed_until: float | None = None

    @property
    def duration(self) -> float:
        """Seconds from start to end, or to the last failed sample's completion when not ended."""
        if self.end is not None:
            return self.end - self.start
        return max((self.failed_until or self.start) - self.start, 0.0)


def count_kinds(samples: Iterable[Sample]) -> dict[str, int]:
    """Failed samples by error kind, in ``ERROR_KINDS`` order (only the kinds that occurred)."""
    counts = Counter(s.error or "other" for s in samples if not s.ok)
    return {kind: counts[kind] for kind in ERROR_KINDS if counts[kind]}


def kinds_text(kinds: Mapping[str, int]) -> str:
    """``"timeout 2, status 3"``."""
    return ", ".join(f"{kind} {n}" for kind, n in kinds.items())


def sample_text(sample: Sample, origin: float) -> str:
    """One sample on one line, its start as an offset from origin."""
    head = f"+{sample.started - origin:.2f}s "
    took = f"in {sample.latency * 1000:.0f}ms"
    if sample.ok:
        return f"{head}ok {sample.status} {took}"
    if sample.error == "overload":
        return f"{head}overload: {sample.detail}"
    return f"{head}{sample.error} {took}: {sample.detail}"


def availability(samples: list[Sample]) -> float:
    """The fraction of ok samples (1.0 when there is none)."""
    return sum(s.ok for s in samples) / len(samples) if samples else 1.0


def percentiles(samples: list[Sample]) -> dict[str, float]:
    """Nearest-rank p50/p95/p99 latencies of the samples that sent a request; {} without one."""
    latencies = sorted(s.latency for s in samples if s.error != "overload")
    if not latencies:
        return {}
    return {f"p{p}": _nearest_rank(latencies, p) for p in (50, 95, 99)}


def recovered(samples: list[Sample]) -> bool:
    """True when the last sample was ok (or there is none)."""
    return not samples or samples[-1].ok


def longest(outages: list[Outage]) -> float:
    """The longest outage's duration (0.0 without one)."""
    return max((o.duration for o in outages), default=0.0)


def outages_of(samples: list[Sample]) -> list[Outage]:
    """The maximal runs of consecutive failed samples, oldest first."""
    outages: list[Outage] = []
    run: list[Sample] = []
    for sample in [*samples, None]:
        if sample is not None and not sample.ok:
            run.append(sample)
            continue
        if run:
            outages.append(
                Outage(
                    start=run[0].started,
                    end=None if sample is None else sample.started,
                    samples=len(run),
                    kinds=count_kinds(run),
                    failed_until=max(s.started + s.latency for s in run),
                )
            )
            run = []
    return outages


def short_seconds(seconds: float) -> str:
    """``"40ms"`` below 0.1 s, else ``"1.5s"``."""
    return f"{seconds * 1000:.0f}ms" if seconds < 0.1 else f"{seconds:.1f}s"


def plural(n: int, word: str) -> str:
    """``"1 attempt"``, ``"3 attempts"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def shorten(text: str, limit: int) -> str:
    """The text on one line, cut to limit characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def next_slot(start: float, every: float, slot: int, now: float) -> tuple[int, float]:
    """The next slot of a fixed-rate schedule and when it begins.

    When the previous slot overran, the next one begins at once and the schedule continues from
    the slot that contains ``now``, so missed slots are not made up in a burst.
    """
    if every <= 0:
        return slot + 1, now
    slot += 1
    wake = start + slot * every
    if wake <= now:
        slot = math.floor((now - start) / every)
        wake = now
    return slot, wake


def _nearest_rank(ordered: list[float], percentile: int) -> float:
    rank = max(math.ceil(percentile / 100 * len(ordered)), 1)
    return ordered[rank - 1]
