"""The argument checks every fault verb and marker shares: pure, no cluster."""

from __future__ import annotations

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.faults import checks


@pytest.mark.parametrize("value", [0, 50, 100, 12.5])
def test_percent_from_0_to_100(value: float) -> None:
    assert checks.check_percent(value) == value


@pytest.mark.parametrize("value", [-1, 100.1, "50", True, None])
def test_percent_outside_0_to_100_names_the_argument(value: object) -> None:
    with pytest.raises(ChaosConfigError, match=r"percent=.* must be a number from 0 to 100"):
        checks.check_percent(value)


@pytest.mark.parametrize("value", [199, 600, "503", 503.0])
def test_http_status_must_be_a_real_status(value: object) -> None:
    with pytest.raises(ChaosConfigError, match=r"status=.* HTTP status from 200 to 599"):
        checks.check_http_status(value)


def test_a_taint_needs_a_known_effect() -> None:
    assert checks.check_taint("chaos.pytest.dev/down", None, "NoExecute") == (
        "chaos.pytest.dev/down",
        None,
        "NoExecute",
    )
    with pytest.raises(ChaosConfigError, match="effect='NoRun' is not a taint effect"):
        checks.check_taint("down", None, "NoRun")
    with pytest.raises(ChaosConfigError, match="key='bad key!'"):
        checks.check_taint("bad key!", None, "NoSchedule")
    with pytest.raises(ChaosConfigError, match="value='not ok'"):
        checks.check_taint("down", "not ok", "NoSchedule")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("X-Chaos", ("x-chaos", "")),
        ("x-chaos=on", ("x-chaos", "on")),
        (("x-chaos", "on"), ("x-chaos", "on")),
    ],
)
def test_header_forms(value: object, expected: tuple[str, str] | None) -> None:
    assert checks.check_header(value) == expected


@pytest.mark.parametrize("value", ["bad header", 42, ("a", "b", "c")])
def test_bad_headers_are_refused(value: object) -> None:
    with pytest.raises(ChaosConfigError, match="header="):
        checks.check_header(value)


@pytest.mark.parametrize(
    ("value", "millicores"), [(1, 1000), (0.5, 500), ("500m", 500), ("2", 2000), ("0.25", 250)]
)
def test_cpu_amounts_in_millicores(value: object, millicores: int) -> None:
    assert checks.cpu_millicores(value) == millicores


@pytest.mark.parametrize("value", ["1Gi", "lots", 0, -1, "0m", True])
def test_bad_cpu_amounts(value: object) -> None:
    with pytest.raises(ChaosConfigError, match="cpu="):
        checks.cpu_millicores(value)


@pytest.mark.parametrize(
    ("value", "amount"),
    [("256Mi", 256 * 2**20), ("1Gi", 2**30), ("1G", 10**9), (1024, 1024), ("512k", 512_000)],
)
def test_memory_amounts_in_bytes(value: object, amount: int) -> None:
    assert checks.memory_bytes(value) == amount


def test_memory_in_milli_suggests_mebi() -> None:
    with pytest.raises(ChaosConfigError, match="did you mean 'Mi'"):
        checks.memory_bytes("256m")


def test_count_and_direction() -> None:
    assert checks.check_count(2) == 2
    with pytest.raises(ChaosConfigError, match="count=0 must be a whole number >= 1"):
        checks.check_count(0)
    assert checks.check_direction("egress") == "egress"
    with pytest.raises(ChaosConfigError, match="direction='out' must be one of"):
        checks.check_direction("out")


@pytest.mark.parametrize("given", [5, [], ["shop", ""], {"shop": 1}, None])
def test_names_not_text_are_refused_by_name_not_with_a_type_error(given: object) -> None:
    from pytest_chaos.faults.checks import check_names

    with pytest.raises(ChaosConfigError, match=r"^namespace=.* must be a namespace name or a non"):
        check_names("namespace", given, "namespace name")


def test_names_keep_their_order_without_duplicates() -> None:
    from pytest_chaos.faults.checks import check_names

    assert check_names("name", ("b", "a", "b"), "node name") == ["b", "a"]
    assert check_names("name", "a", "node name") == ["a"]
