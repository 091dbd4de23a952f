"""The JSONPath-style paths of steady.object: parsed by our own small parser, read from JSON."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.steady.paths import Every, Index, Key, Match, parse_path, read_path, render

POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "labels": {"app.kubernetes.io/name": "web", "tier": "front"}},
    "spec": {"containers": [{"name": "app", "image": "web:1"}, {"name": "log", "image": "log:2"}]},
    "status": {
        "readyReplicas": 3,
        "conditions": [
            {"type": "Scheduled", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        ],
    },
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("status.readyReplicas", 3),
        ("$.status.readyReplicas", 3),
        (".status.readyReplicas", 3),
        ("spec.containers[0].image", "web:1"),
        ("spec.containers[-1].name", "log"),
        ("metadata.labels['app.kubernetes.io/name']", "web"),
        ('metadata.labels["app.kubernetes.io/name"]', "web"),
        ('status.conditions[?type=="Ready"].status', "False"),
        ("status.conditions[?type=='Ready'].reason", "ContainersNotReady"),
        ('status.conditions[?(@.type=="Scheduled")].status', "True"),
        ('status.conditions[?type!="Scheduled"].type', "Ready"),
        ("spec.containers[*].image", ["web:1", "log:2"]),
        ("spec.containers", POD["spec"]["containers"]),
    ],
)
def test_a_path_reads_the_value(path: str, value: Any) -> None:
    assert read_path(POD, parse_path(path)) == value


@pytest.mark.parametrize(
    "path",
    [
        "status.availableReplicas",  # absent, as the API omits zero counts
        "spec.containers[5].image",
        'status.conditions[?type=="Gone"].status',
        "metadata.name.first",  # into a string
        "metadata.labels[0]",  # an index into a map
    ],
)
def test_an_absent_value_reads_as_none(path: str) -> None:
    assert read_path(POD, parse_path(path)) is None


def test_the_steps_of_a_path() -> None:
    assert parse_path("a.b[2]['c.d'][?e.f==1][*]") == (
        Key("a"),
        Key("b"),
        Index(2),
        Key("c.d"),
        Match(("e", "f"), 1),
        Every(),
    )
    assert parse_path("x[?y==true]") == (Key("x"), Match(("y",), True))
    assert parse_path("x[?y==null]") == (Key("x"), Match(("y",), None))
    assert parse_path("x['a]b']") == (Key("x"), Key("a]b"))


def test_a_path_renders_back_normalised() -> None:
    assert render(parse_path("$.status.conditions[?type=='Ready'].status")) == (
        'status.conditions[?type=="Ready"].status'
    )
    assert render(parse_path("metadata.labels['app.kubernetes.io/name']")) == (
        "metadata.labels['app.kubernetes.io/name']"
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", r"path='' is not a path"),
        ("status..ready", r"expected a field name at '\.ready' \(offset 7\)"),
        ("status.conditions[0", r"expected a closing '\]'"),
        ("spec.containers[first]", r"\[first\] is not an index"),
        ("status[?type==Ready]", r"Ready is not a quoted string"),
        ("a b", r"expected '\.' or '\[' at ' b'"),
    ],
)
def test_a_bad_path_is_a_config_error_naming_it(path: str, message: str) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        parse_path(path)
