"""HttpProbe and Monitor against a real HTTP server on 127.0.0.1 whose behaviour tests switch."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast

import httpx
import pytest

from pytest_chaos.errors import ChaosConfigError, ClusterError, NotSteadyError
from pytest_chaos.kube import Kube
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.steady import Steady
from pytest_chaos.steady.http import HttpProbe, Monitor, Outage
from pytest_chaos.steady.service_diagnosis import endpoint_state, service_ref

Mode = Literal["healthy", "v2", "unavailable", "slow", "lag", "drop"]

EVERY = 0.04  # the monitors' sampling interval
JITTER = 0.05  # how late a thread may wake up on a busy machine
SLOW = 3.0  # how long a "slow" request hangs (far beyond the probes' timeouts)
LAG = 0.02  # how long a "lag" request takes (shorter than the timeouts)


class FakeApp:
    """A tiny HTTP app on 127.0.0.1:<free port>; ``mode`` decides how it answers.

    healthy: 200 "ok, version 1"; v2: 200 "ok, version 2"; unavailable: 503; slow: hangs for SLOW
    seconds (or until the app stops); lag: 200 after LAG seconds; drop: closes the connection
    without an answer. ``fail_next = n`` makes the next n requests answer 503. ``stop()`` shuts
    the server down, so connections are refused from then on.
    """

    def __init__(self) -> None:
        self.mode: Mode = "healthy"
        self.fail_next = 0
        self.requests = 0
        self.connections = 0
        self.last_headers: dict[str, str] = {}
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.app = self
        host, port = self.server.server_address[:2]
        self.url = f"http://{host!s}:{port}/health"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self.stopped = False

    def connected(self) -> None:
        with self._lock:
            self.connections += 1

    def answer(self, headers: dict[str, str]) -> Mode:
        with self._lock:
            self.requests += 1
            self.last_headers = headers
            if self.fail_next > 0:
                self.fail_next -= 1
                return "unavailable"
            return self.mode

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.release.set()  # unblock "slow" handlers so server_close can join them
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads: nothing outlives a test
    app: FakeApp

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left is expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections alive unless the client closes them
    # A connection the client opened and abandoned (a probe closed mid-request) must not keep
    # its handler thread waiting for a request line forever: server_close() joins it.
    timeout = 5

    def setup(self) -> None:
        super().setup()
        cast(_Server, self.server).app.connected()

    def do_GET(self) -> None:
        app = cast(_Server, self.server).app
        mode = app.answer({k.lower(): v for k, v in self.headers.items()})
        if mode == "drop":
            self.close_connection = True
            return
        if mode in ("slow", "lag"):
            app.release.wait(SLOW if mode == "slow" else LAG)
        status, body = (503, b"down") if mode == "unavailable" else (200, b"ok, version 1")
        if mode == "v2":
            body = b"ok, version 2"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def app() -> Iterator[FakeApp]:
    fake = FakeApp()
    yield fake
    fake.stop()


@pytest.fixture
def make_probe(app: FakeApp) -> Iterator[Callable[..., HttpProbe]]:
    """Build probes (of the app's URL unless told) and close them all at teardown."""
    probes: list[HttpProbe] = []

    def make(url: str | None = None, **kwargs: Any) -> HttpProbe:
        kwargs.setdefault("timeout", 0.5)
        probe = HttpProbe(url or app.url, **kwargs)
        probes.append(probe)
        return probe

    yield make
    for probe in probes:
        probe.close()


def wait_until(condition: Callable[[], bool], *, what: str, within: float = 5.0) -> None:
    """Poll condition on an Event's timeout until it holds; fail the test after `within`."""
    tick = threading.Event()
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        tick.wait(0.005)


def monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pytest-chaos monitor")]


def failed(monitor: Monitor) -> int:
    return sum(not s.ok for s in monitor.samples)


# --- check() -----------------------------------------------------------------------------------


def test_check_healthy(make_probe: Callable[..., HttpProbe]) -> None:
    before, before_wall = time.monotonic(), time.time()
    sample = make_probe().check()
    assert sample.ok
    assert sample.status == 200
    assert sample.error is None
    assert sample.detail == ""
    assert before <= sample.started <= before + 0.5
    assert sample.wall == pytest.approx(before_wall, abs=0.5)
    assert 0 < sample.latency < 0.5


def test_check_unexpected_status(app: FakeApp, make_probe: Callable[..., HttpProbe]) -> None:
    app.mode = "unavailable"
    sample = make_probe().check()
    assert not sample.ok
    assert (sample.status, sample.error, sample.detail) == (
        503,
        "status",
        "503 Service Unavailable",
    )


def test_check_slow_answer_is_a_timeout(app: FakeApp, make_probe: Callable[..., HttpProbe]) -> None:
    app.mode = "slow"
    sample = make_probe(timeout=0.1).check()
    assert (sample.ok, sample.status, sample.error) == (False, None, "timeout")
    assert sample.detail.startswith("ReadTimeout")
    assert 0.09 <= sample.latency < 1.0


def test_check_refused_connection(app: FakeApp, make_probe: Callable[..., HttpProbe]) -> None:
    app.stop()
    sample = make_probe().check()
    assert (sample.ok, sample.status, sample.error) == (False, None, "connect")
    assert sample.detail.startswith("ConnectError: ")


def test_check_dropped_connection_is_other(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    app.mode = "drop"
    sample = make_probe().check()
    assert (sample.ok, sample.status, sample.error) == (False, None, "other")
    assert sample.detail.startswith("RemoteProtocolError: ")


@pytest.mark.parametrize(
    ("body", "ok", "detail"),
    [
        ("version 1", True, ""),
        ("version 2", False, "body lacks 'version 2' (got 'ok, version 1')"),
        (re.compile(r"version \d$"), True, ""),
        (re.compile(r"version [2-9]"), False, "body does not match 'version [2-9]'"),
        (lambda text: text.endswith("1"), True, ""),
        (lambda text: "2" in text, False, "body rejected by "),
        (lambda text: json.loads(text)["ok"], False, "raised JSONDecodeError: "),
    ],
    ids=["str", "str-missing", "regex", "regex-no-match", "callable", "callable-no", "raises"],
)
def test_check_body(make_probe: Callable[..., HttpProbe], body: Any, ok: bool, detail: str) -> None:
    sample = make_probe(body=body).check()
    assert sample.ok is ok
    assert sample.status == 200
    assert sample.error == (None if ok else "body")
    assert detail in sample.detail


def test_body_mismatch_after_a_bad_rollout(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    probe = make_probe(body="version 1")
    assert probe.check().ok
    app.mode = "v2"
    assert probe.check().detail == "body lacks 'version 1' (got 'ok, version 2')"


@pytest.mark.parametrize(
    ("expect", "ok", "text"),
    [
        (503, True, "status 503"),
        (range(500, 600), True, "status 500-599"),
        ({200, 204}, False, "status in {200, 204}"),
        ([503], True, "status 503"),
        (range(200, 600, 100), False, "status in range(200, 600, 100)"),
    ],
)
def test_expected_statuses(
    app: FakeApp, make_probe: Callable[..., HttpProbe], expect: Any, ok: bool, text: str
) -> None:
    app.mode = "unavailable"
    probe = make_probe(expect=expect)
    assert probe.check().ok is ok
    assert probe.expectation == text


def test_headers_and_method_are_sent(app: FakeApp, make_probe: Callable[..., HttpProbe]) -> None:
    probe = make_probe(headers={"X-Probe": "chaos"}, method="get")
    assert probe.check().ok
    assert app.last_headers["x-probe"] == "chaos"
    assert probe.method == "GET"


def test_every_request_opens_a_new_connection(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    probe = make_probe()  # the app speaks HTTP/1.1 and would keep a connection alive
    for _ in range(3):
        assert probe.check().ok
    assert app.connections == 3


def test_a_closed_probe_refuses_to_check(app: FakeApp) -> None:
    with HttpProbe(app.url) as probe:
        assert probe.check().ok
    with pytest.raises(RuntimeError, match="is closed"):
        probe.check()


# --- assert_ok() -------------------------------------------------------------------------------


def test_assert_ok_returns_the_ok_sample(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    sample = make_probe().assert_ok(within=1)
    assert sample.ok
    assert app.requests == 1


def test_assert_ok_waits_for_consecutive_ok_samples(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    start = time.monotonic()
    sample = make_probe().assert_ok(within=2, consecutive=3, every=0.03)
    assert sample.ok
    assert app.requests == 3
    assert time.monotonic() - start >= 2 * 0.03  # paced, not back to back


def test_assert_ok_retries_through_failures(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    app.fail_next = 3
    sample = make_probe().assert_ok(within=2, consecutive=2, every="20ms")
    assert sample.ok
    assert app.requests == 5  # 3 failures, then 2 ok in a row


def test_assert_ok_diagnoses_a_service_that_stays_down(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    app.mode = "unavailable"
    probe = make_probe(body="version 1")
    start = time.monotonic()
    with pytest.raises(
        NotSteadyError,
        match=(
            rf"^GET {re.escape(app.url)} not steady within 0\.3s: expected status 200 and a body "
            r"containing 'version 1', 2 consecutive ok samples\n"
            r"(\d+) attempts over 0\.\d\ds, 0 ok \(longest ok streak 0\); errors: status \1\n"
            r"last 5 samples \(oldest first\):\n"
        ),
    ) as raised:
        probe.assert_ok(within=0.3, consecutive=2, every=0.05)
    elapsed = time.monotonic() - start
    assert isinstance(raised.value, AssertionError)
    lines = str(raised.value).splitlines()
    assert len(lines) == 3 + 5
    assert all(
        re.fullmatch(r"  \+\d\.\d\ds status in \d+ms: 503 Service Unavailable", ln)
        for ln in lines[3:]
    )
    assert 6 <= app.requests <= 8  # every 50ms over 300ms: at 0, 50, ..., 300ms
    assert 0.3 <= elapsed < 0.3 + 0.05 + JITTER


def test_assert_ok_diagnosis_counts_errors_by_kind(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    app.stop()
    with pytest.raises(NotSteadyError, match=r"errors: connect \d+\n(?s:.*)connect in \d+ms: Conn"):
        make_probe().assert_ok(within=0.1, every=0.05)


def test_assert_ok_mixed_failures(app: FakeApp, make_probe: Callable[..., HttpProbe]) -> None:
    app.fail_next = 2
    app.mode = "slow"
    with pytest.raises(NotSteadyError, match=r"errors: timeout \d+, status 2\n") as raised:
        make_probe(timeout=0.05).assert_ok(within=0.2, every=0.02)
    assert "ok 200" not in str(raised.value)


# --- Monitor -----------------------------------------------------------------------------------


def test_monitor_of_a_healthy_service(make_probe: Callable[..., HttpProbe]) -> None:
    with make_probe().monitor(every=EVERY) as monitor:
        wait_until(lambda: len(monitor.samples) >= 5, what="5 samples")
    samples = monitor.samples
    assert all(s.ok for s in samples)
    assert monitor.availability == 1.0
    assert (monitor.error_count, monitor.errors, monitor.outages) == (0, {}, [])
    assert monitor.longest_outage == 0.0
    assert monitor.time_to_recover is None
    assert monitor.recovered
    percentiles = monitor.latency_percentiles
    assert list(percentiles) == ["p50", "p95", "p99"]
    assert 0 < percentiles["p50"] <= percentiles["p95"] <= percentiles["p99"] < 0.5
    assert re.fullmatch(
        rf"availability 100\.0% \(0 of {len(samples)} failed\), "
        r"p50 \d+ms p95 \d+ms p99 \d+ms, no outage",
        str(monitor),
    )
    summary = json.loads(json.dumps(monitor.summary()))
    assert summary["samples"] == len(samples)
    assert summary["availability"] == 1.0
    assert summary["outages"] == 0
    assert summary["time_to_recover"] is None
    assert summary["recovered"] is True


def test_monitor_samples_at_a_fixed_rate(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    app.mode = "lag"  # each request takes LAG: a fixed delay would drift by LAG per sample
    with make_probe().monitor(every=EVERY) as monitor:
        wait_until(lambda: len(monitor.samples) >= 8, what="8 samples")
    starts = [s.started for s in monitor.samples][:8]
    for k, started in enumerate(starts):
        assert started - starts[0] == pytest.approx(k * EVERY, abs=LAG / 2 + JITTER / 2)
    assert starts[-1] - starts[0] < 7 * (EVERY + LAG) - LAG


def test_monitor_keeps_its_rate_while_requests_hang(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    app.mode = "slow"  # every request hangs far beyond the timeout
    timeout, every = 0.1, 0.03
    with make_probe(timeout=timeout).monitor(every=every) as monitor:
        wait_until(lambda: len(monitor.samples) >= 8, what="8 timed out samples")
        leaving = time.monotonic()
    took_to_stop = time.monotonic() - leaving
    samples = monitor.samples
    assert monitor.max_in_flight == 5  # ceil(timeout / every) + 1
    assert {s.error for s in samples} == {"timeout"}
    assert [s.started for s in samples] == sorted(s.started for s in samples)
    gaps = [b.started - a.started for a, b in itertools.pairwise(samples)]
    assert all(every * 0.5 <= gap < every + JITTER for gap in gaps)  # on schedule, no burst
    assert 3 <= monitor.peak_in_flight <= 5  # the timeouts overlapped
    for sample in samples:
        assert sample.scheduled is not None
        assert 0 <= sample.started - sample.scheduled < JITTER
    assert took_to_stop < timeout + JITTER  # the requests in flight, bounded by the timeout
    assert monitor.errors == {"timeout": len(samples)}
    assert not monitor.recovered


def test_monitor_measures_a_scripted_outage(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    with make_probe().monitor(every=EVERY) as monitor:
        wait_until(lambda: len(monitor.samples) >= 5, what="5 healthy samples")
        down_at = time.monotonic()
        app.mode = "unavailable"
        wait_until(lambda: failed(monitor) >= 4, what="4 failed samples")
        up_at = time.monotonic()
        app.mode = "healthy"
        wait_until(
            lambda: sum(s.ok and s.started > up_at for s in monitor.samples) >= 3,
            what="3 ok samples after the recovery",
        )
    samples = monitor.samples
    n_failed = sum(not s.ok for s in samples)
    assert n_failed >= 4
    assert monitor.availability == pytest.approx(1 - n_failed / len(samples))
    assert monitor.availability < 1
    assert monitor.error_count == n_failed
    assert monitor.errors == {"status": n_failed}
    [outage] = monitor.outages
    assert isinstance(outage, Outage)
    assert (outage.samples, outage.kinds) == (n_failed, {"status": n_failed})
    # Detection lag: both edges are request starts, within one interval of the switch.
    assert down_at - EVERY <= outage.start <= down_at + EVERY + JITTER
    assert outage.end is not None
    assert up_at - EVERY <= outage.end <= up_at + EVERY + JITTER
    assert outage.duration == pytest.approx(outage.end - outage.start)
    assert monitor.longest_outage == pytest.approx(outage.duration)
    assert monitor.time_to_recover == pytest.approx(outage.duration)
    assert monitor.recovered
    text = str(monitor)
    assert text.startswith(f"availability {monitor.availability * 100:.1f}% ")
    assert f"({n_failed} of {len(samples)} failed: status {n_failed})" in text
    assert re.search(r", longest outage \d+(ms|\.\ds), recovered after \d+(ms|\.\ds)$", text)
    summary = json.loads(json.dumps(monitor.summary()))
    assert summary["outages"] == 1
    assert summary["errors"] == {"status": n_failed}
    assert summary["recovered"] is True
    [window] = summary["outage_windows"]
    assert window["samples"] == n_failed
    assert window["duration"] == pytest.approx(outage.duration)


def test_monitor_of_an_outage_that_never_ends(
    app: FakeApp, make_probe: Callable[..., HttpProbe]
) -> None:
    with make_probe().monitor(every=EVERY) as monitor:
        wait_until(lambda: len(monitor.samples) >= 3, what="3 healthy samples")
        app.stop()
        wait_until(lambda: failed(monitor) >= 3, what="3 refused samples")
    stopped = time.monotonic()
    [outage] = monitor.outages
    assert outage.end is None
    # A request in flight while the server stops may end as a reset ("other"); every one
    # after that is refused.
    assert set(outage.kinds) <= {"connect", "other"}
    assert outage.kinds.get("other", 0) <= 1
    assert outage.kinds["connect"] >= outage.samples - 1
    assert outage.duration > 0
    assert not monitor.recovered
    ttr = monitor.time_to_recover
    assert ttr is not None
    assert outage.duration <= ttr <= stopped - outage.start
    assert monitor.time_to_recover == ttr  # measured to the stop, not to now
    assert re.search(r", not recovered after \d+(ms|\.\ds)$", str(monitor))
    assert monitor.summary()["recovered"] is False


def test_monitor_stops_and_joins_its_thread(make_probe: Callable[..., HttpProbe]) -> None:
    with make_probe().monitor(every=0.02) as monitor:
        wait_until(lambda: len(monitor.samples) >= 2, what="2 samples")
        assert monitor_threads()
    count = len(monitor.samples)
    assert not monitor_threads()
    threading.Event().wait(0.06)
    assert len(monitor.samples) == count


def test_monitor_cannot_be_entered_twice(make_probe: Callable[..., HttpProbe]) -> None:
    monitor = make_probe().monitor(every=0.02)
    with monitor, pytest.raises(RuntimeError, match="entered only once"):
        monitor.__enter__()
    with pytest.raises(RuntimeError, match="entered only once"):
        monitor.__enter__()


def test_monitor_reraises_a_failure_of_its_thread(make_probe: Callable[..., HttpProbe]) -> None:
    probe = make_probe()
    monitor = probe.monitor(every=0.02).__enter__()
    wait_until(lambda: len(monitor.samples) >= 1, what="a sample")
    probe.close()  # the thread's next check raises; leaving the block raises it again
    wait_until(lambda: not monitor_threads(), what="the monitor thread to end")
    with pytest.raises(RuntimeError, match="is closed"):
        monitor.__exit__(None, None, None)


def test_a_monitor_without_samples(make_probe: Callable[..., HttpProbe]) -> None:
    monitor = make_probe().monitor()
    assert monitor.samples == []
    assert monitor.availability == 1.0
    assert monitor.latency_percentiles == {}
    assert (monitor.outages, monitor.longest_outage, monitor.time_to_recover) == ([], 0.0, None)
    assert monitor.recovered
    assert str(monitor) == "no samples"
    assert monitor.summary()["samples"] == 0


def test_outage_duration() -> None:
    assert Outage(start=1.0, end=3.5, samples=2, kinds={"status": 2}).duration == 2.5
    assert Outage(1.0, None, 3, {"timeout": 3}, failed_until=2.25).duration == 1.25
    assert Outage(1.0, None, 1, {"timeout": 1}).duration == 0.0


# --- argument validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://example.com/"}, r"^url='ftp://example\.com/' must start with http://"),
        ({"url": "example.com/health"}, r"^url='example\.com/health' must start with http://"),
        ({"url": "http:///health"}, r"^url='http:///health' has no host"),
        ({"url": 8080}, r"^url=8080 is not a string"),
        ({"expect": 99}, r"^expect=99 is outside the HTTP statuses 100-599"),
        ({"expect": 600}, r"^expect=600 is outside"),
        ({"expect": True}, r"^expect=True is not a status code"),
        ({"expect": "200"}, r"^expect='200' is not a status code"),
        ({"expect": []}, r"^expect=\[\] is empty"),
        ({"expect": [200, 700]}, r"^expect=\[200, 700\] holds 700"),
        ({"expect": range(0, 200)}, r"^expect=range\(0, 200\) must be a non-empty range"),
        ({"expect": range(300, 300)}, r"^expect=range\(300, 300\) must be a non-empty range"),
        ({"body": 42}, r"^body=42 \(int\) is not a body check"),
        ({"body": re.compile(b"ok")}, r"^body=re\.compile\(b'ok'\) is a bytes pattern"),
        ({"method": ""}, r"^method='' is not an HTTP method"),
        ({"method": "GE T"}, r"^method='GE T' is not an HTTP method"),
        ({"headers": ["X-A: b"]}, r"^headers=\['X-A: b'\] is not a mapping"),
        ({"timeout": 0}, r"^timeout=0 must be positive"),
        ({"timeout": -1}, r"^timeout=-1 must be a finite, non-negative duration"),
        ({"timeout": "soon"}, r"^timeout='soon' is not a duration"),
        ({"transport": "tcp"}, r"^transport='tcp' is not an httpx\.BaseTransport"),
        ({"kube": "local"}, r"^kube='local' is neither a Kube nor a callable returning one"),
    ],
)
def test_invalid_probe_arguments_are_named(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("url", "http://127.0.0.1:9/")
    with pytest.raises(ChaosConfigError, match=message):
        HttpProbe(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"within": "soon"}, r"^within='soon' is not a duration"),
        ({"every": -1}, r"^every=-1 must be a finite, non-negative duration"),
        ({"consecutive": 0}, r"^consecutive=0 must be an integer >= 1"),
        ({"consecutive": True}, r"^consecutive=True must be an integer >= 1"),
        ({"consecutive": 1.5}, r"^consecutive=1\.5 must be an integer >= 1"),
    ],
)
def test_invalid_assert_ok_arguments_are_named(
    app: FakeApp, make_probe: Callable[..., HttpProbe], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        make_probe().assert_ok(**kwargs)
    assert app.requests == 0


@pytest.mark.parametrize(
    ("every", "message"),
    [(0, r"^every=0 must be positive"), ("1 second", r"^every='1 second' is not a duration")],
)
def test_invalid_monitor_interval(
    make_probe: Callable[..., HttpProbe], every: Any, message: str
) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        make_probe().monitor(every=every)


def test_valid_arguments_in_other_forms(make_probe: Callable[..., HttpProbe]) -> None:
    probe = make_probe(timeout="250ms", expect=(200, 204), method="head")
    assert probe.timeout == 0.25
    assert probe.method == "HEAD"
    assert probe.expectation == "status in {200, 204}"
    assert probe.check().status == 501  # the app implements GET only: HEAD was sent
    assert "HEAD" in repr(probe)


# --- the Service behind a URL, and the timeline ----------------------------------------------


@pytest.mark.parametrize(
    ("url", "ref"),
    [
        ("http://web/", ("name", "web")),
        ("http://web.shop:8080/health", ("pair", "shop/web")),
        ("http://web.shop.svc/", ("fqdn", "shop/web")),
        ("https://WEB.shop.svc.cluster.local./x", ("fqdn", "shop/web")),
        ("http://10.96.0.12:80/", ("ip", "10.96.0.12")),
        ("http://[fd00::12]/", ("ip", "fd00::12")),
        ("http://127.0.0.1:8080/", None),
        ("http://[::1]/", None),
        ("http://localhost:8080/", None),
        ("http://api.example.com/", None),
        ("http://web.shop.svc.other.domain/", None),
    ],
)
def test_which_hosts_may_name_a_service(url: str, ref: tuple[str, str] | None) -> None:
    assert service_ref(url) == ref


@pytest.mark.parametrize(
    ("conditions", "state"),
    [
        ({"ready": True, "serving": True}, "ready"),
        ({}, "ready"),  # unset means ready, as the API documents
        ({"ready": False, "serving": False}, "not ready"),
        ({"ready": False, "serving": True, "terminating": True}, "terminating"),
    ],
)
def test_endpoint_state(conditions: dict[str, bool], state: str) -> None:
    assert endpoint_state({"addresses": ["10.0.0.1"], "conditions": conditions}) == state


def no_cluster() -> Kube:
    raise ClusterError("no cluster here")


def unavailable() -> httpx.MockTransport:
    """A transport answering 503 to any host, so URLs may name Services without any DNS."""
    return httpx.MockTransport(lambda request: httpx.Response(503))


def test_a_diagnosis_without_a_cluster_keeps_the_failure() -> None:
    url = "http://web.shop.svc/health"
    with (
        HttpProbe(url, transport=unavailable(), kube=no_cluster) as probe,
        pytest.raises(NotSteadyError) as raised,
    ):
        probe.assert_ok(within=0.1, every=0.05)
    lines = str(raised.value).splitlines()
    assert lines[0] == f"GET {url} not steady within 0.1s: expected status 200"
    assert re.fullmatch(r"\d+ attempts over .*; errors: status \d+", lines[1])
    assert lines[-1] == "(service state unavailable: ClusterError: no cluster here)"
    assert len(lines) == 3 + min(int(lines[1].split()[0]), 5) + 1


def test_a_diagnosis_that_skips_still_keeps_the_failure(app: FakeApp) -> None:
    def skipping() -> Kube:
        pytest.skip("no cluster for this test")

    app.mode = "unavailable"
    with HttpProbe(app.url, timeout=0.5, kube=skipping) as local:
        # A loopback URL names no Service: the cluster is not even asked.
        with pytest.raises(NotSteadyError) as raised:
            local.assert_ok(within=0)
        assert len(str(raised.value).splitlines()) == 3 + 1
    with (
        HttpProbe("http://web/", transport=unavailable(), kube=skipping) as named,
        pytest.raises(NotSteadyError) as raised,
    ):
        named.assert_ok(within=0)
    assert str(raised.value).endswith(
        "\n(service state unavailable: Skipped: no cluster for this test)"
    )


def test_a_plain_probe_names_no_service_state() -> None:
    with (
        HttpProbe("http://web.shop.svc/", transport=unavailable()) as probe,
        pytest.raises(NotSteadyError) as raised,
    ):
        probe.assert_ok(within=0)
    lines = str(raised.value).splitlines()
    assert len(lines) == 3 + 1  # no Service state: the probe has no cluster to ask
    assert re.fullmatch(r"  \+0\.00s status in \d+ms: 503 Service Unavailable", lines[-1])


def test_assert_ok_is_a_steady_event_on_the_timeline(app: FakeApp) -> None:
    timeline = Timeline("test_x")
    steady = Steady(no_cluster, timeline)
    try:
        probe = steady.http(app.url, body="version 1", timeout=0.5)
        probe.assert_ok(within=2, consecutive=2, every=0.02)
        app.mode = "unavailable"
        with pytest.raises(NotSteadyError):
            probe.assert_ok(within=0.1, every=0.05)
    finally:
        steady.close()
    held, not_held = [e for e in timeline.events if e.phase == "steady"]
    assert held.text == (
        f"GET {app.url}: status 200 and a body containing 'version 1', 2 in a row "
        "held after 2 attempts"
    )
    assert (held.data["url"], held.data["held"], held.data["attempts"]) == (app.url, True, 2)
    assert held.data["expectation"] == "status 200 and a body containing 'version 1'"
    assert re.fullmatch(
        rf"GET {re.escape(app.url)}: status 200 and a body containing 'version 1' "
        r"NOT held within 0\.1s \((\d+) attempts, 0 ok\)",
        not_held.text,
    )
    assert not_held.data["held"] is False
    assert not_held.data["attempts"] >= 2
