"""Target selection: which objects a fault hits, decided without touching the cluster.

Three pure pieces that the fault injectors share:

* Kubernetes label selectors (``app=web,tier in (front, back),!canary``), parsed and checked
  here so a typo is a ``ChaosConfigError`` naming the argument, before any API call;
* modes that say how many of the matching objects to hit (``one``, ``all``, ``fixed``,
  ``fixed-percent``, ``random-max-percent``), drawn from a seeded ``random.Random`` so a failing
  run can be replayed with the same seed;
* the message for a selector that matched nothing, which shows what does exist nearby.

Pods are plain dicts as the Kubernetes API returns them (JSON), so a filter can run on a raw
list response without building client models.
"""

from __future__ import annotations

import difflib
import math
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar, cast, get_args

from pytest_chaos.errors import ChaosConfigError, TargetingError

T = TypeVar("T")

Mode = Literal["one", "all", "fixed", "fixed-percent", "random-max-percent"]
MODES: tuple[str, ...] = ("one", "all", "fixed", "fixed-percent", "random-max-percent")

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]
OPERATORS: tuple[str, ...] = get_args(Operator)

POD_PHASES: tuple[str, ...] = ("Pending", "Running", "Succeeded", "Failed", "Unknown")

_EXAMPLE: Final = "(example: 'app=web,tier!=db')"
_SYMBOLS: Final = frozenset({"==", "!=", "=", "!", "(", ")", ",", "<", ">"})
# Kubernetes' lexer: whitespace separates, these symbols stand alone, anything else is a word.
_LEXEME: Final = re.compile(r"\s*(?:(==|!=|=|!|\(|\)|,|<|>)|([^\s=!(),<>]+))")
_NAME: Final = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_PREFIX: Final = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_NAME_RULE: Final = (
    "at most 63 characters: letters, digits, '-', '_' and '.', "
    "starting and ending with a letter or digit"
)
_SHOWN: Final = 10


