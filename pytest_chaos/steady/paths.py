"""JSONPath-style paths into an API object, for ``steady.object(...).assert_that(path, ...)``.

A small grammar of our own (no dependency), enough for what steady-state checks read::

    status.readyReplicas                        a field (the API's camelCase names)
    spec.containers[0].image                    an index (negative counts from the end)
    metadata.labels['app.kubernetes.io/name']   a key that holds dots or slashes ("..." too)
    status.conditions[?type=="Ready"].status    the first item whose field equals a value
    spec.containers[*].image                    every item (the path then reads a list)

A leading ``$.`` (or ``.``) is allowed. Filters compare with ``==`` or ``!=`` against a quoted
string, a number, ``true``, ``false`` or ``null``; their field may be dotted (``[?a.b=="x"]``)
and may start with ``@.`` as in JSONPath. A field, index or match that is absent reads as None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from pytest_chaos.errors import ChaosConfigError


@dataclass(frozen=True, slots=True)
class Key:
    """A field (or map key) by name."""

    name: str


@dataclass(frozen=True, slots=True)
class Index:
    """An item of a list by position."""

    index: int


@dataclass(frozen=True, slots=True)
class Match:
    """The first item of a list whose field (a dotted path) equals (or not) a value."""

    field: tuple[str, ...]
    value: Any
    equal: bool = True


@dataclass(frozen=True, slots=True)
class Every:
    """Every item of a list: the rest of the path is read from each."""


Step: TypeAlias = Key | Index | Match | Every

_NAME = re.compile(r"[A-Za-z_][\w\-]*")
_FILTER = re.compile(
    r"""\?\(?\s*(?:@\.)?(?P<field>[A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*)*)\s*"""
    r"""(?P<op>==|!=)\s*(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s\]\)]+)\s*\)?"""
)
_USAGE = (
    "use e.g. 'status.readyReplicas', 'spec.containers[0].image', "
    "\"metadata.labels['app.kubernetes.io/name']\" or 'status.conditions[?type==\"Ready\"].status'"
)


def parse_path(text: str, *, name: str = "path") -> tuple[Step, ...]:
    """The steps of a path; ChaosConfigError naming the argument and the position on a typo."""
    if not isinstance(text, str) or not text.strip():
        raise ChaosConfigError(f"{name}={text!r} is not a path; {_USAGE}")
    source = text.strip()
    if source.startswith("$"):
        source = source[1:]
    steps: list[Step] = []
    pos = 0
    expect_name = not source.startswith((".", "["))
    while pos < len(source):
        char = source[pos]
        if expect_name or char == ".":
            if char == ".":
                pos += 1
            found = _NAME.match(source, pos)
            if not found:
                raise _error(name, text, source, pos, "a field name")
            steps.append(Key(found.group()))
            pos = found.end()
            expect_name = False
        elif char == "[":
            close = _closing(source, pos)
            if close < 0:
                raise _error(name, text, source, pos, "a closing ']'")
            steps.append(_bracket(source[pos + 1 : close], name, text))
            pos = close + 1
        else:
            raise _error(name, text, source, pos, "'.' or '['")
    if not steps:
        raise ChaosConfigError(f"{name}={text!r} has no field; {_USAGE}")
    return tuple(steps)


def _closing(source: str, start: int) -> int:
    """The index of the ']' closing the bracket at start (quotes may hold ']')."""
    quote = ""
    pos = start + 1
    while pos < len(source):
        char = source[pos]
        if quote:
            if char == "\\":
                pos += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "]":
            return pos
        pos += 1
    return -1


def _bracket(inner: str, name: str, text: str) -> Step:
    body = inner.strip()
    if body == "*":
        return Every()
    if re.fullmatch(r"-?\d+", body):
        return Index(int(body))
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "'\"":
        return Key(_unquote(body))
    found = _FILTER.fullmatch(body)
    if found:
        field = tuple(found.group("field").split("."))
        return Match(field, _literal(found.group("value"), name, text), found.group("op") == "==")
    raise ChaosConfigError(
        f"{name}={text!r}: [{inner}] is not an index ([0]), a quoted key (['a.b/c']), "
        f'a filter ([?type=="Ready"]) or [*]; {_USAGE}'
    )


def _unquote(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _literal(value: str, name: str, text: str) -> Any:
    if value[0] in "'\"":
        return _unquote(value)
    try:
        return json.loads(value)
    except ValueError:
        raise ChaosConfigError(
            f"{name}={text!r}: {value} is not a quoted string, a number, true, false or null"
        ) from None


def _error(name: str, text: str, source: str, pos: int, wanted: str) -> ChaosConfigError:
    return ChaosConfigError(
        f"{name}={text!r}: expected {wanted} at {source[pos:]!r} (offset {pos}); {_USAGE}"
    )


def read_path(obj: Any, steps: Sequence[Step]) -> Any:
    """The value at the path in obj (dicts and lists as the API's JSON); None when absent."""
    current = obj
    for i, step in enumerate(steps):
        if current is None:
            return None
        if isinstance(step, Key):
            current = current.get(step.name) if isinstance(current, dict) else None
        elif isinstance(step, Index):
            if not isinstance(current, list) or not -len(current) <= step.index < len(current):
                return None
            current = current[step.index]
        elif isinstance(step, Match):
            if not isinstance(current, list):
                return None
            current = next((item for item in current if _matches(item, step)), None)
        else:
            if not isinstance(current, list):
                return None
            return [read_path(item, steps[i + 1 :]) for item in current]
    return current


def _matches(item: Any, step: Match) -> bool:
    value = read_path(item, [Key(k) for k in step.field])
    return (value == step.value) is step.equal


def render(steps: Sequence[Step]) -> str:
    """The path as text again (normalised), for messages."""
    out = ""
    for step in steps:
        if isinstance(step, Key):
            out += f".{step.name}" if _NAME.fullmatch(step.name) else f"[{step.name!r}]"
        elif isinstance(step, Index):
            out += f"[{step.index}]"
        elif isinstance(step, Match):
            out += (
                f"[?{'.'.join(step.field)}{'==' if step.equal else '!='}{json.dumps(step.value)}]"
            )
        else:
            out += "[*]"
    return out.lstrip(".")
