"""A run's totals: one sum over the sessions, the same words in every output."""

from __future__ import annotations

from pytest_chaos.report import html, notify
from pytest_chaos.report.totals import RunTotals

WORKER_A = {"injected": 3, "reverted": 2, "discarded": 1, "revert_failures": [], "leftovers": []}
WORKER_B = {
    "injected": 2,
    "reverted": 1,
    "revert_failures": ["pods.kill on Pod shop/web-1: 500"],
    "leftovers": ["deployments.scale on Deployment shop/web"],
}


def test_the_totals_add_up_every_session_including_the_discarded_ones() -> None:
    totals = RunTotals.of([WORKER_A, WORKER_B])
    assert (totals.injected, totals.reverted, totals.discarded) == (5, 3, 1)
    assert totals.dirty
    assert totals.problems == [
        "pods.kill on Pod shop/web-1: 500",
        "deployments.scale on Deployment shop/web",
    ]
    assert totals.as_dict()["discarded"] == 1


def test_discarded_faults_are_named_only_when_there_are_some() -> None:
    assert RunTotals(injected=1, reverted=1).text() == (
        "faults injected: 1, reverted: 1, revert failures: 0, leftovers: 0"
    )
    assert RunTotals(injected=2, reverted=1, discarded=1).text(" ") == (
        "faults injected 2, reverted 1, discarded after drift 1, revert failures 0, leftovers 0"
    )


def test_the_report_and_the_notification_say_what_the_terminal_says() -> None:
    totals = RunTotals.of([WORKER_A])
    page = html.render([], totals, seed=1, run="r1")
    assert "discarded after drift: 1" in page
    summary = notify.summary(totals, {"passed": 1}, [], run="r1", seed=1)
    assert "discarded after drift 1" in summary["text"]
    assert summary["chaos"]["discarded"] == 1
    slack = notify.slack_blocks(summary)["blocks"][1]["text"]["text"]
    assert "discarded after drift 1" in slack


def test_a_clean_run_is_not_dirty() -> None:
    totals = RunTotals.of([{"injected": 0, "reverted": 0, "revert_failures": [], "leftovers": []}])
    assert not totals.dirty
    assert notify.verdict(totals, {"passed": 1}) == "passed"
