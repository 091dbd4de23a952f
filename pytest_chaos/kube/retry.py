"""The one retry policy for Kubernetes API calls.

Transient failures (429 Too Many Requests, 5xx, connection resets, timeouts, and 409 conflicts on
optimistic updates) are retried with exponential backoff and jitter until a deadline; they must
never surface as a resilience failure. Everything else is raised at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Default give-up time for one API call, in seconds.
DEFAULT_DEADLINE = 30.0


def is_transient(exc: BaseException, *, conflicts: bool = False) -> bool:
    """True when exc is a hiccup worth retrying (409 only when conflicts=True)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(exc, ApiException):
        return exc.status in TRANSIENT_STATUSES or (conflicts and exc.status == 409)
    return isinstance(exc, Urllib3Error | ConnectionError | TimeoutError)


def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call an API function, retrying transient failures for up to DEFAULT_DEADLINE seconds."""
    return retrying(fn, deadline=DEFAULT_DEADLINE)(*args, **kwargs)


def retrying(
    fn: Callable[P, T], *, deadline: float = DEFAULT_DEADLINE, conflicts: bool = False
) -> Callable[P, T]:
    """Wrap fn in the retry policy (409 retried only when conflicts=True: re-read first!)."""
    import tenacity

    def retry_on(exc: BaseException) -> bool:
        return is_transient(exc, conflicts=conflicts)

    policy = tenacity.Retrying(
        stop=tenacity.stop_after_delay(deadline),
        wait=tenacity.wait_random_exponential(multiplier=0.05, max=2.0),
        retry=tenacity.retry_if_exception(retry_on),
        before_sleep=tenacity.before_sleep_log(log, logging.DEBUG),
        reraise=True,
    )

    def wrapped(*args: P.args, **kwargs: P.kwargs) -> T:
        return policy(fn, *args, **kwargs)

    return wrapped


def describe(exc: BaseException) -> str:
    """A one-line account of an API error: status, reason and the server's message."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        import json

        message = ""
        try:
            message = json.loads(exc.body or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = str(exc.body or "")[:300]
        return f"{exc.status} {exc.reason}: {message}".strip()
    return f"{type(exc).__name__}: {exc}"
