"""Interval arithmetic of object monitors: deviations, min ready, time not ok, lateness."""

from __future__ import annotations

from pytest_chaos.steady.readings import Reading, deviations, late, min_ready, unready_time


def reading(at: float, ready: int | None, ok: bool, seen: str = "") -> Reading:
    return Reading(at=at, wall=1000 + at, ready=ready, wanted=3, ok=ok, seen=seen or f"{ready}/3")


def test_a_run_of_bad_readings_is_one_deviation_ended_by_the_next_good_one() -> None:
    readings = [
        reading(0, 3, True),
        reading(1, 2, False),
        reading(2, 1, False, "1/3 ready: web-x Terminating"),
        reading(3, 2, False),
        reading(5, 3, True),
        reading(6, 2, False),
        reading(6.5, 3, True),
    ]
    first, second = deviations(readings, until=10)
    assert (first.start, first.end, first.duration) == (1, 5, 4)
    assert first.min_ready == 1
    assert first.seen == "1/3 ready: web-x Terminating"  # the worst reading's words
    assert (second.start, second.end, second.duration, second.min_ready) == (6, 6.5, 0.5, 2)
    assert unready_time([first, second]) == 4.5
    assert min_ready(readings) == 1
    assert late([first, second], within=1) == [first]
    assert late([first, second], within=4) == []


def test_an_open_deviation_lasts_until_the_moment_asked() -> None:
    [open_one] = deviations([reading(0, 3, True), reading(2, 0, False)], until=7)
    assert open_one.end is None
    assert open_one.duration == 5
    assert late([open_one], within=4.9) == [open_one]
    [never_before] = deviations([reading(2, 0, False)], until=1)  # until before it: 0 s, not <0
    assert never_before.duration == 0


def test_no_bad_reading_no_deviation() -> None:
    assert deviations([reading(0, 3, True), reading(1, 4, True)], until=2) == []
    assert deviations([], until=2) == []
    assert min_ready([]) is None
    assert unready_time([]) == 0


def test_readings_without_counts_keep_the_first_bad_ones_words() -> None:
    readings = [
        Reading(0, 0, None, None, False, "data.mode = 'red'"),
        Reading(1, 1, None, None, False, "data.mode = 'green'"),
        Reading(2, 2, None, None, True, "data.mode = 'blue'"),
    ]
    [dip] = deviations(readings, until=3)
    assert dip.min_ready is None
    assert dip.seen == "data.mode = 'red'"
    assert min_ready(readings) is None
