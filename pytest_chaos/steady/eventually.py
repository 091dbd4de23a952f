"""Retry a block of assertions until it passes: ``eventually(lambda: check_something())``.

Only AssertionError (including NotSteadyError and pytest's rewritten ``assert``) means "not yet";
any other exception is a bug or a broken environment and propagates at once. At the deadline the
last AssertionError is raised again, its message telling how long it kept failing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from pytest_chaos.durations import Duration, as_seconds

T = TypeVar("T")

log = logging.getLogger(__name__)


def eventually(fn: Callable[[], T], *, within: Duration = 30, every: Duration = 0.2) -> T:
    """Call fn until it returns without raising AssertionError; return what it returned.

    Args:
        fn: the check, e.g. a function of ``assert`` statements or ``lambda: probe.assert_ok()``.
        within: give up after this long (fn is always called at least once).
        every: the pause between calls.

    Raises:
        AssertionError: the last one fn raised, its message extended by
            ``" (still failing after N attempts over X.Xs)"``.
        ChaosConfigError: within or every is not a valid duration.
    """
    deadline = as_seconds(within, name="within")
    pause = as_seconds(every, name="every")
    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return fn()

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(deadline),
        wait=tenacity.wait_fixed(pause),
        retry=tenacity.retry_if_exception_type(AssertionError),
        before_sleep=tenacity.before_sleep_log(log, logging.DEBUG),
        reraise=True,
    )
    started = time.monotonic()
    try:
        return retrying(attempt)
    except AssertionError as exc:
        elapsed = time.monotonic() - started
        noun = "attempt" if attempts == 1 else "attempts"
        note = f"still failing after {attempts} {noun} over {elapsed:.1f}s"
        message = str(exc)
        exc.args = (f"{message} ({note})" if message else note,)
        raise
