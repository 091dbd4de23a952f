"""The notification's pure parts, and its delivery against a real server on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

from pytest_chaos.report import notify
from pytest_chaos.report.totals import RunTotals
from tests.webhook import webhook

STATS: dict[str, Any] = {"injected": 2, "reverted": 2, "revert_failures": [], "leftovers": []}
TESTS: list[dict[str, Any]] = [
    {
        "nodeid": "t.py::test_a",
        "outcome": "failed",
        "message": "AssertionError: down\nmore",
        "timeline": [
            {"phase": "inject", "text": "pods.kill: Pod shop/web-1"},
            {"phase": "revert", "text": "nothing to revert"},
        ],
        "monitors": ["Deployment shop/web: min ready 1"],
    },
    {"nodeid": "t.py::test_b", "outcome": "passed"},
    {"nodeid": "t.py::test_c", "outcome": "error (inconclusive)", "message": "no effect"},
]


def run_summary(outcomes: dict[str, int] | None = None, **stats: Any) -> dict[str, Any]:
    return notify.summary(
        RunTotals.of([{**STATS, **stats}]),
        outcomes or {"failed": 1, "passed": 1},
        TESTS,
        run="r1",
        seed=7,
    )


def test_the_summary_names_failed_tests_faults_and_monitors() -> None:
    summary = run_summary()
    assert summary["verdict"] == "failed"
    assert [f["test"] for f in summary["failed"]] == ["t.py::test_a", "t.py::test_c"]
    assert summary["faults"] == [{"test": "t.py::test_a", "fault": "pods.kill: Pod shop/web-1"}]
    assert summary["monitors"][0]["monitor"].startswith("Deployment shop/web")
    assert summary["replay"] == "--chaos-seed=7"


def test_only_failures_notify_by_default() -> None:
    passed = run_summary({"passed": 2})
    assert not notify.wanted("failure", passed)
    assert notify.wanted("always", passed)
    assert notify.wanted("failure", run_summary())
    assert notify.wanted("failure", run_summary({"passed": 2}, leftovers=["Pod x"]))
    assert not notify.wanted("never", run_summary())


def test_slack_webhooks_get_block_kit_others_the_summary() -> None:
    summary = run_summary()
    slack = notify.payload("https://hooks.slack.com/services/T/B/x", summary)
    assert slack["text"] == summary["text"]
    kinds = [b["type"] for b in slack["blocks"]]
    assert kinds == ["header", "section", "section", "section", "section", "context"]
    assert len(slack["blocks"][0]["text"]["text"]) <= 150
    failed = slack["blocks"][2]["text"]["text"]
    assert "`t.py::test_a` failed: AssertionError: down" in failed
    assert "more" not in failed
    assert notify.payload("https://hooks.example.test/x", summary) is summary


def test_long_listings_are_cut_to_what_slack_accepts() -> None:
    many = [
        {"nodeid": f"t.py::test_{i}", "outcome": "failed", "message": "x" * 500} for i in range(40)
    ]
    summary = notify.summary(RunTotals.of([STATS]), {"failed": 40}, many, run="r", seed=1)
    blocks = notify.slack_blocks(summary)["blocks"]
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert "… and 30 more" in blocks[2]["text"]["text"]


def test_only_scheme_and_host_of_a_url_are_ever_shown() -> None:
    assert notify.redact("https://user:pw@hooks.slack.com/services/T/B/key?x=1") == (
        "https://hooks.slack.com/…"
    )
    assert notify.redact("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/…"


def test_a_server_that_fails_twice_gets_a_third_attempt() -> None:
    with webhook() as hook:
        hook.answers[:] = [500, 429]
        delivery = notify.post(hook.url, {"text": "hi"}, timeout=10, backoff=0.05)
    assert delivery.delivered
    assert delivery.attempts == 3
    assert len(hook.received) == 3


def test_a_client_error_is_not_retried() -> None:
    with webhook() as hook:
        hook.answers[:] = [404]
        delivery = notify.post(hook.url, {"text": "hi"}, timeout=10, backoff=0.05)
    assert not delivery.delivered
    assert delivery.attempts == 1
    assert "HTTP 404 Not Found" in delivery.line(hook.url)
    assert "secret" not in delivery.line(hook.url)


def test_a_hanging_server_costs_the_timeout_and_no_more() -> None:
    with webhook() as hook:
        hook.answers[:] = ["hang", "hang", "hang"]
        started = time.monotonic()
        delivery = notify.post(hook.url, {"text": "hi"}, timeout=1.0)
        took = time.monotonic() - started
    assert not delivery.delivered
    assert 0.9 <= took < 1.5, took
    assert "timed out" in delivery.line(hook.url)


def test_a_refused_connection_is_retried_until_the_budget_is_spent() -> None:
    started = time.monotonic()
    delivery = notify.post("http://127.0.0.1:9/x", {}, timeout=1.0, backoff=0.1)
    assert time.monotonic() - started < 1.5
    assert not delivery.delivered
    assert delivery.attempts >= 2
    assert "ConnectError" in delivery.problem
