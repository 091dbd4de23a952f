"""The steady_state marker's hypotheses: argument checks, deferred values, deviation arithmetic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_chaos import service_url
from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.hypotheses import (
    Deviation,
    _below,
    _pick_port,
    check_http,
    check_pods,
    check_workloads,
    deviated_message,
)


@dataclass
class Reading:
    at: float
    ready: int | None
    seen: str


def test_workloads_are_names_or_dicts_with_min_ready() -> None:
    check_workloads("deployments", ["web", {"name": "api", "min_ready": 1}])


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("web", "deployments='web' must be a list"),
        ([""], "must be a name or a dict"),
        ([{"min_ready": 1}], "needs a 'name'"),
        ([{"name": "web", "min_ready": -1}], "min_ready=-1 must be a whole number"),
        ([{"name": "web", "replicas": 2}], "unknown key(s) replicas; the keys are name, min_ready"),
    ],
)
def test_a_bad_workload_entry_says_what_is_wrong(entries: Any, message: str) -> None:
    with pytest.raises(ChaosConfigError, match=re.escape(message)):
        check_workloads("deployments", entries)


def test_http_takes_urls_service_urls_and_full_specs() -> None:
    check_http(
        [
            "http://web.shop/health",
            service_url("web", port="http", path="/health"),
            {"url": "https://web/", "expect": 204, "timeout": "1s", "headers": {"a": "b"}},
            {"url": service_url("web"), "body": "ok", "every": 0.1},
        ]
    )


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["web.shop"], "the url must be an http:// or https:// URL"),
        ([{"expect": 200}], "the url must be"),
        ([{"url": "http://web/", "status": 200}], "unknown key(s) status"),
        ([{"url": "http://web/", "timeout": 0}], "timeout must be positive"),
        ("http://web/", "must be a list"),
    ],
)
def test_a_bad_http_entry_says_what_is_wrong(entries: Any, message: str) -> None:
    with pytest.raises(ChaosConfigError, match=re.escape(message)):
        check_http(entries)


def test_pods_are_label_selectors() -> None:
    check_pods(["app=web", "tier in (a,b)"])
    with pytest.raises(ChaosConfigError, match="label selector"):
        check_pods([3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "give the Service's name"),
        ({"name": "web", "port": True}, "port name"),
        ({"name": "web", "path": "health"}, "starts with '/'"),
        ({"name": "web", "scheme": "ftp"}, "'http' or 'https'"),
    ],
)
def test_service_url_checks_its_arguments(kwargs: Any, message: str) -> None:
    with pytest.raises(ChaosConfigError, match=re.escape(message)):
        service_url(**kwargs)


def test_a_service_url_shows_what_it_will_resolve() -> None:
    assert str(service_url("web", port="http", path="/health")) == (
        "http://<Service web:http>/health"
    )


def test_the_port_is_picked_by_name_by_number_or_as_the_only_one() -> None:
    ports = [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}]
    assert _pick_port(ports, "admin") == 9000
    assert _pick_port(ports, 80) == 80
    assert _pick_port(ports, None) is None  # two ports: the user must say which
    assert _pick_port([{"port": 8080}], None) == 8080
    assert _pick_port(ports, "grpc") is None


def test_readings_below_the_minimum_are_deviations_until_the_next_good_one() -> None:
    readings = [
        Reading(0.0, 2, "2/2 ready"),
        Reading(1.0, 1, "1/2 ready: web-a Terminating"),
        Reading(1.5, 0, "0/2 ready: web-b Pending"),
        Reading(3.0, 2, "2/2 ready"),
        Reading(4.0, 1, "1/2 ready: web-c Terminating"),
    ]
    found = _below("Deployment shop/web", readings, 2, until=6.0)
    assert found == [
        Deviation(
            "Deployment shop/web (at least 2 ready)", 1.0, 2.0, True, "0/2 ready: web-b Pending"
        ),
        Deviation(
            "Deployment shop/web (at least 2 ready)",
            4.0,
            2.0,
            False,
            "1/2 ready: web-c Terminating",
        ),
    ]


def test_no_reading_below_the_minimum_is_no_deviation() -> None:
    assert _below("x", [Reading(0.0, 1, "1/2"), Reading(1.0, 2, "2/2")], 1, until=9.0) == []


def test_the_deviation_message_says_when_for_how_long_and_what_was_seen() -> None:
    message = deviated_message(
        [
            Deviation("Deployment shop/web", 11.25, 2.5, True, "0/2 ready"),
            Deviation("GET http://10.0.0.1/", 12.0, 1.0, False, "5 failed request(s)"),
        ],
        origin=10.0,
    )
    assert message.splitlines() == [
        "deviated during chaos: 2 time(s) a hypothesis did not hold",
        "  Deployment shop/web at +1.25s for 2.50s: 0/2 ready",
        "  GET http://10.0.0.1/ at +2.00s for 1.00s, unended: 5 failed request(s)",
    ]
