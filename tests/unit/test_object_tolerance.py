"""Tolerances as Chaos Toolkit has them: exact, range, regex, predicate; clear misuse errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.steady.tolerance import UNSET, tolerance


@pytest.mark.parametrize(
    ("expected", "good", "bad"),
    [
        (3, [3, 3.0], [2, "3", True, None]),
        ("True", ["True"], [True, "true", None]),
        (True, [True], [1, "True"]),
        (None, [None], [0, ""]),
        (["a"], [["a"]], [("a",), ["b"]]),
        (range(2, 5), [2, 4, 3.0], [5, 1, 2.5, "3", None]),
        ((2, 5), [2, 5, 2.5], [1.9, 5.1, "3", None, True]),
        (re.compile(r"^v1\."), ["v1.2"], ["v2.1", 1, None]),
    ],
)
def test_expected_kinds(expected: Any, good: list[Any], bad: list[Any]) -> None:
    check = tolerance(expected)
    assert all(check.judge(v) for v in good), check.text
    assert not any(check.judge(v) for v in bad), check.text


def test_a_predicate_judges_and_one_that_raises_does_not_tolerate() -> None:
    check = tolerance(predicate=lambda v: int(v) > 2)
    assert check.judge("3")
    assert not check.judge("x")  # int("x") raises: not tolerated, not an error
    assert check.text.startswith("accepted by ")


def test_the_words_of_each_kind() -> None:
    assert tolerance(3).text == "== 3"
    assert tolerance((1, 2)).text == "in [1, 2]"
    assert tolerance(range(1, 3)).text == "in range(1, 3)"
    assert tolerance(re.compile("^a")).text == "matching '^a'"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, r"neither expected= nor predicate="),
        ({"expected": 1, "predicate": bool}, r"both given"),
        ({"predicate": 3}, r"predicate=3 is not callable"),
        ({"expected": (1, 2, 3)}, r"not a \(low, high\) pair"),
        ({"expected": (5, 1)}, r"low 5 is above high 1"),
        ({"expected": range(3, 3)}, r"empty range"),
        ({"expected": re.compile(b"x")}, r"bytes pattern"),
        ({"expected": len}, r"pass it as predicate="),
    ],
)
def test_misuse_is_a_config_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        tolerance(**kwargs)


def test_unset_is_not_none() -> None:
    assert tolerance(None).judge(None)
    assert repr(UNSET) == "UNSET"
