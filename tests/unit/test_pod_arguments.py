from __future__ import annotations

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.faults.pods import check_grace_period, namespaces_of


@pytest.mark.parametrize("grace_period", [None, 0, 30])
def test_accepted_grace_periods(grace_period: int | None) -> None:
    check_grace_period(grace_period)


@pytest.mark.parametrize("grace_period", [-1, True, 1.5, "5s"])
def test_refused_grace_periods_name_the_argument(grace_period: object) -> None:
    with pytest.raises(ChaosConfigError, match=r"^grace_period=.* must be a whole number"):
        check_grace_period(grace_period)


def test_namespaces_are_one_or_several_without_duplicates() -> None:
    assert namespaces_of("shop") == ["shop"]
    assert namespaces_of(["shop", "cart", "shop"]) == ["shop", "cart"]
    for bad in ("", [], ["shop", ""]):
        with pytest.raises(ChaosConfigError, match="must be a namespace name"):
            namespaces_of(bad)