@dataclass(frozen=True, slots=True)
class Requirement:
    """One clause of a Kubernetes label selector, e.g. ``tier in (front, back)``.

    Attributes:
        key: The label key.
        operator: ``=`` (``==`` is parsed to it), ``!=``, ``in``, ``notin``, ``exists`` (a bare
            key) or ``!`` (the key is absent).
        values: One value for ``=`` and ``!=``, one or more for ``in`` and ``notin``, none for
            ``exists`` and ``!``.
    """

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ValueError(f"operator={self.operator!r} is not one of {', '.join(OPERATORS)}")
        wanted = {"=": "1", "!=": "1", "in": "1+", "notin": "1+", "exists": "0", "!": "0"}
        count = len(self.values)
        rule = wanted[self.operator]
        if (rule == "1" and count != 1) or (rule == "1+" and not count) or (rule == "0" and count):
            raise ValueError(
                f"operator {self.operator!r} takes {rule} value(s), got {count}: {self.values!r}"
            )

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with these labels satisfies the clause (Kubernetes semantics)."""
        match self.operator:
            case "exists":
                return self.key in labels
            case "!":
                return self.key not in labels
            case "=" | "in":
                return self.key in labels and labels[self.key] in self.values
            case _:  # "!=" and "notin" also hold when the key is absent, as in Kubernetes.
                return self.key not in labels or labels[self.key] not in self.values

    def __str__(self) -> str:
        match self.operator:
            case "exists":
                return self.key
            case "!":
                return f"!{self.key}"
            case "=" | "!=":
                return f"{self.key}{self.operator}{self.values[0]}"
            case _:
                return f"{self.key} {self.operator} ({', '.join(self.values)})"


class _SelectorSyntaxError(Exception):
    """Why a selector does not parse; turned into a ChaosConfigError naming the argument."""


def parse_label_selector(text: object, *, name: str = "selector") -> tuple[Requirement, ...]:
    """Parse a Kubernetes label selector into its clauses.

    Args:
        text: E.g. ``"app=web,tier in (front, back),!canary"``. None, ``""`` or only
            whitespace selects everything and gives ``()``.
        name: The argument name that error messages use.

    Returns:
        The clauses in the order written; an object must satisfy all of them.

    Raises:
        ChaosConfigError: The syntax is invalid; the message names the argument, quotes the
            text and says what is wrong.
    """
    if text is None:
        return ()
    if not isinstance(text, str):
        raise ChaosConfigError(
            f"{name}={text!r} ({type(text).__name__}) is not a label selector; "
            f"use a string {_EXAMPLE}"
        )
    if not text.strip():
        return ()
    try:
        return _Parser(text).parse()
    except _SelectorSyntaxError as invalid:
        raise ChaosConfigError(
            f"{name}={text!r} is not a valid label selector: {invalid} {_EXAMPLE}"
        ) from None


class _Parser:
    """Recursive descent over Kubernetes' selector grammar (apimachinery labels.Parse)."""

    def __init__(self, text: str) -> None:
        self.lexemes = _lex(text)
        self.position = 0

    def peek(self) -> str | None:
        return self.lexemes[self.position] if self.position < len(self.lexemes) else None

    def take(self) -> str | None:
        lexeme = self.peek()
        if lexeme is not None:
            self.position += 1
        return lexeme

    def parse(self) -> tuple[Requirement, ...]:
        requirements = [self.clause()]
        while (lexeme := self.take()) is not None:
            if lexeme != ",":
                after = requirements[-1]
                if after.operator == "!" and lexeme in ("=", "==", "!="):
                    raise _SelectorSyntaxError(
                        f"'!' takes a bare key, as in '!canary'; "
                        f"to exclude a value write '{after.key}!=...'"
                    )
                if lexeme == ")":
                    raise _SelectorSyntaxError(_misplaced(lexeme))
                raise _SelectorSyntaxError(
                    f"expected ',' or the end after '{after}', found {lexeme!r}"
                )
            requirements.append(self.clause())
        return tuple(requirements)

    def clause(self) -> Requirement:
        lexeme = self.take()
        if lexeme is None or lexeme == ",":
            raise _SelectorSyntaxError("empty clause (a ',' with nothing before or after it)")
        if lexeme == "!":
            key = self.take()
            if key is None or key in _SYMBOLS:
                raise _SelectorSyntaxError("missing key after '!'")
            return Requirement(_key(key), "!")
        if lexeme in _SYMBOLS:
            raise _SelectorSyntaxError(_misplaced(lexeme))
        key = _key(lexeme)
        operator = self.peek()
        if operator is None or operator == ",":
            return Requirement(key, "exists")
        self.take()
        if operator in ("=", "==", "!="):
            value = self.peek()
            if value is None or value in _SYMBOLS:
                raise _SelectorSyntaxError(f"missing value after {operator!r}")
            self.take()
            return Requirement(key, "!=" if operator == "!=" else "=", (_value(value),))
        if operator in ("in", "notin"):
            return Requirement(key, cast(Operator, operator), self.value_list(operator))
        if operator in ("<", ">"):
            raise _SelectorSyntaxError(
                f"operator {operator!r} is not supported; use =, ==, !=, in or notin"
            )
        raise _SelectorSyntaxError(f"expected an operator after {key!r}, found {operator!r}")

    def value_list(self, operator: str) -> tuple[str, ...]:
        if self.take() != "(":
            raise _SelectorSyntaxError(
                f"expected '(' after {operator!r}, as in 'env {operator} (a, b)'"
            )
        values: list[str] = []
        while True:
            value = self.take()
            if value is None:
                raise _SelectorSyntaxError("unbalanced parentheses: missing ')'")
            if value == ")" and not values:
                raise _SelectorSyntaxError(f"empty value list after {operator!r}")
            if value in _SYMBOLS:
                raise _SelectorSyntaxError(
                    f"expected a value in the list after {operator!r}, found {value!r}"
                )
            values.append(_value(value))
            separator = self.take()
            if separator == ")":
                return tuple(values)
            if separator is None:
                raise _SelectorSyntaxError("unbalanced parentheses: missing ')'")
            if separator != ",":
                raise _SelectorSyntaxError(
                    f"expected ',' or ')' after {value!r}, found {separator!r}"
                )


