"""A background monitor of an HTTP probe that keeps its schedule whatever a request does.

Request k is due at t0 + k*every and is sent then, in its own thread, even while earlier requests
are still in flight: one request stalled for 3 s does not blind the monitor for 3 s. At most
``max_in_flight`` requests are in flight at once; a slot due while that many are still waiting
for an answer sends nothing and is recorded as a failed sample of kind ``overload`` (the service
is so slow that the monitor would pile up requests without bound).

The monitor sends through an HTTP client of its own, so ``check``/``assert_ok`` on the same probe
inside its block run at once instead of waiting for a monitor's request.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.steady.http_samples import (
    Outage,
    Sample,
    availability,
    count_kinds,
    kinds_text,
    longest,
    outages_of,
    percentiles,
    recovered,
    short_seconds,
)

if TYPE_CHECKING:
    from pytest_chaos.steady.http import HttpProbe, HttpSession

log = logging.getLogger(__name__)

#: The largest default ``max_in_flight`` (``ceil(timeout / every) + 1`` up to this).
MAX_IN_FLIGHT_DEFAULT_CAP = 32


def default_max_in_flight(timeout: float, every: float) -> int:
    """Enough concurrent requests for every slot while each waits up to ``timeout``, capped."""
    return min(math.ceil(timeout / every) + 1, MAX_IN_FLIGHT_DEFAULT_CAP)


def check_max_in_flight(value: object) -> int:
    """The ``max_in_flight=`` argument, validated.

    Raises:
        ChaosConfigError: it is not an integer >= 1.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ChaosConfigError(
            f"max_in_flight={value!r} must be an integer >= 1 (how many requests a monitor may "
            "have in flight at once), or None for the default ceil(timeout/every)+1"
        )
    return value


