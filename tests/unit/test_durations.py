from __future__ import annotations

from datetime import timedelta

import pytest

from pytest_chaos.durations import as_seconds, format_seconds
from pytest_chaos.errors import ChaosConfigError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (2, 2.0),
        (1.5, 1.5),
        ("2", 2.0),
        ("2s", 2.0),
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("100us", 0.0001),
        (timedelta(minutes=1, seconds=30), 90.0),
        (0, 0.0),
    ],
)
def test_accepted_durations(value: object, seconds: float) -> None:
    assert as_seconds(value, name="within") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", r"within='soon' is not a duration; use a number of seconds"),
        ("2 seconds", r'within=\'2 seconds\' is not a duration \(did you mean "2s"\?\)'),
        ("5min", r'\(did you mean "5m"\?\)'),
        ("1m30", r"within='1m30' is not a duration"),
        ("", r"within='' is not a duration"),
        (-1, r"within=-1 must be a finite, non-negative duration"),
        (float("inf"), r"must be a finite"),
        (True, r"within=True is not a duration"),
        ([2], r"within=\[2\] \(list\) is not a duration"),
    ],
)
def test_refused_durations_name_the_argument(value: object, message: str) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        as_seconds(value, name="within")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (2, "2s"), (90, "1m30s"), (120, "2m"), (1.5, "1.5s")]
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
