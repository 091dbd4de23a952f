"""HTTP steady-state checks: a probe, its retrying assertion, and a background monitor.

``HttpProbe`` sends one request and turns the outcome into a ``Sample`` (it never raises for an
HTTP or network error); ``assert_ok`` retries until the endpoint is healthy or raises
``NotSteadyError`` with a diagnosis (and, given a cluster, the state of the Service behind the
URL); ``monitor()`` samples the endpoint at a fixed rate in the background while a fault is
injected, then reports availability, latency percentiles and outages (see ``http_monitor``).

Every request opens a new connection (no keep-alive), so each sample sees what a new client sees:
Service routing to a live endpoint, refused connections, TLS handshakes. A monitor sends through
an HTTP client of its own (``new_session``), so it never makes ``check``/``assert_ok`` wait.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TypeAlias

import httpx

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import ChaosConfigError, NotSteadyError
from pytest_chaos.kube import Kube
from pytest_chaos.steady.http_monitor import Monitor
from pytest_chaos.steady.http_samples import (
    ERROR_KINDS,
    ErrorKind,
    Outage,
    Sample,
    count_kinds,
    kinds_text,
    next_slot,
    plural,
    sample_text,
    shorten,
)

__all__ = ["ERROR_KINDS", "ErrorKind", "HttpProbe", "HttpSession", "Monitor", "Outage", "Sample"]

log = logging.getLogger(__name__)

BodyCheck: TypeAlias = str | re.Pattern[str] | Callable[[str], bool]

_DETAIL_LIMIT = 200
_SNIPPET_LIMIT = 60
_LAST_SAMPLES = 5


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
        kube: the cluster (or a callable returning it) that explains a failed ``assert_ok``
            when the URL's host names a Service (``svc``, ``svc.ns``, ``svc.ns.svc``,
            ``svc.ns.svc.cluster.local``) or is a Service's ClusterIP: the Service, its
            EndpointSlices, its pods and their recent events. ``steady.http`` passes the test's
            cluster (resolved only when such a diagnosis is made); None: no such diagnosis.

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
        kube: Kube | Callable[[], Kube] | None = None,
    ) -> None:
        self.url = _check_url(url)
        self._expected_statuses, self._expect_text = _check_expect(expect)
        self._body = _check_body(body)
        self.method = _check_method(method)
        if headers is not None and not isinstance(headers, Mapping):
            raise ChaosConfigError(
                f"headers={headers!r} is not a mapping; use a dict of header names to values"
            )
        self._headers = dict(headers or {})
        self.timeout = as_seconds(timeout, name="timeout")
        if self.timeout <= 0:
            raise ChaosConfigError(f"timeout={timeout!r} must be positive (e.g. 2 or '500ms')")
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise ChaosConfigError(
                f"transport={transport!r} is not an httpx.BaseTransport (e.g. httpx.HTTPTransport)"
            )
        self._transport = transport
        if kube is not None and not isinstance(kube, Kube) and not callable(kube):
            raise ChaosConfigError(
                f"kube={kube!r} is neither a Kube nor a callable returning one (e.g. the `kube` "
                "fixture, or None for no Service diagnosis)"
            )
        self._kube = kube
        self._closed = threading.Event()
        self._session = self.new_session()

    def __repr__(self) -> str:
        return f"HttpProbe({self.method} {self.url}, expect {self.expectation})"

    @property
    def expectation(self) -> str:
        """What a healthy answer is, in words: ``"status 200 and a body containing 'ok'"``."""
        text = f"status {self._expect_text}"
        if self._body is not None:
            text += f" and a body {_describe_body(self._body)}"
        return text

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called: the probe sends nothing more."""
        return self._closed.is_set()

    def new_session(self, *, max_connections: int = 100) -> HttpSession:
        """An HTTP client of its own for this probe's requests (a monitor sends through one).

        Requests through different sessions never wait for each other; ``max_connections``
        bounds the concurrent requests of this session.
        """
        # No keep-alive: every request opens a connection, as a new client would, so a
        # Service's changed endpoints show at once.
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=0)
        client = httpx.Client(
            headers=self._headers,
            timeout=self.timeout,
            transport=self._session_transport(limits),
            follow_redirects=False,
            limits=limits,
        )
        return HttpSession(self, client)

    def _session_transport(self, limits: httpx.Limits) -> httpx.BaseTransport | None:
        """The transport of a new session (a subclass may make one per session)."""
        return self._transport

    def check(self) -> Sample:
        """Send one request and judge the answer; HTTP and network errors become the Sample."""
        return self._session.send()

    def _judge(
        self, response: httpx.Response, started: float, wall: float, scheduled: float | None
    ) -> Sample:
        latency = time.monotonic() - started
        status = response.status_code
        if status not in self._expected_statuses:
            detail = f"{status} {response.reason_phrase}".strip()
            log.debug("%s %s: %s", self.method, self.url, detail)
            return Sample(started, wall, latency, False, status, "status", detail, scheduled)
        if self._body is not None:
            problem = _judge_body(self._body, response.text)
            if problem:
                log.debug("%s %s: %s", self.method, self.url, problem)
                return Sample(started, wall, latency, False, status, "body", problem, scheduled)
        return Sample(started, wall, latency, True, status, scheduled=scheduled)

    def _failed(
        self, started: float, wall: float, kind: ErrorKind, exc: Exception, scheduled: float | None
    ) -> Sample:
        latency = time.monotonic() - started
        detail = shorten(f"{type(exc).__name__}: {exc}".rstrip(": "), _DETAIL_LIMIT)
        log.debug("%s %s: %s", self.method, self.url, detail)
        return Sample(started, wall, latency, False, None, kind, detail, scheduled)

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
                self._asserted(True, samples, within=deadline_s, consecutive=consecutive)
                return sample
            now = time.monotonic()
            if now >= deadline:
                break
            slot, wake = next_slot(start, interval, slot, now)
            wake = min(wake, deadline)  # the last attempt comes at the deadline, not after it
            if wake > now and self._closed.wait(wake - now):
                raise RuntimeError(f"{self!r} was closed while asserting its steady state")
        self._asserted(False, samples, within=deadline_s, consecutive=consecutive)
        raise NotSteadyError(
            self._diagnosis(samples, within=deadline_s, consecutive=consecutive, best=best)
        )

    def _asserted(
        self, held: bool, samples: list[Sample], *, within: float, consecutive: int
    ) -> None:
        """Called when an ``assert_ok`` ends (a subclass may record it, e.g. on a timeline)."""

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
            f"{plural(len(samples), 'attempt')} over {span:.2f}s, {ok} ok "
            f"(longest ok streak {best}); errors: {kinds_text(count_kinds(samples)) or 'none'}",
            f"last {min(len(samples), _LAST_SAMPLES)} samples (oldest first):",
        ]
        lines += [f"  {sample_text(s, first)}" for s in samples[-_LAST_SAMPLES:]]
        if self._kube is not None:
            from pytest_chaos.steady.service_diagnosis import service_state

            state = service_state(self._kube, self.url)
            if state:
                lines.append(state)
        return "\n".join(lines)

    def monitor(self, *, every: Duration = 0.2, max_in_flight: int | None = None) -> Monitor:
        """A monitor sampling this endpoint every ``every`` seconds while its ``with`` block runs.

        Args:
            every: seconds between requests; each is sent on time, even while earlier ones
                are still waiting for an answer.
            max_in_flight: how many requests may be in flight at once (None:
                ``ceil(timeout / every) + 1``, at most 32); a slot due while that many are in
                flight is recorded as a failed sample of kind ``overload``.

        Raises:
            ChaosConfigError: ``every`` is not a positive duration, or ``max_in_flight`` is not
                an integer >= 1.
        """
        interval = as_seconds(every, name="every")
        if interval <= 0:
            raise ChaosConfigError(f"every={every!r} must be positive for a monitor (e.g. 0.2)")
        return Monitor(self, every=interval, max_in_flight=max_in_flight)

    def close(self) -> None:
        """Close the HTTP client; the probe cannot be used afterwards."""
        self._closed.set()
        self._session.close()

    def __enter__(self) -> HttpProbe:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class HttpSession:
    """An HTTP client of one probe: sends the probe's request and judges the answer.

    Thread-safe: concurrent ``send`` calls each get a connection of their own. ``close`` never
    cuts a request in flight: the last one to finish closes the client.
    """

    def __init__(self, probe: HttpProbe, client: httpx.Client) -> None:
        self.probe = probe
        self._client = client
        self._lock = threading.Lock()
        self._busy = 0
        self._closed = False

    def send(self, *, scheduled: float | None = None) -> Sample:
        """Send one request; ``scheduled``: when a schedule wanted it sent (kept in the Sample).

        Raises:
            RuntimeError: the session or its probe is closed.
        """
        probe = self.probe
        with self._lock:
            if self._closed or probe.closed:
                raise RuntimeError(f"{probe!r} is closed; create a new HttpProbe")
            self._busy += 1
        wall = time.time()
        started = time.monotonic()
        try:
            response = self._client.request(probe.method, probe.url)
        except httpx.TimeoutException as exc:
            return probe._failed(started, wall, "timeout", exc, scheduled)
        except httpx.ConnectError as exc:
            return probe._failed(started, wall, "connect", exc, scheduled)
        except httpx.HTTPError as exc:
            return probe._failed(started, wall, "other", exc, scheduled)
        finally:
            self._release()
        return probe._judge(response, started, wall, scheduled)

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1
            last = self._closed and self._busy == 0
        if last:
            self._client.close()

    def close(self) -> None:
        """Close the client now, or when the last request in flight has finished."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = self._busy == 0
        if idle:
            self._client.close()


# --- helpers -----------------------------------------------------------------------------------


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
    got = f" (got {shorten(text, _SNIPPET_LIMIT)!r})"
    if isinstance(check, str):
        return "" if check in text else f"body lacks {check!r}{got}"
    if isinstance(check, re.Pattern):
        return "" if check.search(text) else f"body does not match {check.pattern!r}{got}"
    name = _callable_name(check)
    try:
        accepted = check(text)
    except Exception as exc:
        return shorten(f"body check {name} raised {type(exc).__name__}: {exc}", _DETAIL_LIMIT)
    return "" if accepted is True else f"body rejected by {name}{got}"


def _callable_name(fn: Callable[[str], bool]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
