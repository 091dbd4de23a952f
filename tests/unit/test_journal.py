"""The journal's lines: one per activity, with input, output, error, times and the run id."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.report import journal
from pytest_chaos.report.html import failure_message, render
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.report.totals import RunTotals

SCHEMA = {
    "run",
    "test",
    "type",
    "name",
    "phase",
    "status",
    "input",
    "output",
    "error",
    "start",
    "end",
    "duration",
}


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(text) for text in path.read_text().splitlines()]


def test_an_activity_is_one_line_and_its_events_are_its_steps(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    timeline = Timeline("t.py::test_a", journal=path, run="r1")
    with timeline.activity("action", "pods.kill", phase="inject", input={"n": 1}) as activity:
        timeline.add("inject", "pods.kill: kill 1 pod", targets=["ns/a"])
        timeline.add("verify", "pods.kill: 1 pod(s) gone")
        activity.output["targets"] = ["ns/a"]
    (entry,) = lines(path)
    assert set(entry) == SCHEMA
    assert entry["run"] == "r1"
    assert entry["test"] == "t.py::test_a"
    assert (entry["type"], entry["name"], entry["phase"]) == ("action", "pods.kill", "inject")
    assert entry["status"] == "succeeded"
    assert entry["error"] is None
    assert entry["input"] == {"n": 1}
    assert entry["output"]["targets"] == ["ns/a"]
    assert entry["output"]["steps"] == [
        "inject: pods.kill: kill 1 pod",
        "verify: pods.kill: 1 pod(s) gone",
    ]
    start = datetime.fromisoformat(entry["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(entry["end"].replace("Z", "+00:00"))
    assert entry["start"].endswith("Z")
    assert start <= end
    assert entry["duration"] == pytest.approx((end - start).total_seconds(), abs=0.002)
    assert [e.phase for e in timeline.events] == ["inject", "verify"]  # still on the timeline


def test_a_failing_activity_records_the_error_and_still_raises(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    timeline = Timeline("t.py::test_a", journal=path, run="r1")
    with (
        pytest.raises(ValueError, match="bad"),
        timeline.activity("action", "nodes.drain", phase="inject", input={}),
    ):
        raise ValueError("bad value")
    (entry,) = lines(path)
    assert entry["status"] == "failed"
    assert entry["error"] == {"type": "ValueError", "message": "bad value"}


def test_a_dry_run_skip_is_a_skipped_activity_with_its_plan(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    timeline = Timeline("t.py::test_a", journal=path, run="r1")
    with (
        pytest.raises(pytest.skip.Exception),
        timeline.activity("action", "pods.kill", phase="inject", input={}),
    ):
        pytest.skip("chaos dry run: would kill 1 pod")
    (entry,) = lines(path)
    assert entry["status"] == "skipped"
    assert entry["error"] is None
    assert entry["output"]["plan"] == "chaos dry run: would kill 1 pod"


def test_a_nested_activity_joins_the_outer_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    timeline = Timeline("t.py::test_a", journal=path, run="r1")
    with (
        timeline.activity("action", "nodes.drain", phase="inject", input={}),
        timeline.activity("action", "nodes.drain", phase="revert", input={}),
    ):
        timeline.add("revert", "nodes.drain: node-1 uncordoned")
    (entry,) = lines(path)
    assert entry["phase"] == "inject"
    assert entry["output"]["steps"] == ["revert: nodes.drain: node-1 uncordoned"]


def test_events_outside_activities_are_lines_probes_by_their_phase(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    timeline = Timeline("t.py::test_a", journal=path, run="r1")
    timeline.add("steady", "steady before")
    timeline.add("steady", "NOT steady after revert")
    timeline.add("probe", "deployment shop/web: ready 2/2", duration=1.5, ready=2)
    # A monitor thread adds its events outside the test's activity.
    with timeline.activity("action", "pods.kill", phase="inject", input={}):
        worker = threading.Thread(target=timeline.add, args=("monitor", "http: 3 errors"))
        worker.start()
        worker.join()
    ok, failed, probe, monitor, action = lines(path)
    assert (ok["type"], ok["name"], ok["status"]) == ("probe", "steady", "succeeded")
    assert failed["status"] == "failed"
    assert failed["error"] == {"type": "steady", "message": "NOT steady after revert"}
    assert probe["name"] == "deployment shop/web"
    assert probe["input"] == {"duration": 1.5, "ready": 2}
    assert probe["duration"] == 1.5
    assert probe["output"] == {"text": "deployment shop/web: ready 2/2"}
    assert (monitor["type"], monitor["test"]) == ("probe", "t.py::test_a")
    assert action["type"] == "action"
    assert "steps" not in action["output"]


def test_without_a_journal_nothing_is_written(tmp_path: Path) -> None:
    timeline = Timeline("t.py::test_a")
    with timeline.activity("action", "pods.kill", phase="inject", input={}):
        timeline.add("inject", "x")
    assert list(tmp_path.iterdir()) == []


def test_a_run_truncates_the_file_unless_appending(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "j.jsonl"
    journal.start(path, run="r1", seed=7, append=False)
    journal.finish(path, run="r1", tests=[], outcomes={"passed": 1}, totals={"injected": 0})
    journal.start(path, run="r2", seed=8, append=False)
    assert [e["run"] for e in lines(path)] == ["r2"]
    journal.start(path, run="r3", seed=9, append=True)
    first, second = lines(path)
    assert (first["run"], second["run"]) == ("r2", "r3")
    assert (second["type"], second["phase"], second["input"]) == (
        "run",
        "start",
        {"seed": 9, "append": True},
    )


def test_the_run_ends_with_each_tests_verdict_and_a_status(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal.start(path, run="r1", seed=7, append=False)
    tests = [
        {"nodeid": "t.py::test_ok", "outcome": "passed"},
        {"nodeid": "t.py::test_bad", "outcome": "failed", "message": "AssertionError: no"},
    ]
    journal.finish(
        path,
        run="r1",
        tests=tests,
        outcomes={"passed": 1, "failed": 1},
        totals={"injected": 2, "leftovers": []},
    )
    _start, ok, bad, end = lines(path)
    assert (ok["type"], ok["status"], ok["error"]) == ("test", "succeeded", None)
    assert bad["status"] == "failed"
    assert bad["error"] == {"type": "failed", "message": "AssertionError: no"}
    assert (end["type"], end["phase"], end["status"]) == ("run", "end", "failed")
    assert end["output"]["outcomes"] == {"passed": 1, "failed": 1}
    assert end["start"] == _start["start"]


class _Crash:
    def __init__(self, message: str) -> None:
        self.message = message


class _Repr:
    def __init__(self, message: str) -> None:
        self.reprcrash = _Crash(message)


def test_a_failure_message_is_the_exception_text_shortened() -> None:
    assert failure_message(_Repr("AssertionError: assert 1 == 2")) == (
        "AssertionError: assert 1 == 2"
    )
    assert failure_message("NotSteadyError: not steady before chaos:\n  web 0/2") == (
        "NotSteadyError: not steady before chaos:\n  web 0/2"
    )
    long = failure_message(_Repr("\n".join(f"line {n}" for n in range(40))))
    assert long.splitlines()[-1] == "... (28 more lines in the test report)"
    assert len(long.splitlines()) == 13


def test_the_report_row_of_a_failed_test_shows_its_message_escaped() -> None:
    tests = [
        {
            "nodeid": "t.py::test_bad",
            "outcome": "failed",
            "message": "AssertionError: <b>down</b>",
            "timeline": [{"at": 0.5, "phase": "inject", "text": "pods.kill: x"}],
        }
    ]
    page = render(tests, RunTotals(injected=1, reverted=1), seed=1, run="r1")
    assert "AssertionError: &lt;b&gt;down&lt;/b&gt;" in page
    assert "<b>down" not in page
    assert "pods.kill: x" in page
