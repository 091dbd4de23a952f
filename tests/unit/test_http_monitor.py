"""The Monitor keeps its schedule whatever a request does, against a real server on 127.0.0.1.

The server answers at once, except the requests it is told to stall: those wait STALL seconds
(or until the test releases them) before answering 200.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.steady.http import HttpProbe
from pytest_chaos.steady.http_monitor import default_max_in_flight

STALL = 3.0  # how long a stalled request waits before its answer
JITTER = 0.05  # how late a thread may wake up on a busy machine


class StallApp:
    """A tiny HTTP app on 127.0.0.1:<free port>: 200 "ok" at once, but for stalled requests.

    ``stall_next = n``: the next n requests wait STALL seconds, or until ``release`` is set.
    ``stalled`` is set when the first of them arrives.
    """

    def __init__(self) -> None:
        self.stall_next = 0
        self.requests = 0
        self.stalled = threading.Event()
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

    def arrived(self) -> bool:
        """Count a request; True when it is to stall."""
        with self._lock:
            self.requests += 1
            if self.stall_next <= 0:
                return False
            self.stall_next -= 1
        self.stalled.set()
        return True

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads: nothing outlives a test
    app: StallApp


class _Handler(BaseHTTPRequestHandler):
    timeout = 10

    def do_GET(self) -> None:
        app = cast(_Server, self.server).app
        if app.arrived():
            app.release.wait(STALL)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def app() -> Iterator[StallApp]:
    fake = StallApp()
    yield fake
    fake.stop()


@pytest.fixture
def probe(app: StallApp) -> Iterator[HttpProbe]:
    with HttpProbe(app.url, timeout=STALL + 2) as made:  # the stall is not a timeout
        yield made


def wait_until(condition: Callable[[], bool], *, what: str, within: float = 5.0) -> None:
    """Poll condition on an Event's timeout until it holds; fail the test after `within`."""
    tick = threading.Event()
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        tick.wait(0.005)


@pytest.mark.solo  # it measures the rate's spacing: under a loaded parallel run it is noise
def test_a_stalled_request_does_not_blind_the_monitor(app: StallApp, probe: HttpProbe) -> None:
    app.stall_next = 1  # the monitor's first request waits 3 s, every other answers at once
    every = 0.1
    with probe.monitor(every=every) as monitor:
        wait_until(
            lambda: any(s.latency >= STALL * 0.9 for s in monitor.samples),
            what="the stalled request's answer",
            within=STALL + 5,
        )
    samples = monitor.samples
    stalled = samples[0]
    assert stalled.ok
    assert stalled.latency >= STALL * 0.95
    stall_ends = stalled.started + stalled.latency
    during = [s for s in samples[1:] if s.started < stall_ends]
    # Samples kept coming at the rate while the stalled request was in flight.
    assert len(during) >= STALL / every - 3
    assert all(s.ok and s.latency < 0.5 for s in during)
    starts = [s.started for s in [stalled, *during]]
    assert all(every * 0.5 <= b - a < every + JITTER for a, b in itertools.pairwise(starts))
    assert stalled.scheduled is not None
    for k, sample in enumerate([stalled, *during]):
        assert sample.scheduled == pytest.approx(stalled.scheduled + k * every, abs=1e-6)
    # The stalled one and the quick ones beside it: one at a time, unless a quick one took
    # longer than the rate on a loaded machine.
    slowest = max(s.latency for s in during)
    assert 2 <= monitor.peak_in_flight <= 2 + math.ceil(slowest / every)
    assert monitor.availability == 1.0
    assert monitor.outages == []
    assert monitor.latency_percentiles["p99"] >= STALL * 0.95  # the stall shows in the figures


def test_assert_ok_inside_a_monitor_block_does_not_wait_for_it(
    app: StallApp, probe: HttpProbe
) -> None:
    app.stall_next = 1
    with probe.monitor(every=0.2) as monitor:
        assert app.stalled.wait(5), "the monitor's first request never arrived"
        began = time.monotonic()
        sample = probe.assert_ok(within=2)
        assert probe.check().ok
        took = time.monotonic() - began
        in_flight_meanwhile = monitor.peak_in_flight
        app.release.set()  # end the stall: nothing more to learn from it
    assert sample.ok
    assert took < 0.5  # not the 3 s the monitor's request was stalled
    assert in_flight_meanwhile >= 1
    assert monitor.samples[0].latency < STALL  # released early, answered ok
    assert monitor.samples[0].ok


def test_a_full_pool_records_overload_samples(app: StallApp, probe: HttpProbe) -> None:
    app.stall_next = 10_000  # everything stalls until released
    with probe.monitor(every=0.05, max_in_flight=2) as monitor:
        wait_until(lambda: monitor.errors.get("overload", 0) >= 3, what="3 overload samples")
        app.release.set()
        released = time.monotonic()
        wait_until(
            lambda: sum(s.ok and s.started > released for s in monitor.samples) >= 2,
            what="2 ok samples after the release",
        )
    samples = monitor.samples
    overloads = [s for s in samples if s.error == "overload"]
    assert len(overloads) >= 3
    for sample in overloads:
        assert (sample.ok, sample.status, sample.latency) == (False, None, 0.0)
        assert sample.detail == "not sent: 2 requests already in flight (max_in_flight=2)"
        assert sample.scheduled is not None
    first_two = samples[:2]
    assert all(s.ok and s.error is None for s in first_two)  # sent, then answered on release
    assert monitor.peak_in_flight == 2
    assert monitor.max_in_flight == 2
    assert monitor.errors == {"overload": len(overloads)}
    [outage] = monitor.outages
    assert outage.kinds == {"overload": len(overloads)}
    assert monitor.recovered
    # Overload samples sent nothing, so they have no latency to count.
    assert monitor.latency_percentiles["p50"] > 0
    assert f"overload {len(overloads)}" in str(monitor)
    summary = monitor.summary()
    assert (summary["max_in_flight"], summary["peak_in_flight"]) == (2, 2)


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"])
def test_invalid_max_in_flight(probe: HttpProbe, value: Any) -> None:
    with pytest.raises(
        ChaosConfigError, match=rf"^max_in_flight={value!r} must be an integer >= 1"
    ):
        probe.monitor(every=0.1, max_in_flight=value)


@pytest.mark.parametrize(
    ("timeout", "every", "expected"),
    [(2.0, 0.2, 11), (0.1, 0.03, 5), (1.0, 1.0, 2), (0.5, 2.0, 2), (30.0, 0.1, 32)],
)
def test_default_max_in_flight(timeout: float, every: float, expected: int) -> None:
    assert default_max_in_flight(timeout, every) == expected
