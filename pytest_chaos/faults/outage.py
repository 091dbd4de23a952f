"""Reverts that outlast an API outage: retry while the API server refuses, then leave it to cleanup.

One API call already retries hiccups for a while (``kube/retry.py``). A control plane that is
away for longer — restarted, its etcd electing a leader, its connections refused — must not
leave a fault in place because a revert gave up early: the revert of each record is retried as a
whole (every undo is idempotent) with backoff until ``--chaos-revert-timeout``. After that the
record stays in the ledger (locally and in the cluster) and the error says to run
``pytest-chaos cleanup``, which finishes it once the API is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from pytest_chaos.errors import ChaosError, RevertError
from pytest_chaos.kube.retry import describe, is_transient

T = TypeVar("T")

#: Longest pause between two attempts of one revert.
MAX_BACKOFF = 5.0


def refused_by_api(exc: BaseException) -> bool:
    """True when exc (or what caused it) is the API server refusing or failing, not a verdict.

    Connection refused or reset, timeouts, 5xx (an etcd leader change answers 500) and 429 are
    refusals; a conflict, a 404, a drift are answers.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if is_transient(current):
            return True
        if isinstance(current, ChaosError) and current.__cause__ is None:
            return False
        current = current.__cause__ or current.__context__
    return False


def through_outage(
    attempt: Callable[[], T],
    *,
    timeout: float,
    what: str,
    say: Callable[[str], object],
    pause: Callable[[float], object] | None = None,
) -> T:
    """Run attempt until it succeeds, retrying API refusals with backoff for up to timeout s.

    what names the revert in messages (``deployments.scale: Deployment shop/web``); say reports
    the first refusal (then one line when the API answers again). Past the timeout a
    RevertError says the ledger record stays for ``pytest-chaos cleanup``.
    """
    wait = pause or threading.Event().wait
    started = time.monotonic()
    delay = 0.1
    refused = 0
    while True:
        try:
            result = attempt()
        except Exception as exc:
            if not refused_by_api(exc):
                raise
            elapsed = time.monotonic() - started
            if elapsed + delay > timeout:
                raise RevertError(
                    f"{what}: the API server refused the revert for {elapsed:.0f}s "
                    f"(--chaos-revert-timeout={timeout:g}s; last: {describe(exc)}); the undo "
                    "record stays in the ledger: run `pytest-chaos cleanup` once the API is back"
                ) from exc
            if not refused:
                say(
                    f"{what}: the API server refuses ({describe(exc)}); retrying up to {timeout:g}s"
                )
            refused += 1
            wait(delay)
            delay = min(delay * 2, MAX_BACKOFF)
            continue
        if refused:
            say(f"{what}: the API server answers again after {time.monotonic() - started:.1f}s")
        return result
