from __future__ import annotations

import time

import pytest

from pytest_chaos.errors import ChaosConfigError, NotSteadyError
from pytest_chaos.steady.eventually import eventually


class Calls:
    """A check that fails with AssertionError until its n-th call, counting its calls."""

    def __init__(self, passes_on: int = 1) -> None:
        self.passes_on = passes_on
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        if self.count < self.passes_on:
            raise AssertionError(f"call {self.count} is too early")
        return f"passed on call {self.count}"


def test_returns_what_fn_returns() -> None:
    check = Calls()
    assert eventually(check, within=1, every=0.01) == "passed on call 1"
    assert check.count == 1


def test_retries_assertion_errors_until_fn_passes() -> None:
    check = Calls(passes_on=3)
    start = time.monotonic()
    assert eventually(check, within=2, every=0.02) == "passed on call 3"
    assert check.count == 3
    assert time.monotonic() - start >= 2 * 0.02


def test_reraises_the_last_assertion_error_with_the_attempt_count() -> None:
    check = Calls(passes_on=10**6)
    with pytest.raises(
        AssertionError,
        match=r"^call (\d+) is too early \(still failing after \1 attempts over 0\.[23]s\)$",
    ) as raised:
        eventually(check, within=0.2, every=0.05)
    assert type(raised.value) is AssertionError
    assert str(raised.value).startswith(f"call {check.count} is too early")  # the last one
    assert 4 <= check.count <= 6  # at 0, 50, 100, 150, 200ms (stop_after_delay may add one)


def test_the_message_of_a_rewritten_assert_is_extended() -> None:
    def check() -> None:
        value = 1
        assert value == 2

    with pytest.raises(
        AssertionError, match=r"assert 1 == 2(?s:.*)\(still failing after 1 attempt "
    ):
        eventually(check, within=0, every=0.01)


def test_an_assertion_error_without_message() -> None:
    def check() -> None:
        raise AssertionError

    with pytest.raises(AssertionError, match=r"^still failing after 1 attempt over 0\.0s$"):
        eventually(check, within=0)


def test_subclasses_of_assertion_error_are_retried_and_kept() -> None:
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1
        raise NotSteadyError(f"not steady ({calls})")

    with pytest.raises(NotSteadyError, match=r"^not steady \((\d+)\) \(still failing after \1 "):
        eventually(check, within=0.05, every=0.01)
    assert calls > 1


def test_other_exceptions_propagate_at_once() -> None:
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise AssertionError("not yet")
        raise ValueError("a bug, not a state")

    with pytest.raises(ValueError, match=r"^a bug, not a state$"):
        eventually(check, within=5, every=0.01)
    assert calls == 3


def test_accepts_duration_strings() -> None:
    check = Calls(passes_on=10**6)
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"still failing after \d+ attempts"):
        eventually(check, within="100ms", every="20ms")
    assert 0.1 <= time.monotonic() - start < 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"within": "soon"}, r"^within='soon' is not a duration"),
        ({"within": -1}, r"^within=-1 must be a finite, non-negative duration"),
        ({"every": "1 second"}, r"^every='1 second' is not a duration \(did you mean \"1s\"\?\)"),
        ({"every": [1]}, r"^every=\[1\] \(list\) is not a duration"),
    ],
)
def test_rejects_bad_durations(kwargs: dict[str, object], message: str) -> None:
    check = Calls()
    with pytest.raises(ChaosConfigError, match=message):
        eventually(check, **kwargs)
    assert check.count == 0