class Monitor:
    """Samples an HttpProbe at a fixed rate in the background while its ``with`` block runs.

    Request k is sent at t0 + k*every, each in its own thread, whatever earlier requests are
    doing; when the machine itself stalled past a slot, the schedule continues from the current
    slot (no burst to catch up). Each sample records when it was ``scheduled`` and when it
    ``started``; ``samples`` are ordered by start. Leaving the block stops the schedule and waits
    for the requests in flight, each bounded by the probe timeout. A monitor is entered once;
    call ``probe.monitor()`` again for a new measurement. Its properties can be read while it
    runs (they cover the samples answered so far) and after it stopped.

    Args:
        probe: what to send and how to judge the answer.
        every: seconds between scheduled requests.
        max_in_flight: how many requests may wait for an answer at once; a slot due while that
            many are in flight is recorded as an ``overload`` failure. None:
            ``ceil(timeout / every) + 1``, at most 32.
    """

    def __init__(self, probe: HttpProbe, *, every: float, max_in_flight: int | None = None) -> None:
        self.probe = probe
        self.every = every
        self.max_in_flight = (
            default_max_in_flight(probe.timeout, every)
            if max_in_flight is None
            else check_max_in_flight(max_in_flight)
        )
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._requests: set[threading.Thread] = set()
        self._in_flight = 0
        self._peak = 0
        self._session: HttpSession | None = None
        self._failure: Exception | None = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None

    def __repr__(self) -> str:
        return f"Monitor({self.probe.method} {self.probe.url}, every {self.every:g}s): {self}"

    def __enter__(self) -> Monitor:
        if self._thread is not None:
            raise RuntimeError(
                "a Monitor can be entered only once; call probe.monitor() for a new one"
            )
        self._session = self.probe.new_session(max_connections=self.max_in_flight)
        self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._run,
            args=(self._session,),
            name=f"pytest-chaos monitor {self.probe.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # it only waits on _stop between slots
        # A request takes at most a few timeout phases (connect, write, read); be generous.
        deadline = time.monotonic() + 4 * self.probe.timeout + 1.0
        with self._lock:
            requests = list(self._requests)
        for request in requests:
            request.join(timeout=max(deadline - time.monotonic(), 0.0))
        if any(r.is_alive() for r in requests):  # pragma: no cover - a server dripping bytes
            log.debug("monitor of %s: requests are still in flight", self.probe.url)
        if self._session is not None:
            self._session.close()  # the last request in flight closes the client, if any
        self._stopped_at = time.monotonic()
        log.debug("monitor of %s stopped: %s", self.probe.url, self)
        if self._failure is not None and exc_type is None:
            raise self._failure

    # --- the schedule --------------------------------------------------------------------------

    def _run(self, session: HttpSession) -> None:
        t0 = time.monotonic()
        slot = 0
        try:
            while True:
                due = t0 + slot * self.every
                now = time.monotonic()
                if due > now and self._stop.wait(due - now):
                    return
                if self._stop.is_set():
                    return
                if self.probe.closed:
                    raise RuntimeError(f"{self.probe!r} is closed; create a new HttpProbe")
                self._send_or_skip(session, slot, due)
                # The next slot; after a stall of this thread, the slot that contains now.
                slot = max(slot + 1, math.floor((time.monotonic() - t0) / self.every))
        except Exception as exc:
            log.debug("monitor of %s failed", self.probe.url, exc_info=True)
            self._fail(exc)

    def _send_or_skip(self, session: HttpSession, slot: int, due: float) -> None:
        with self._lock:
            busy = self._in_flight
            if busy < self.max_in_flight:
                self._in_flight += 1
                self._peak = max(self._peak, self._in_flight)
        if busy >= self.max_in_flight:
            self._add(
                Sample(
                    started=time.monotonic(),
                    wall=time.time(),
                    latency=0.0,
                    ok=False,
                    error="overload",
                    detail=f"not sent: {busy} requests already in flight "
                    f"(max_in_flight={self.max_in_flight})",
                    scheduled=due,
                )
            )
            return
        request = threading.Thread(
            target=self._request,
            args=(session, due),
            name=f"pytest-chaos monitor {self.probe.url} request {slot}",
            daemon=True,
        )
        with self._lock:
            self._requests.add(request)
        try:
            request.start()
        except BaseException:
            with self._lock:
                self._requests.discard(request)
                self._in_flight -= 1
            raise

    def _request(self, session: HttpSession, due: float) -> None:
        me = threading.current_thread()
        try:
            self._add(session.send(scheduled=due))
        except Exception as exc:
            log.debug("monitor of %s: a request failed", self.probe.url, exc_info=True)
            self._fail(exc)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._requests.discard(me)

    def _add(self, sample: Sample) -> None:
        with self._lock:
            bisect.insort(self._samples, sample, key=lambda s: s.started)
            newest = self._samples[-1] is sample
            before = self._samples[-2].ok if len(self._samples) > 1 else True
        if newest and sample.ok != before:
            log.debug(
                "monitor of %s: %s",
                self.probe.url,
                "recovered" if sample.ok else f"outage started ({sample.detail})",
            )

    def _fail(self, exc: Exception) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc
        self._stop.set()

    # --- results -------------------------------------------------------------------------------

    @property
    def samples(self) -> list[Sample]:
        """A copy of the samples answered so far, ordered by request start."""
        with self._lock:
            return list(self._samples)

    @property
    def peak_in_flight(self) -> int:
        """The most requests that were in flight at once."""
        with self._lock:
            return self._peak

    @property
    def availability(self) -> float:
        """The fraction of ok samples (1.0 when there is no sample)."""
        return availability(self.samples)

    @property
    def error_count(self) -> int:
        """How many samples failed."""
        return sum(not s.ok for s in self.samples)

    @property
    def errors(self) -> dict[str, int]:
        """Failed samples by error kind (only the kinds that occurred)."""
        return count_kinds(self.samples)

    @property
    def latency_percentiles(self) -> dict[str, float]:
        """``p50``, ``p95`` and ``p99`` of the sent requests' latencies in seconds; {} without.

        Nearest-rank percentiles: each is a latency that was observed. ``overload`` samples sent
        nothing and are left out.
        """
        return percentiles(self.samples)

    @property
    def outages(self) -> list[Outage]:
        """The maximal runs of consecutive failed samples, oldest first."""
        return outages_of(self.samples)

    @property
    def longest_outage(self) -> float:
        """The longest outage in seconds (0.0 when there was none)."""
        return longest(self.outages)

    @property
    def time_to_recover(self) -> float | None:
        """Seconds from the start of the first outage to the end of the last one.

        None when there was no outage. When the last outage had not ended, it is measured to the
        moment the monitor stopped (or to now while it runs) and ``recovered`` is False.
        """
        return self._time_to_recover(self.outages)

    def _time_to_recover(self, outages: list[Outage]) -> float | None:
        if not outages:
            return None
        end = outages[-1].end
        if end is None:
            end = self._stopped_at if self._stopped_at is not None else time.monotonic()
            end = max(end, outages[-1].failed_until or end)
        return end - outages[0].start

    @property
    def recovered(self) -> bool:
        """True when the last sample was ok (or no sample failed)."""
        return recovered(self.samples)

    def summary(self) -> dict[str, object]:
        """The results as a JSON-able dict (seconds, fractions and counts).

        Keys: url, every, max_in_flight, peak_in_flight, duration (seconds monitored), samples
        (their number), availability, error_count, errors, latency_percentiles, outages (their
        number), outage_windows (start and end as offsets from the first sample, duration,
        samples, kinds), longest_outage, time_to_recover, recovered.
        """
        samples = self.samples
        outages = outages_of(samples)
        origin = samples[0].started if samples else 0.0
        stopped = self._stopped_at if self._stopped_at is not None else time.monotonic()
        started = self._started_at if self._started_at is not None else stopped
        return {
            "url": self.probe.url,
            "every": self.every,
            "max_in_flight": self.max_in_flight,
            "peak_in_flight": self.peak_in_flight,
            "duration": stopped - started,
            "samples": len(samples),
            "availability": availability(samples),
            "error_count": sum(not s.ok for s in samples),
            "errors": count_kinds(samples),
            "latency_percentiles": percentiles(samples),
            "outages": len(outages),
            "outage_windows": [
                {
                    "start": o.start - origin,
                    "end": None if o.end is None else o.end - origin,
                    "duration": o.duration,
                    "samples": o.samples,
                    "kinds": dict(o.kinds),
                }
                for o in outages
            ],
            "longest_outage": longest(outages),
            "time_to_recover": self._time_to_recover(outages),
            "recovered": recovered(samples),
        }

    def __str__(self) -> str:
        samples = self.samples
        if not samples:
            return "no samples"
        failed = sum(not s.ok for s in samples)
        kinds = kinds_text(count_kinds(samples))
        text = f"availability {availability(samples) * 100:.1f}% "
        text += f"({failed} of {len(samples)} failed" + (f": {kinds})" if kinds else ")")
        figures = " ".join(f"{k} {v * 1000:.0f}ms" for k, v in percentiles(samples).items())
        text += f", {figures}" if figures else ""
        outages = outages_of(samples)
        if not outages:
            return text + ", no outage"
        text += f", longest outage {short_seconds(longest(outages))}"
        ttr = short_seconds(self._time_to_recover(outages) or 0.0)
        if recovered(samples):
            return text + f", recovered after {ttr}"
        return text + f", not recovered after {ttr}"
