"""A request that times out is unavailability, in a monitor and in a point check alike.

Against a real server on 127.0.0.1 whose first requests stall past the probe's timeout: each of
them must be a failed sample of kind ``timeout`` and lower the availability; the requests after
them, answered at once, are ok. (A monitor that counted timed-out requests as available would
report 100 % through a total outage of a hung backend.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_chaos.steady.http import HttpProbe
from tests.unit.test_http_monitor import StallApp, wait_until

TIMEOUT = 0.3
STALLED = 4


@pytest.fixture
def app() -> Iterator[StallApp]:
    fake = StallApp()
    yield fake
    fake.stop()


def test_timed_out_requests_count_as_unavailable_in_a_monitor(app: StallApp) -> None:
    app.stall_next = STALLED
    with (
        HttpProbe(app.url, timeout=TIMEOUT) as probe,
        probe.monitor(every=0.05) as monitor,
    ):
        wait_until(
            lambda: sum(s.error == "timeout" for s in monitor.samples) >= STALLED
            and sum(s.ok for s in monitor.samples) >= 5,
            what=f"{STALLED} timed-out requests and 5 answered ones",
            within=10,
        )
    samples = monitor.samples
    timed_out = [s for s in samples if s.error == "timeout"]
    assert len(timed_out) == STALLED
    assert all(not s.ok and s.status is None for s in timed_out)
    assert all(s.latency >= TIMEOUT * 0.9 for s in timed_out)
    expected = sum(s.ok for s in samples) / len(samples)
    assert monitor.availability == pytest.approx(expected)
    assert monitor.availability <= (len(samples) - STALLED) / len(samples)
    assert monitor.outages, "the stalled requests are an outage"
    assert monitor.outages[0].kinds.get("timeout", 0) >= 1


def test_a_timed_out_point_check_is_not_ok(app: StallApp) -> None:
    app.stall_next = 1
    with HttpProbe(app.url, timeout=TIMEOUT) as probe:
        first = probe.check()
        second = probe.check()
    assert (first.ok, first.error) == (False, "timeout")
    assert second.ok
