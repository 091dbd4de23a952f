"""Durations as users write them: ``2``, ``1.5``, ``"2s"``, ``"1m30s"``, ``"250ms"``, timedelta.

Strings use Go's duration syntax (what Kubernetes and Istio use, e.g. ``fixedDelay: 2s``): one or
more ``<number><unit>`` parts with units ``h``, ``m``, ``s``, ``ms``, ``us``/``µs``, ``ns``.
Anything else is refused with a message naming the argument and showing what is accepted.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import TypeAlias

from pytest_chaos.errors import ChaosConfigError

Duration: TypeAlias = float | int | str | timedelta

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_ACCEPTED = 'a number of seconds (2, 1.5), a string like "2s", "1m30s" or "250ms", or a timedelta'


def as_seconds(value: object, *, name: str = "duration") -> float:
    """The duration in seconds; raise ChaosConfigError naming the argument when invalid."""
    if isinstance(value, bool):
        raise ChaosConfigError(f"{name}={value!r} is not a duration; use {_ACCEPTED}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse(value.strip(), name)
    else:
        raise ChaosConfigError(
            f"{name}={value!r} ({type(value).__name__}) is not a duration; use {_ACCEPTED}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ChaosConfigError(f"{name}={value!r} must be a finite, non-negative duration")
    return seconds


def _parse(text: str, name: str) -> float:
    if re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", text):
        return float(text)
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        hint = ""
        if re.fullmatch(r"\d+(?:\.\d*)?\s*(sec|secs|seconds?|mins?|minutes?)", text):
            number = re.match(r"[\d.]+", text)
            unit = "s" if text.rstrip("s").endswith(("sec", "second")) else "m"
            hint = f' (did you mean "{number.group(0) if number else ""}{unit}"?)'
        raise ChaosConfigError(f"{name}={text!r} is not a duration{hint}; use {_ACCEPTED}")
    return total


def format_seconds(seconds: float) -> str:
    """A short human form: ``250ms``, ``2s``, ``1m30s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes < 1:
        return f"{rest:g}s"
    return f"{int(minutes)}m{rest:g}s" if rest else f"{int(minutes)}m"