def _lex(text: str) -> list[str]:
    lexemes: list[str] = []
    position = 0
    while (match := _LEXEME.match(text, position)) is not None and match.end() > position:
        lexemes.append(match.group(1) or match.group(2))
        position = match.end()
    return lexemes


def _misplaced(symbol: str) -> str:
    if symbol in ("=", "==", "!="):
        return f"missing key before {symbol!r}"
    if symbol == ")":
        return "unbalanced parentheses: ')' without '('"
    if symbol == "(":
        return "unexpected '('; parentheses only follow 'in' or 'notin'"
    return f"unexpected {symbol!r}"


def _key(text: str) -> str:
    prefix, slash, name = text.rpartition("/")
    valid = len(name) <= 63 and _NAME.fullmatch(name) is not None
    if slash:
        valid = valid and len(prefix) <= 253 and _PREFIX.fullmatch(prefix) is not None
    if not valid:
        raise _SelectorSyntaxError(
            f"invalid key {text!r}: a key is an optional DNS-subdomain prefix and '/', "
            f"then a name of {_NAME_RULE}"
        )
    return text


def _value(text: str) -> str:
    if len(text) > 63 or _NAME.fullmatch(text) is None:
        raise _SelectorSyntaxError(f"invalid value {text!r}: a value has {_NAME_RULE}")
    return text


def matches(requirements: Sequence[Requirement], labels: Mapping[str, str] | None) -> bool:
    """Whether labels (None counts as no labels) satisfy every requirement."""
    present: Mapping[str, str] = labels or {}
    return all(requirement.matches(present) for requirement in requirements)


