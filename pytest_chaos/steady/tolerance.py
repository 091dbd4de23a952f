"""What a value must be, as Chaos Toolkit's tolerances say it: exact, a range, a regex, a callable.

* an exact value: equal, and of the same kind (``True`` is not ``1``, ``"3"`` is not ``3``);
* ``range(a, b)`` (Python's: a <= value < b, in steps) or a ``(low, high)`` tuple (low <= value
  <= high, floats too) for numbers;
* a compiled regex for strings (``re.search``);
* a predicate: a callable taking the value and returning True.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pytest_chaos.errors import ChaosConfigError


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: No ``expected=`` given.
UNSET: Final = _Unset()


@dataclass(frozen=True, slots=True)
class Tolerance:
    """A check of one value, and its words (``"== 3"``, ``"in [2, 5]"``...)."""

    accepts: Callable[[Any], bool]
    text: str

    def judge(self, value: Any) -> bool:
        """Whether value is tolerated (a predicate that raises does not tolerate it)."""
        try:
            return self.accepts(value) is True
        except Exception:
            return False


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def tolerance(expected: Any = UNSET, predicate: Callable[[Any], bool] | None = None) -> Tolerance:
    """The Tolerance of ``expected=`` or ``predicate=`` (exactly one of them)."""
    if predicate is not None:
        if expected is not UNSET:
            raise ChaosConfigError(
                f"expected={expected!r} and predicate={predicate!r} were both given; give one"
            )
        if not callable(predicate):
            raise ChaosConfigError(
                f"predicate={predicate!r} is not callable; pass a function taking the value"
            )
        name = getattr(predicate, "__qualname__", None) or repr(predicate)
        return Tolerance(predicate, f"accepted by {name}")
    if expected is UNSET:
        raise ChaosConfigError(
            "neither expected= nor predicate= was given; say what the value must be "
            "(e.g. expected=3, expected=(2, 5), expected=re.compile('^v1'), predicate=callable)"
        )
    if isinstance(expected, range):
        if not expected:
            raise ChaosConfigError(f"expected={expected!r} is an empty range")
        return Tolerance(
            lambda v: _number(v) and float(v).is_integer() and int(v) in expected,
            f"in {expected!r}",
        )
    if isinstance(expected, tuple):
        if len(expected) != 2 or not all(_number(b) for b in expected):
            raise ChaosConfigError(
                f"expected={expected!r} is a tuple but not a (low, high) pair of numbers; "
                "use (2, 5) for 2 <= value <= 5, or a list for an exact list value"
            )
        low, high = expected
        if low > high:
            raise ChaosConfigError(f"expected={expected!r}: low {low} is above high {high}")
        return Tolerance(lambda v: _number(v) and low <= v <= high, f"in [{low}, {high}]")
    if isinstance(expected, re.Pattern):
        if not isinstance(expected.pattern, str):
            raise ChaosConfigError(
                f"expected={expected!r} is a bytes pattern; compile a str pattern "
                "(re.compile(r'...'))"
            )
        return Tolerance(
            lambda v: isinstance(v, str) and expected.search(v) is not None,
            f"matching {expected.pattern!r}",
        )
    if callable(expected):
        raise ChaosConfigError(
            f"expected={expected!r} is callable; pass it as predicate= to have it judge the value"
        )
    return Tolerance(lambda v: _same(v, expected), f"== {expected!r}")


def _same(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(value) is type(expected) and value == expected
    if _number(expected):
        return _number(value) and value == expected
    return bool(type(value) is type(expected) and value == expected)
