"""The junit properties a test's chaos facts become (names CI dashboards chart)."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_chaos.report.junit import fault_properties, monitor_properties
from pytest_chaos.report.timeline import Timeline


@dataclass
class HttpMonitor:
    availability: float
    time_to_recover: float | None


@dataclass
class ObjectMonitor:
    min_ready: int | None
    unready_time: float


def test_each_injected_fault_and_its_targets_in_order() -> None:
    timeline = Timeline("tests/test_app.py::test_x")
    timeline.add("inject", "pods.kill app=web", targets=["web-1", "web-2"])
    timeline.add("revert", "pods.kill app=web")
    timeline.add("inject", "network.cut app=db")

    assert fault_properties(timeline) == [
        ("chaos.fault", "pods.kill app=web"),
        ("chaos.targets", "web-1, web-2"),
        ("chaos.fault", "network.cut app=db"),
    ]
    assert fault_properties(None) == []


def test_monitors_after_the_first_get_a_suffix_and_absent_facts_are_left_out() -> None:
    found = monitor_properties(
        [HttpMonitor(0.98765, 1.23456), HttpMonitor(1.0, None)],
        [ObjectMonitor(2, 0.5), ObjectMonitor(None, 0.0)],
    )

    assert found == [
        ("chaos.availability", 0.9877),
        ("chaos.time_to_recover", 1.235),
        ("chaos.availability.1", 1.0),
        ("chaos.min_ready", 2),
        ("chaos.unready_time", 0.5),
        ("chaos.unready_time.1", 0.0),
    ]
