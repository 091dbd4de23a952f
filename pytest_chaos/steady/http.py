"""HTTP steady-state checks: a probe, its retrying assertion, and a background monitor.

``HttpProbe`` sends one request and turns the outcome into a ``Sample`` (it never raises for an
HTTP or network error); ``assert_ok`` retries until the endpoint is healthy or raises
``NotSteadyError`` with a diagnosis; ``monitor()`` samples the endpoint at a fixed rate in a
background thread while a fault is injected, then reports availability, latency percentiles and
outages. An outage starts at the request start of its first failed sample and ends at the request
start of the first successful one, so both are within one sampling interval of the truth.

Every request opens a new connection (no keep-alive), so each sample sees what a new client sees:
Service routing to a live endpoint, refused connections, TLS handshakes.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, TypeAlias, get_args

import httpx

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import ChaosConfigError, NotSteadyError

log = logging.getLogger(__name__)

ErrorKind = Literal["timeout", "connect", "status", "body", "other"]
BodyCheck: TypeAlias = str | re.Pattern[str] | Callable[[str], bool]

#: The error kinds, in the order reports list them.
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)

_DETAIL_LIMIT = 200
_SNIPPET_LIMIT = 60
_LAST_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class Sample:
    """The outcome of one request.

    Attributes:
        started: ``time.monotonic()`` when the request was sent.
        wall: ``time.time()`` at the same moment (for reports).
        latency: seconds until the response was read (or the error happened).
        ok: the response had an expected status and body.
        status: the HTTP status, None when no response came.
        error: what went wrong, None when ok.
        detail: a short explanation, e.g. ``"503 Service Unavailable"``.
    """

    started: float
    wall: float
    latency: float
    ok: bool
    status: int | None = None
    error: ErrorKind | None = None
    detail: str = ""


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


class HttpProbe:
    """One HTTP endpoint and what a healthy answer from it looks like.

    Args:
        url: an ``http://`` or ``https://`` URL.
        expect: the healthy status: one code, a collection of codes, or a range
            (``range(200, 300)``). Redirects are not followed, so a 3xx is a status like another.
        body: when given, the response text must contain this string, match this compiled
            regex (``search``), or make this callable return True.
        method: the HTTP method.
        headers: extra request headers.
        timeout: per-request timeout (connect, read, write and pool phases each).
        transport: an httpx transport to use instead of the default one (e.g. custom TLS).

    Raises:
        ChaosConfigError: an argument is invalid; the message names it.
    """

    def __init__(
        self,
        url: str,
        *,
        expect: int | Collection[int] | range = 200,
        body: str | re.Pattern[str] | Callable[[str], bool] | None = None,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        timeout: Duration = 2.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = _check_url(url)
        self._expected_statuses, self._expect_text = _check_expect(expect)
        self._body = _check_body(body)
        self.method = _check_method(method)
        if headers is not None and not isinstance(headers, Mapping):
            raise ChaosConfigError(
                f"headers={headers!r} is not a mapping; use a dict of header names to values"
            )
        self.timeout = as_seconds(timeout, name="timeout")
        if self.timeout <= 0:
            raise ChaosConfigError(f"timeout={timeout!r} must be positive (e.g. 2 or '500ms')")
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise ChaosConfigError(
                f"transport={transport!r} is not an httpx.BaseTransport (e.g. httpx.HTTPTransport)"
            )
        self._closed = threading.Event()
        # Held during a request and by close(): closing the client under an in-flight request
        # (a monitor's thread) would orphan that request's socket.
        self._in_use = threading.Lock()
        self._client = httpx.Client(
            headers=dict(headers or {}),
            timeout=self.timeout,
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def __repr__(self) -> str:
        return f"HttpProbe({self.method} {self.url}, expect {self.expectation})"

    @property
    def expectation(self) -> str:
        """What a healthy answer is, in words: ``"status 200 and a body containing 'ok'"``."""
        text = f"status {self._expect_text}"
        if self._body is not None:
            text += f" and a body {_describe_body(self._body)}"
        return text

    def check(self) -> Sample:
        """Send one request and judge the answer; HTTP and network errors become the Sample."""
        wall = time.time()
        started = time.monotonic()
        try:
            with self._in_use:
                if self._closed.is_set():
                    raise RuntimeError(f"{self!r} is closed; create a new HttpProbe")
                response = self._client.request(self.method, self.url)
        except httpx.TimeoutException as exc:
            return self._failed(started, wall, "timeout", exc)
        except httpx.ConnectError as exc:
            return self._failed(started, wall, "connect", exc)
        except httpx.HTTPError as exc:
            return self._failed(started, wall, "other", exc)
        latency = time.monotonic() - started
        status = response.status_code
        if status not in self._expected_statuses:
            detail = f"{status} {response.reason_phrase}".strip()
            log.debug("%s %s: %s", self.method, self.url, detail)
            return Sample(started, wall, latency, False, status, "status", detail)
        if self._body is not None:
            problem = _judge_body(self._body, response.text)
            if problem:
                log.debug("%s %s: %s", self.method, self.url, problem)
                return Sample(started, wall, latency, False, status, "body", problem)
        return Sample(started, wall, latency, True, status)

    def _failed(self, started: float, wall: float, kind: ErrorKind, exc: Exception) -> Sample:
        latency = time.monotonic() - started
        detail = _shorten(f"{type(exc).__name__}: {exc}".rstrip(": "), _DETAIL_LIMIT)
        log.debug("%s %s: %s", self.method, self.url, detail)
        return Sample(started, wall, latency, False, None, kind, detail)

    def assert_ok(
        self, *, within: Duration = 30, consecutive: int = 1, every: Duration = 0.2
    ) -> Sample:
        """Retry until ``consecutive`` successive samples are ok; return the last one.

        Args:
            within: the deadline; at least one request is always sent.
            consecutive: how many ok samples in a row prove the steady state.
            every: the interval between attempts (fixed rate: attempt k starts at start + k*every,
                or at once when the previous attempt overran).

        Raises:
            NotSteadyError: the deadline passed; the message holds the diagnosis.
            ChaosConfigError: an argument is invalid.
        """
        deadline_s = as_seconds(within, name="within")
        interval = as_seconds(every, name="every")
        if isinstance(consecutive, bool) or not isinstance(consecutive, int) or consecutive < 1:
            raise ChaosConfigError(f"consecutive={consecutive!r} must be an integer >= 1")
        start = time.monotonic()
        deadline = start + deadline_s
        samples: list[Sample] = []
        streak = best = 0
        slot = 0
        while True:
            sample = self.check()
            samples.append(sample)
            streak = streak + 1 if sample.ok else 0
            best = max(best, streak)
            if streak >= consecutive:
                return sample
            now = time.monotonic()
            if now >= deadline:
                break
            slot, wake = _next_slot(start, interval, slot, now)
            wake = min(wake, deadline)  # the last attempt comes at the deadline, not after it
            if wake > now and self._closed.wait(wake - now):
                raise RuntimeError(f"{self!r} was closed while asserting its steady state")
        raise NotSteadyError(
            self._diagnosis(samples, within=deadline_s, consecutive=consecutive, best=best)
        )

    def _diagnosis(
        self, samples: list[Sample], *, within: float, consecutive: int, best: int
    ) -> str:
        first = samples[0].started
        span = samples[-1].started + samples[-1].latency - first
        ok = sum(s.ok for s in samples)
        wanted = f", {consecutive} consecutive ok samples" if consecutive > 1 else ""
        lines = [
            f"{self.method} {self.url} not steady within {within:g}s: "
            f"expected {self.expectation}{wanted}",
            f"{_plural(len(samples), 'attempt')} over {span:.2f}s, {ok} ok "
            f"(longest ok streak {best}); errors: {_kinds_text(_count_kinds(samples)) or 'none'}",
            f"last {min(len(samples), _LAST_SAMPLES)} samples (oldest first):",
        ]
        lines += [f"  {_sample_text(s, first)}" for s in samples[-_LAST_SAMPLES:]]
        return "\n".join(lines)

    def monitor(self, *, every: Duration = 0.2) -> Monitor:
        """A monitor sampling this endpoint every ``every`` seconds while its ``with`` block runs.

        Raises:
            ChaosConfigError: ``every`` is not a positive duration.
        """
        interval = as_seconds(every, name="every")
        if interval <= 0:
            raise ChaosConfigError(f"every={every!r} must be positive for a monitor (e.g. 0.2)")
        return Monitor(self, every=interval)

    def close(self) -> None:
        """Close the HTTP client; the probe cannot be used afterwards."""
        self._closed.set()
        with self._in_use:
            self._client.close()

    def __enter__(self) -> HttpProbe:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Monitor:
    """Samples an HttpProbe at a fixed rate in a daemon thread while its ``with`` block runs.

    Request k starts at t0 + k*every, or at once when the previous request overran (the schedule
    then continues from the next slot: there is no burst to catch up). Leaving the block stops
    the thread and joins it; the request in flight finishes first, bounded by the probe timeout.
    A monitor is entered once; call ``probe.monitor()`` again for a new measurement. Its
    properties can be read while it runs (they cover the samples so far) and after it stopped.
    """

    def __init__(self, probe: HttpProbe, *, every: float) -> None:
        self.probe = probe
        self.every = every
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
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
        self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"pytest-chaos monitor {self.probe.url}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            # A request takes at most a few timeout phases (connect, write, read); be generous.
            self._thread.join(timeout=4 * self.probe.timeout + 1.0)
            if self._thread.is_alive():  # pragma: no cover - a server dripping bytes forever
                log.debug("monitor of %s: a request is still in flight", self.probe.url)
        self._stopped_at = time.monotonic()
        log.debug("monitor of %s stopped: %s", self.probe.url, self)
        if self._failure is not None and exc_type is None:
            raise self._failure

    def _run(self) -> None:
        t0 = time.monotonic()
        slot = 0
        healthy = True
        try:
            while not self._stop.is_set():
                sample = self.probe.check()
                with self._lock:
                    self._samples.append(sample)
                if sample.ok != healthy:
                    healthy = sample.ok
                    log.debug(
                        "monitor of %s: %s",
                        self.probe.url,
                        "recovered" if healthy else f"outage started ({sample.detail})",
                    )
                now = time.monotonic()
                slot, wake = _next_slot(t0, self.every, slot, now)
                if wake > now and self._stop.wait(wake - now):
                    break
        except Exception as exc:
            log.debug("monitor of %s failed", self.probe.url, exc_info=True)
            self._failure = exc

    # --- results -------------------------------------------------------------------------------

    @property
    def samples(self) -> list[Sample]:
        """A copy of the samples taken so far, oldest first."""
        with self._lock:
            return list(self._samples)

    @property
    def availability(self) -> float:
        """The fraction of ok samples (1.0 when there is no sample)."""
        return _availability(self.samples)

    @property
    def error_count(self) -> int:
        """How many samples failed."""
        return sum(not s.ok for s in self.samples)

    @property
    def errors(self) -> dict[str, int]:
        """Failed samples by error kind (only the kinds that occurred)."""
        return _count_kinds(self.samples)

    @property
    def latency_percentiles(self) -> dict[str, float]:
        """``p50``, ``p95`` and ``p99`` of every sample's latency in seconds; {} without samples.

        Nearest-rank percentiles: each is a latency that was observed.
        """
        return _percentiles(self.samples)

    @property
    def outages(self) -> list[Outage]:
        """The maximal runs of consecutive failed samples, oldest first."""
        return _outages(self.samples)

    @property
    def longest_outage(self) -> float:
        """The longest outage in seconds (0.0 when there was none)."""
        return _longest(self.outages)

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
        return _recovered(self.samples)

    def summary(self) -> dict[str, object]:
        """The results as a JSON-able dict (seconds, fractions and counts).

        Keys: url, every, duration (seconds monitored), samples (their number), availability,
        error_count, errors, latency_percentiles, outages (their number), outage_windows
        (start and end as offsets from the first sample, duration, samples, kinds),
        longest_outage, time_to_recover, recovered.
        """
        samples = self.samples
        outages = _outages(samples)
        origin = samples[0].started if samples else 0.0
        stopped = self._stopped_at if self._stopped_at is not None else time.monotonic()
        started = self._started_at if self._started_at is not None else stopped
        return {
            "url": self.probe.url,
            "every": self.every,
            "duration": stopped - started,
            "samples": len(samples),
            "availability": _availability(samples),
            "error_count": sum(not s.ok for s in samples),
            "errors": _count_kinds(samples),
            "latency_percentiles": _percentiles(samples),
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
            "longest_outage": _longest(outages),
            "time_to_recover": self._time_to_recover(outages),
            "recovered": _recovered(samples),
        }

    def __str__(self) -> str:
        samples = self.samples
        if not samples:
            return "no samples"
        failed = sum(not s.ok for s in samples)
        kinds = _kinds_text(_count_kinds(samples))
        text = f"availability {_availability(samples) * 100:.1f}% "
        text += f"({failed} of {len(samples)} failed" + (f": {kinds})" if kinds else ")")
        text += ", " + " ".join(f"{k} {v * 1000:.0f}ms" for k, v in _percentiles(samples).items())
        outages = _outages(samples)
        if not outages:
            return text + ", no outage"
        text += f", longest outage {_short_seconds(_longest(outages))}"
        ttr = _short_seconds(self._time_to_recover(outages) or 0.0)
        if _recovered(samples):
            return text + f", recovered after {ttr}"
        return text + f", not recovered after {ttr}"


# --- helpers -----------------------------------------------------------------------------------


def _next_slot(start: float, every: float, slot: int, now: float) -> tuple[int, float]:
    """The next slot of a fixed-rate schedule and when it begins.

    When the previous attempt overran its slot, the next one begins at once and the schedule
    continues from the slot that contains ``now``, so missed slots are not made up in a burst.
    """
    if every <= 0:
        return slot + 1, now
    slot += 1
    wake = start + slot * every
    if wake <= now:
        slot = math.floor((now - start) / every)
        wake = now
    return slot, wake


def _check_url(url: str) -> str:
    if not isinstance(url, str):
        raise ChaosConfigError(f"url={url!r} is not a string; use e.g. 'http://my-app:8080/health'")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ChaosConfigError(f"url={url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ChaosConfigError(
            f"url={url!r} must start with http:// or https:// (e.g. 'http://my-app:8080/health')"
        )
    if not parsed.host:
        raise ChaosConfigError(f"url={url!r} has no host (e.g. 'http://my-app:8080/health')")
    return url


def _check_expect(expect: int | Collection[int] | range) -> tuple[Collection[int], str]:
    def valid(code: object) -> bool:
        return isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599

    usage = (
        "use a status code (200), a collection of codes ({200, 204}) or a range (range(200, 300))"
    )
    if isinstance(expect, bool):
        raise ChaosConfigError(f"expect={expect!r} is not a status code; {usage}")
    if isinstance(expect, int):
        if not valid(expect):
            raise ChaosConfigError(f"expect={expect!r} is outside the HTTP statuses 100-599")
        return frozenset({expect}), str(expect)
    if isinstance(expect, range):
        if not expect or not valid(expect[0]) or not valid(expect[-1]):
            raise ChaosConfigError(
                f"expect={expect!r} must be a non-empty range within the HTTP statuses 100-599"
            )
        if expect.step == 1:
            return expect, f"{expect[0]}-{expect[-1]}"
        return expect, f"in {expect!r}"
    if isinstance(expect, str | bytes) or not isinstance(expect, Iterable):
        raise ChaosConfigError(f"expect={expect!r} is not a status code; {usage}")
    codes = list(expect)
    if not codes:
        raise ChaosConfigError(f"expect={expect!r} is empty; {usage}")
    bad = [c for c in codes if not valid(c)]
    if bad:
        raise ChaosConfigError(
            f"expect={expect!r} holds {bad[0]!r}, which is not an HTTP status 100-599"
        )
    statuses = frozenset(codes)
    if len(statuses) == 1:
        return statuses, str(codes[0])
    return statuses, "in {" + ", ".join(map(str, sorted(statuses))) + "}"


def _check_body(body: object) -> BodyCheck | None:
    if body is None or isinstance(body, str):
        return body
    if isinstance(body, re.Pattern):
        if not isinstance(body.pattern, str):
            raise ChaosConfigError(
                f"body={body!r} is a bytes pattern; compile a str pattern (re.compile(r'...'))"
            )
        return body
    if callable(body):
        return body
    raise ChaosConfigError(
        f"body={body!r} ({type(body).__name__}) is not a body check; use a str the body must "
        "contain, a compiled regex it must match, or a callable taking the text and returning bool"
    )


def _check_method(method: str) -> str:
    if not isinstance(method, str) or not re.fullmatch(r"[A-Za-z]+", method):
        raise ChaosConfigError(f"method={method!r} is not an HTTP method (e.g. 'GET' or 'HEAD')")
    return method.upper()


def _describe_body(check: BodyCheck) -> str:
    if isinstance(check, str):
        return f"containing {check!r}"
    if isinstance(check, re.Pattern):
        return f"matching {check.pattern!r}"
    return f"accepted by {_callable_name(check)}"


def _judge_body(check: BodyCheck, text: str) -> str:
    """Empty when the body passes the check, else why not."""
    got = f" (got {_shorten(text, _SNIPPET_LIMIT)!r})"
    if isinstance(check, str):
        return "" if check in text else f"body lacks {check!r}{got}"
    if isinstance(check, re.Pattern):
        return "" if check.search(text) else f"body does not match {check.pattern!r}{got}"
    name = _callable_name(check)
    try:
        accepted = check(text)
    except Exception as exc:
        return _shorten(f"body check {name} raised {type(exc).__name__}: {exc}", _DETAIL_LIMIT)
    return "" if accepted is True else f"body rejected by {name}{got}"


def _callable_name(fn: Callable[[str], bool]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _count_kinds(samples: Iterable[Sample]) -> dict[str, int]:
    counts = Counter(s.error or "other" for s in samples if not s.ok)
    return {kind: counts[kind] for kind in ERROR_KINDS if counts[kind]}


def _kinds_text(kinds: Mapping[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in kinds.items())


def _sample_text(sample: Sample, origin: float) -> str:
    head = f"+{sample.started - origin:.2f}s "
    took = f"in {sample.latency * 1000:.0f}ms"
    if sample.ok:
        return f"{head}ok {sample.status} {took}"
    return f"{head}{sample.error} {took}: {sample.detail}"


def _availability(samples: list[Sample]) -> float:
    return sum(s.ok for s in samples) / len(samples) if samples else 1.0


def _percentiles(samples: list[Sample]) -> dict[str, float]:
    latencies = sorted(s.latency for s in samples)
    if not latencies:
        return {}
    return {f"p{p}": _nearest_rank(latencies, p) for p in (50, 95, 99)}


def _recovered(samples: list[Sample]) -> bool:
    return not samples or samples[-1].ok


def _longest(outages: list[Outage]) -> float:
    return max((o.duration for o in outages), default=0.0)


def _nearest_rank(ordered: list[float], percentile: int) -> float:
    rank = max(math.ceil(percentile / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def _short_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 0.1 else f"{seconds:.1f}s"


def _outages(samples: list[Sample]) -> list[Outage]:
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
                    kinds=_count_kinds(run),
                    failed_until=run[-1].started + run[-1].latency,
                )
            )
            run = []
    return outages
