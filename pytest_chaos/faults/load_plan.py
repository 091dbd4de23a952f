"""chaos.load.http's pure parts: its checked arguments, and the summary its program reports.

No cluster access: the marker ``chaos_load_http`` checks its arguments with
:func:`check_load_http` at collection, with the words the verb uses at run time.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pytest_chaos.durations import as_seconds, format_seconds
from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.faults.checks import check_count, check_name

#: The load generator in the toolbox image (on its PATH).
LOAD_COMMAND = "pytest-chaos-load"
#: Beyond duration + timeout: how long the pod may live, and wait() waits, at most.
MARGIN = 30.0
#: Requests in flight at most (each is a goroutine and a connection).
MAX_CONCURRENCY = 1000
#: The error kinds a summary counts.
ERROR_KINDS = ("timeout", "connect", "dns", "other")

_METHOD = re.compile(r"^[A-Za-z]+$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


# --- arguments (pure) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadArgs:
    """``chaos.load.http``'s arguments, checked (durations in seconds)."""

    url: str
    namespace: str
    rate: float | None
    concurrency: int
    duration: float
    method: str
    headers: tuple[tuple[str, str], ...]
    timeout: float
    node: str | None
    image: str | None
    within: float

    def argv(self) -> list[str]:
        """The load generator's command line."""
        argv = [
            LOAD_COMMAND,
            "-url", self.url,
            "-method", self.method,
            "-concurrency", str(self.concurrency),
            "-duration", _go_duration(self.duration),
            "-timeout", _go_duration(self.timeout),
        ]  # fmt: skip
        if self.rate is not None:
            argv += ["-rate", f"{self.rate:g}"]
        for name, value in self.headers:
            argv += ["-header", f"{name}: {value}"]
        return argv

    @property
    def lifetime(self) -> int:
        """The pod's activeDeadlineSeconds: the load, its last timeout and a margin."""
        return math.ceil(self.duration + self.timeout + MARGIN)

    def describe(self) -> str:
        """``GET http://web/ at 50/s (10 at a time) for 3s``."""
        pace = f"at {self.rate:g}/s" if self.rate is not None else "as fast as it can"
        return (
            f"{self.method} {self.url} {pace} ({self.concurrency} at a time) for "
            f"{format_seconds(self.duration)}"
        )


def _go_duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def check_load_http(
    url: object,
    *,
    namespace: object,
    rate: object = None,
    concurrency: object = 10,
    duration: object = "30s",
    method: object = "GET",
    headers: object = None,
    timeout: object = "2s",
    node: object = None,
    image: object = None,
    within: object = 60,
) -> LoadArgs:
    """Check ``chaos.load.http``'s arguments (the ``chaos_load_http`` marker's); return them."""
    return LoadArgs(
        url=_check_url(url),
        namespace=check_name("namespace", namespace),
        rate=_check_rate(rate),
        concurrency=_check_concurrency(concurrency),
        duration=_positive(duration, "duration", "'30s'"),
        method=_check_method(method),
        headers=_check_headers(headers),
        timeout=_positive(timeout, "timeout", "'2s'"),
        node=None if node is None else check_name("node", node),
        image=None if image is None else check_name("image", image),
        within=as_seconds(within, name="within"),
    )


def _check_url(url: object) -> str:
    example = "e.g. 'http://web.shop/' or 'http://web:8080/health'"
    if not isinstance(url, str) or not url:
        raise ChaosConfigError(f"url={url!r} must be a URL string ({example})")
    if any(c.isspace() for c in url):
        raise ChaosConfigError(f"url={url!r} contains whitespace; quote it ({example})")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ChaosConfigError(f"url={url!r} is not a valid URL: {exc} ({example})") from None
    if parts.scheme not in ("http", "https"):
        raise ChaosConfigError(f"url={url!r} must start with http:// or https:// ({example})")
    if not parts.hostname:
        raise ChaosConfigError(f"url={url!r} has no host ({example})")
    return url


def _check_rate(rate: object) -> float | None:
    if rate is None:
        return None
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not math.isfinite(rate)
        or rate <= 0
    ):
        raise ChaosConfigError(
            f"rate={rate!r} must be a positive number of requests per second (e.g. 50), or "
            "None for as fast as concurrency allows"
        )
    return float(rate)


def _check_concurrency(concurrency: object) -> int:
    value = check_count(concurrency, argument="concurrency")
    if value > MAX_CONCURRENCY:
        raise ChaosConfigError(
            f"concurrency={concurrency!r} is too many requests in flight for one pod; use at "
            f"most {MAX_CONCURRENCY}"
        )
    return value


def _positive(value: object, argument: str, example: str) -> float:
    seconds = as_seconds(value, name=argument)
    if seconds < 0.001:
        raise ChaosConfigError(f"{argument}={value!r} must be positive (e.g. {example})")
    return seconds


