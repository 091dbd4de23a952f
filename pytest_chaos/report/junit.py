"""A test's chaos facts as junit properties (``--junitxml``): faults, targets and monitors.

One name per fact, so CI dashboards can chart them: ``chaos.fault``, ``chaos.targets``,
``chaos.availability``, ``chaos.time_to_recover``, ``chaos.min_ready``, ``chaos.unready_time``
(a monitor after the first gets a ``.1``, ``.2``... suffix).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_chaos.report.timeline import Timeline

Property = tuple[str, object]


def fault_properties(timeline: Timeline | None) -> list[Property]:
    """Each injected fault and its targets, in the order they were injected."""
    found: list[Property] = []
    for event in timeline.events if timeline is not None else []:
        if event.phase == "inject":
            found.append(("chaos.fault", event.text))
            if event.data.get("targets"):
                found.append(("chaos.targets", ", ".join(event.data["targets"])))
    return found


def monitor_properties(
    http_monitors: Iterable[Any], object_monitors: Iterable[Any]
) -> list[Property]:
    """What each HTTP and object monitor measured."""
    found: list[Property] = []
    for index, monitor in enumerate(http_monitors):
        suffix = f".{index}" if index else ""
        found.append((f"chaos.availability{suffix}", round(monitor.availability, 4)))
        if monitor.time_to_recover is not None:
            found.append((f"chaos.time_to_recover{suffix}", round(monitor.time_to_recover, 3)))
    for index, watched in enumerate(object_monitors):
        suffix = f".{index}" if index else ""
        if watched.min_ready is not None:
            found.append((f"chaos.min_ready{suffix}", watched.min_ready))
        found.append((f"chaos.unready_time{suffix}", round(watched.unready_time, 3)))
    return found
