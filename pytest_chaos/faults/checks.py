"""Argument checks shared by the fault verbs and their markers (pure: no cluster access).

Each raises :class:`~pytest_chaos.errors.ChaosConfigError` naming the argument and the fix, so
a marker fails at collection with the same words a fixture call fails with at run time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pytest_chaos.errors import ChaosConfigError

#: Taint effects Kubernetes knows.
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
#: Directions of a network partition.
DIRECTIONS = ("ingress", "egress", "both")

_QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def check_name(argument: str, value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ChaosConfigError(f"{argument}={value!r} must be a non-empty string")
    return value


def check_names(argument: str, value: object, what: str) -> list[str]:
    """One name or a non-empty list of them, each a non-empty string; duplicates dropped."""
    names = [value] if isinstance(value, str) else value
    if (
        not isinstance(names, list | tuple)
        or not names
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise ChaosConfigError(f"{argument}={value!r} must be a {what} or a non-empty list of them")
    return list(dict.fromkeys(str(n) for n in names))


def check_percent(value: object, *, argument: str = "percent") -> float:
    """A number from 0 to 100 (a percentage of requests, nodes...)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ChaosConfigError(f"{argument}={value!r} must be a number from 0 to 100")
    return float(value)


def check_http_status(value: object) -> int:
    """An HTTP status an abort can answer with (200-599)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ChaosConfigError(
            f"status={value!r} must be an HTTP status from 200 to 599 (e.g. 503)"
        )
    return value


def check_count(value: object, *, argument: str = "count") -> int:
    """A whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ChaosConfigError(f"{argument}={value!r} must be a whole number >= 1")
    return value


def check_taint(key: object, value: object, effect: object) -> tuple[str, str | None, str]:
    """A taint Kubernetes accepts: a qualified key, a label-like value, a known effect."""
    if not isinstance(key, str) or not _QUALIFIED_NAME.match(key) or len(key) > 316:
        raise ChaosConfigError(
            f"key={key!r} must be a taint key like 'chaos.pytest.dev/down' "
            "(an optional DNS prefix and '/', then letters, digits, '-', '_', '.')"
        )
    if value is not None and (
        not isinstance(value, str) or not _LABEL_VALUE.match(value) or len(value) > 63
    ):
        raise ChaosConfigError(
            f"value={value!r} must be a label value (up to 63 letters, digits, '-', '_', '.') "
            "or None"
        )
    if effect not in TAINT_EFFECTS:
        raise ChaosConfigError(
            f"effect={effect!r} is not a taint effect Kubernetes knows; use one of "
            f"{', '.join(TAINT_EFFECTS)}"
        )
    assert isinstance(effect, str)
    return key, value, effect


def check_direction(value: object) -> str:
    """``ingress``, ``egress`` or ``both``."""
    if value not in DIRECTIONS:
        raise ChaosConfigError(f"direction={value!r} must be one of {', '.join(DIRECTIONS)}")
    assert isinstance(value, str)
    return value


def check_header(value: object) -> tuple[str, str] | None:
    """``None``, ``"name"`` (any value), ``"name=value"`` or a ``(name, value)`` pair."""
    if value is None:
        return None
    if isinstance(value, str):
        name, _, wanted = value.partition("=")
    elif isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, str) for v in value):
        name, wanted = str(value[0]), str(value[1])
    else:
        raise ChaosConfigError(
            f"header={value!r} must be 'x-chaos-test' (any value), 'x-chaos-test=on' or a "
            "(name, value) pair"
        )
    if not _HEADER_NAME.match(name):
        raise ChaosConfigError(f"header={value!r}: {name!r} is not a valid HTTP header name")
    return name.lower(), wanted


def cpu_millicores(value: object, *, argument: str = "cpu") -> int:
    """A CPU amount as Kubernetes writes it (``1``, ``0.5``, ``500m``) in millicores."""
    quantity = _quantity(value, argument, "a CPU amount like 1, 0.5 or '500m'")
    number, suffix = quantity
    if suffix not in ("", "m"):
        raise ChaosConfigError(f"{argument}={value!r} must be a CPU amount like 1, 0.5 or '500m'")
    millicores = int(number if suffix == "m" else number * 1000)
    if millicores < 1:
        raise ChaosConfigError(f"{argument}={value!r} must be at least 1m")
    return millicores


def memory_bytes(value: object, *, argument: str = "memory") -> int:
    """A memory amount as Kubernetes writes it (``'256Mi'``, ``'1G'``, bytes) in bytes."""
    number, suffix = _quantity(value, argument, "a memory amount like '256Mi' or '1Gi'")
    if suffix == "m":
        raise ChaosConfigError(f"{argument}={value!r}: 'm' is milli; did you mean 'Mi'?")
    factor = _BINARY.get(suffix) or _DECIMAL.get(suffix) or 1
    amount = int(number * factor)
    if amount < 1:
        raise ChaosConfigError(f"{argument}={value!r} must be at least 1 byte")
    return amount


def _quantity(value: object, argument: str, example: str) -> tuple[float, str]:
    if isinstance(value, bool):
        raise ChaosConfigError(f"{argument}={value!r} must be {example}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ChaosConfigError(f"{argument}={value!r} must be {example}, above zero")
        return float(value), ""
    if isinstance(value, str):
        found = _QUANTITY.match(value.strip())
        if found:
            return float(found.group(1)), found.group(3) or ""
    raise ChaosConfigError(f"{argument}={value!r} must be {example}")
