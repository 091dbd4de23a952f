"""The journal's run lines and the header's kubeconfig, as a user meets them (no cluster)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

PASSING_TEST = "def test_nothing():\n    pass\n"


def journal_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(text) for text in path.read_text().splitlines()]


def run_id(result: pytest.RunResult) -> str:
    match = re.search(r"^chaos: seed=\d+ .*, run (\S+)$", result.stdout.str(), re.MULTILINE)
    assert match, result.stdout.str()
    return match.group(1)


def test_the_header_names_the_kubeconfig_that_kubeconfig_points_at(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = pytester.path / "ci-kubeconfig.yaml"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest("--chaos-cluster=existing", "--chaos-context=ci")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"chaos: cluster=existing ({kubeconfig} from $KUBECONFIG, context ci)"]
    )
    assert "default kubeconfig" not in result.stdout.str()


def test_each_run_starts_the_journal_afresh_with_its_run_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    path = pytester.path / "out" / "journal.jsonl"
    first = pytester.runpytest("--chaos-cluster=local", f"--chaos-journal={path}")
    first.assert_outcomes(passed=1)
    start, end = journal_lines(path)
    assert (start["type"], start["phase"], end["type"], end["phase"]) == (
        "run",
        "start",
        "run",
        "end",
    )
    assert start["run"] == end["run"] == run_id(first)
    assert end["status"] == "succeeded"
    assert end["output"]["outcomes"] == {"passed": 1}

    second = pytester.runpytest("--chaos-cluster=local", f"--chaos-journal={path}")
    assert {line["run"] for line in journal_lines(path)} == {run_id(second)}


def test_appending_keeps_the_earlier_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    pytester.makeini("[pytest]\nchaos_journal = journal.jsonl\nchaos_journal_append = true\n")
    first = pytester.runpytest("--chaos-cluster=local")
    second = pytester.runpytest("--chaos-cluster=local")
    runs = [line["run"] for line in journal_lines(pytester.path / "journal.jsonl")]
    assert runs == [run_id(first)] * 2 + [run_id(second)] * 2


def test_append_without_a_journal_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest("--chaos-cluster=local", "--chaos-journal-append")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaos-journal-append: *add --chaos-journal=PATH*"])


def test_a_node_marker_may_pick_nodes_by_namespace_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n\n"
        '@pytest.mark.chaos_node_drain(namespace="go-demo-8")\n'
        '@pytest.mark.chaos_node_taint("chaos/x", namespace="go-demo-8", count=2)\n'
        "def test_drained():\n    pass\n"
    )
    result = pytester.runpytest("--chaos-cluster=local", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*::test_drained"])