_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def selects(
    selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None, *, when_missing: bool
) -> bool:
    """Whether a LabelSelector object (``matchLabels``/``matchExpressions``) selects labels.

    An empty selector selects everything. A missing one (None) selects everything or nothing
    by the API that holds it, which ``when_missing`` says: a NetworkPolicy's ``podSelector``
    and a PodDisruptionBudget's ``selector`` disagree. An unknown operator selects nothing.
    """
    if selector is None:
        return when_missing
    requirements = [
        Requirement(str(k), "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        operator = _OPERATORS.get(str(expression.get("operator")))
        if operator is None:
            return False
        values = tuple(str(v) for v in expression.get("values") or ())
        requirements.append(Requirement(str(expression.get("key")), operator, values))  # type: ignore[arg-type]
    return matches(requirements, labels)


def validate_mode(mode: object, value: object, *, name: str = "mode") -> tuple[Mode, float | None]:
    """Check a mode and its value, as the fixture API takes them (``mode=``, ``value=``).

    Args:
        mode: One of ``MODES``.
        value: None for ``one`` and ``all``; a whole number >= 1 for ``fixed``; a percentage in
            (0, 100] for ``fixed-percent`` and ``random-max-percent``.
        name: The argument name of the mode in error messages (the value is always ``value``).

    Returns:
        The mode and the value: None, the int unchanged for ``fixed``, a float for percents.

    Raises:
        ChaosConfigError: Unknown mode (with a did-you-mean) or a value that does not fit it.
    """
    if not isinstance(mode, str) or mode not in MODES:
        close = []
        if isinstance(mode, str):
            close = difflib.get_close_matches(mode.lower().replace("_", "-"), MODES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ChaosConfigError(
            f"{name}={mode!r} is not a mode{hint}; choose one of {', '.join(MODES)}"
        )
    checked = cast(Mode, mode)
    if checked in ("one", "all"):
        if value is not None:
            raise ChaosConfigError(
                f"value={value!r} is not used with {name}={mode!r}; leave it out, or use "
                f"{name}='fixed' for a count or {name}='fixed-percent' for a share"
            )
        return checked, None
    if value is None:
        example = "value=2" if checked == "fixed" else "value=50"
        what = "a number of targets" if checked == "fixed" else "a percentage"
        raise ChaosConfigError(f"{name}={mode!r} needs value= ({what}, e.g. {example})")
    if checked == "fixed":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ChaosConfigError(
                f"value={value!r} must be a whole number of targets >= 1 with {name}={mode!r}"
            )
        return checked, value
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= 100  # also refuses NaN, for which every comparison is False
    ):
        raise ChaosConfigError(
            f"value={value!r} must be a percentage with 0 < value <= 100 with {name}={mode!r}"
        )
    return checked, float(value)


def choose(
    candidates: Sequence[T],
    mode: str,
    value: float | int | None,
    rng: random.Random,
    *,
    key: Callable[[T], str],
) -> list[T]:
    """Pick the targets among candidates, reproducibly for a given rng seed.

    Candidates are sorted by key before sampling, so the choice depends on the seed and the
    set of candidates, not on the order the API listed them in.

    Args:
        candidates: What matched the selector and filters.
        mode: One of ``MODES``; see ``validate_mode`` for the value each takes.
        value: The count or percentage the mode needs.
        rng: The source of randomness (seed it to replay a run).
        key: A stable, unique name of a candidate (e.g. ``namespace/name``).

    Returns:
        The chosen candidates, sorted by key.

    Raises:
        ChaosConfigError: The mode or value is invalid.
        TargetingError: No candidates, or fewer than ``fixed`` needs.
    """
    checked, amount = validate_mode(mode, value)
    if not candidates:
        raise TargetingError("no targets to choose from")
    ordered = sorted(candidates, key=key)
    total = len(ordered)
    match checked:
        case "all":
            return ordered
        case "one":
            count = 1
        case "fixed":
            count = int(cast(float, amount))
            if count > total:
                names = _listing([key(c) for c in ordered])
                raise TargetingError(
                    f"mode={mode!r} value={value!r} needs {count} targets "
                    f"but only {total} match: {names}"
                )
        case "fixed-percent":
            count = _share(total, cast(float, amount))
        case _:
            count = rng.randint(1, _share(total, cast(float, amount)))
    return sorted(rng.sample(ordered, count), key=key)


def _share(total: int, percent: float) -> int:
    # Rounded first so that e.g. 10 * 70 / 100 == 7.000000000000001 still floors to 7 and a
    # binary fraction just under a whole number does not lose a target.
    return max(1, math.floor(round(total * percent / 100, 9)))


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return f"{shown}, +{len(names) - _SHOWN} more" if len(names) > _SHOWN else shown


def matching_text(selector: str | None) -> str:
    """How a message names the objects a selector picks: ``matching 'app=web'``.

    No selector (None or blank) picks every object, and says so instead of ``matching None``.
    """
    if selector is None or not selector.strip():
        return "with any labels (no selector)"
    return f"matching {selector!r}"


def nothing_matched(
    kind: str,
    selector: str | None,
    namespace: str | None,
    existing: Mapping[str, Mapping[str, str]],
) -> str:
    """The message for a selector that matched nothing: what was asked and what exists.

    Args:
        kind: The plural noun of the objects, e.g. ``"pods"``.
        selector: The label selector as the user wrote it (None or empty: no selector).
        namespace: Where they were looked for; None for cluster-scoped objects.
        existing: Every object there, by name, with its labels.

    Returns:
        Several lines: the first says what was asked (``no pods match selector 'app=backnd'
        in namespace 'shop'``), then a did-you-mean when a key or value of the selector is
        close to one that exists, then up to 10 existing objects with their labels.
    """
    where = f" in namespace {namespace!r}" if namespace else ""
    given = selector is not None and selector.strip() != ""
    if given:
        lines = [f"no {kind} match selector {selector!r}{where}"]
    else:
        lines = [f"no {kind} found{where}"]
    if not existing:
        lines.append(f"namespace {namespace!r} has no {kind}" if namespace else f"no {kind} exist")
        return "\n".join(lines)
    try:
        requirements = parse_label_selector(selector)
    except ChaosConfigError:
        requirements = None
    if requirements:
        suggestion = _did_you_mean(requirements, existing)
        if suggestion is not None:
            lines.append(f"did you mean {suggestion!r}?")
        selected = sum(matches(requirements, labels) for labels in existing.values())
        if selected:
            lines.append(
                f"{selected} of the {kind} below match the selector, "
                "so another condition ruled them out"
            )
    lines.append(f"{kind}{where} ({len(existing)}):")
    names = sorted(existing)
    for name in names[:_SHOWN]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(existing[name].items()))
        lines.append(f"  {name} ({labels or 'no labels'})")
    if len(names) > _SHOWN:
        lines.append(f"  +{len(names) - _SHOWN} more")
    return "\n".join(lines)


def _did_you_mean(
    requirements: Sequence[Requirement], existing: Mapping[str, Mapping[str, str]]
) -> str | None:
    """The selector with each unknown key and value replaced by the closest existing one."""
    values_by_key: dict[str, set[str]] = {}
    for labels in existing.values():
        for label, value in labels.items():
            values_by_key.setdefault(label, set()).add(value)
    keys = sorted(values_by_key)
    corrected: list[Requirement] = []
    for requirement in requirements:
        key = requirement.key
        if key not in values_by_key:
            key = next(iter(difflib.get_close_matches(key, keys, n=1)), key)
        known = values_by_key.get(key, set())
        values = tuple(
            value
            if value in known
            else next(iter(difflib.get_close_matches(value, sorted(known), n=1)), value)
            for value in requirement.values
        )
        corrected.append(Requirement(key, requirement.operator, values))
    # A guess that still selects nothing would send the user on a second wrong path.
    if list(requirements) == corrected or not any(
        matches(corrected, labels) for labels in existing.values()
    ):
        return None
    return ",".join(map(str, corrected))


@dataclass(frozen=True, slots=True)
class PodFilter:
    """Which pods are candidates. Pods are plain dicts as the Kubernetes API returns them (JSON).

    Field selectors are applied server-side by callers, not here. The selector and phase are
    checked when the filter is built, so a typo fails before anything is listed.

    Attributes:
        label_selector: A Kubernetes label selector; None selects every pod.
        node: ``spec.nodeName`` must equal this.
        phase: ``status.phase`` must equal this (one of ``POD_PHASES``, e.g. ``"Running"``).
        include_terminating: Pods with ``metadata.deletionTimestamp`` are excluded unless True.
    """

    label_selector: str | None = None
    node: str | None = None
    phase: str | None = None
    include_terminating: bool = False
    _requirements: tuple[Requirement, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        requirements = parse_label_selector(self.label_selector, name="label_selector")
        object.__setattr__(self, "_requirements", requirements)
        if self.node is not None and (not isinstance(self.node, str) or not self.node):
            raise ChaosConfigError(
                f"node={self.node!r} is not a node name; pass None to accept every node"
            )
        if self.phase is not None and self.phase not in POD_PHASES:
            close = difflib.get_close_matches(str(self.phase).capitalize(), POD_PHASES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ChaosConfigError(
                f"phase={self.phase!r} is not a pod phase{hint}; "
                f"choose one of {', '.join(POD_PHASES)}"
            )

    def accepts(self, pod: Mapping[str, Any]) -> bool:
        """Whether one pod passes the filter."""
        metadata = pod.get("metadata") or {}
        if not self.include_terminating and metadata.get("deletionTimestamp"):
            return False
        if self.node is not None and (pod.get("spec") or {}).get("nodeName") != self.node:
            return False
        if self.phase is not None and (pod.get("status") or {}).get("phase") != self.phase:
            return False
        return matches(self._requirements, metadata.get("labels"))

    def apply(self, pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The pods that pass the filter, in the order given."""
        return [pod for pod in pods if self.accepts(pod)]