def _check_method(method: object) -> str:
    if not isinstance(method, str) or not _METHOD.match(method):
        raise ChaosConfigError(f"method={method!r} is not an HTTP method (e.g. 'GET' or 'POST')")
    return method.upper()


def _check_headers(headers: object) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    if not isinstance(headers, Mapping):
        raise ChaosConfigError(
            f"headers={headers!r} is not a mapping; use a dict of header names to values "
            "(e.g. {'Host': 'web.example'})"
        )
    checked = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ChaosConfigError(f"headers: {name!r} is not a valid HTTP header name")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise ChaosConfigError(
                f"headers[{name!r}]={value!r} must be a string on one line (no CR or LF)"
            )
        checked.append((name, value))
    return tuple(checked)


# --- the summary (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What a load got, as its program reported it.

    Attributes:
        requests: requests that got an answer or failed (not those cancelled at the end).
        ok: answers with a status below 400 (redirects are not followed).
        status: answers by status code.
        errors: failed requests by kind: ``timeout``, ``connect`` (refused, unreachable),
            ``dns`` (the name did not resolve), ``other``.
        error_samples: one error message per kind seen.
        rate: achieved requests per second.
        elapsed: seconds from the first request to the end of the last.
        latency_percentiles: ``p50``, ``p95``, ``p99`` of the answers' latencies in seconds
            (nearest rank); {} when nothing answered.
        latency_max: the slowest answer in seconds (None when nothing answered).
        cancelled: requests in flight when the load was stopped (SIGTERM).
        interrupted: the load was stopped before its duration was over.
        raw: the JSON the program printed.
    """

    requests: int
    ok: int
    status: dict[int, int]
    errors: dict[str, int]
    error_samples: dict[str, str]
    rate: float
    elapsed: float
    latency_percentiles: dict[str, float]
    latency_max: float | None
    cancelled: int
    interrupted: bool
    raw: dict[str, Any] = field(repr=False)

    @property
    def failed(self) -> int:
        """Requests that did not get an ok answer (errors and statuses of 400 or more)."""
        return self.requests - self.ok

    @property
    def error_count(self) -> int:
        """Requests that got no answer at all."""
        return sum(self.errors.values())

    def describe(self) -> str:
        """``150 requests in 3.0s (50.0/s): 150 ok; 200: 150; p50 0.6ms p95 1.2ms p99 2.5ms``."""
        parts = [f"{self.ok} ok"]
        if self.status:
            parts.append(", ".join(f"{c}: {n}" for c, n in sorted(self.status.items())))
        errors = {k: n for k, n in self.errors.items() if n}
        if errors:
            parts.append("errors " + ", ".join(f"{k}: {n}" for k, n in errors.items()))
        if self.latency_percentiles:
            parts.append(
                " ".join(f"{k} {v * 1000:.1f}ms" for k, v in self.latency_percentiles.items())
            )
        text = f"{self.requests} requests in {self.elapsed:.1f}s ({self.rate:.1f}/s): " + "; ".join(
            parts
        )
        if self.cancelled:
            text += f"; {self.cancelled} cancelled"
        return text + (" (interrupted)" if self.interrupted else "")


def parse_summary(text: str) -> LoadSummary:
    """The summary in the load program's last JSON line; ValueError when there is none."""
    lines = [line for line in text.strip().splitlines() if line.strip().startswith("{")]
    if not lines:
        raise ValueError(f"no JSON summary in {_clip(text)!r}")
    try:
        raw = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"the summary is not JSON ({exc}): {_clip(lines[-1])!r}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"the summary is not a JSON object: {_clip(lines[-1])!r}")
    try:
        latency = raw.get("latency_ms") or {}
        return LoadSummary(
            requests=int(raw["requests"]),
            ok=int(raw["ok"]),
            status={int(code): int(n) for code, n in (raw.get("status") or {}).items()},
            errors={kind: int((raw.get("errors") or {}).get(kind, 0)) for kind in ERROR_KINDS},
            error_samples={str(k): str(v) for k, v in (raw.get("error_samples") or {}).items()},
            rate=float(raw["rate"]),
            elapsed=float(raw["elapsed_s"]),
            latency_percentiles={
                p: float(latency[p]) / 1000 for p in ("p50", "p95", "p99") if p in latency
            },
            latency_max=float(latency["max"]) / 1000 if "max" in latency else None,
            cancelled=int(raw.get("cancelled", 0)),
            interrupted=bool(raw.get("interrupted", False)),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"the summary lacks or garbles {exc}: {_clip(lines[-1])!r}") from None


def _clip(text: str, length: int = 300) -> str:
    return text if len(text) <= length else text[: length - 3] + "..."
