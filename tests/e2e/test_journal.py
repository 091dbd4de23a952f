"""``--chaos-journal``: one JSON line per activity, one run id, one file per run (xdist too)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube
from tests.e2e.manifests import namespace_with

ARGS = ("-p", "no:cacheprovider", "--chaos-cluster=local")

MAKE_WEB = """
def make_web(kube, ns):
    labels = {"app": "web"}
    kube.apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {
        "labels": labels}, "spec": {"containers": [{"name": "web", "image": "x"}]}}}})
"""


def journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(text) for text in path.read_text().splitlines()]


def header_run(result: pytest.RunResult) -> str:
    match = re.search(r"^chaos: seed=\d+ .*, run (\S+)$", result.stdout.str(), re.MULTILINE)
    assert match, result.stdout.str()
    return match.group(1)


def test_every_fault_and_revert_is_a_line_with_input_output_and_times(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_shop=MAKE_WEB
        + """
def test_scale(kube, chaos, chaos_namespace):
    make_web(kube, chaos_namespace)
    chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1)


def test_ghost(chaos, chaos_namespace):
    chaos.deployments.scale("ghost", namespace=chaos_namespace, replicas=1)
"""
    )
    result = pytester.runpytest_subprocess(*ARGS, "--chaos-journal=out/journal.jsonl")
    result.assert_outcomes(passed=1, errors=1)
    lines = journal(pytester.path / "out" / "journal.jsonl")

    assert {line["run"] for line in lines} == {header_run(result)}
    assert [(line["type"], line["phase"]) for line in lines] == [
        ("run", "start"),
        ("action", "inject"),
        ("action", "revert"),
        ("action", "inject"),
        ("test", "outcome"),
        ("test", "outcome"),
        ("run", "end"),
    ]
    _start, inject, revert, ghost, scale_verdict, ghost_verdict, end = lines
    assert inject["test"] == revert["test"] == "test_shop.py::test_scale"
    assert inject["name"] == "deployments.scale"
    assert inject["input"]["args"] == ["web"]
    assert inject["input"]["kwargs"]["replicas"] == 1
    assert inject["output"]["targets"][0].endswith("/web")
    assert inject["output"]["details"] == {"from": 2, "to": 1}
    assert inject["status"] == "succeeded"
    assert inject["error"] is None
    assert inject["start"] <= inject["end"] <= revert["start"]
    target = inject["output"]["targets"][0]
    assert revert["output"]["outcomes"] == {f"Deployment {target}": "reverted"}
    assert ghost["status"] == "failed"
    assert ghost["error"]["type"] == "TargetingError"
    assert "ghost" in ghost["error"]["message"]
    assert ghost["output"]["steps"] == [
        f"error: deployments.scale failed: TargetingError: {ghost['error']['message']}".split("\n")[
            0
        ]
    ]
    assert scale_verdict["output"] == {"outcome": "passed"}
    assert ghost_verdict["status"] == "failed"
    assert "test_shop.py:13: in test_ghost" in ghost_verdict["error"]["message"]
    assert "TargetingError: Deployment " in ghost_verdict["error"]["message"]
    assert end["status"] == "failed"
    assert end["output"]["outcomes"] == {"passed": 1, "error": 1}


def test_under_xdist_every_worker_appends_to_one_file_with_one_run_id(
    pytester: pytest.Pytester,
) -> None:
    tests = "".join(
        f"""
def test_scale_{n}(kube, chaos, chaos_namespace):
    make_web(kube, chaos_namespace)
    chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1)
"""
        for n in range(4)
    )
    pytester.makepyfile(test_shop=MAKE_WEB + tests)
    path = pytester.path / "journal.jsonl"
    path.write_text('{"from": "an earlier run"}\n')
    result = pytester.runpytest_subprocess(*ARGS, "-n", "2", f"--chaos-journal={path}")
    result.assert_outcomes(passed=4)
    lines = journal(path)

    assert {line["run"] for line in lines} == {header_run(result)}
    assert (lines[0]["type"], lines[0]["phase"]) == ("run", "start")
    assert (lines[-1]["type"], lines[-1]["phase"]) == ("run", "end")
    actions = Counter((line["test"], line["phase"]) for line in lines if line["type"] == "action")
    assert actions == {
        (f"test_shop.py::test_scale_{n}", phase): 1
        for n in range(4)
        for phase in ("inject", "revert")
    }


def test_a_dry_run_skip_points_at_the_test_and_names_no_selector_as_any_labels(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    with namespace_with(kube, "dryrun", {"web": 2}) as namespace:
        pytester.makepyfile(
            test_dry=f"""
import pytest

NS = {namespace!r}


def test_kill_any(chaos):
    chaos.pods.kill(namespace=NS)


@pytest.mark.chaos_pod_kill("app=web", namespace=NS)
def test_marker():
    pass
"""
        )
        result = pytester.runpytest_subprocess(
            *ARGS, "--chaos-dry-run", "-rs", "--chaos-journal=journal.jsonl"
        )
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [
            f"SKIPPED [[]1[]] test_dry.py:6: chaos dry run: would kill 1 of 2 pod(s) with any "
            f"labels (no selector) in {namespace} (mode=one): web-*",
            f"SKIPPED [[]1[]] test_dry.py:10: chaos dry run: would kill 1 of 2 pod(s) matching "
            f"'app=web' in {namespace}*",
        ],
        consecutive=False,
    )
    assert "pytest_chaos" not in "\n".join(
        line for line in result.stdout.lines if line.startswith("SKIPPED")
    )
    skipped = [
        line for line in journal(pytester.path / "journal.jsonl") if line["type"] == "action"
    ]
    assert [line["status"] for line in skipped] == ["skipped", "skipped"]
    assert skipped[0]["output"]["plan"].startswith("chaos dry run: would kill 1 of 2 pod(s)")


SERVER = """
import http.server, threading
import pytest

@pytest.fixture
def server():
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *args):
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown(); httpd.server_close(); thread.join()
"""


def test_steady_checks_and_monitor_summaries_are_probe_lines(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    pytester.makeconftest(SERVER)
    with namespace_with(kube, "probes", {"web": 2}) as namespace:
        pytester.makepyfile(
            test_probes=f"""
import pytest

NS = {namespace!r}


@pytest.mark.steady_state(namespace=NS, deployments=["web"], within="30s")
@pytest.mark.chaos_pod_kill("app=web", namespace=NS)
def test_web(steady, server):
    with steady.http(server).monitor(every=0.05):
        steady.pods("app=web", namespace=NS).assert_count(2, within=30)
"""
        )
        result = pytester.runpytest_subprocess(*ARGS, "--chaos-journal=journal.jsonl")
    result.assert_outcomes(passed=1)
    lines = journal(pytester.path / "journal.jsonl")
    texts = [line["output"]["text"] for line in lines if line["type"] == "probe"]
    kinds = [(line["type"], line["phase"]) for line in lines]

    def position(text: str) -> int:
        return next(n for n, line in enumerate(lines) if (line["output"] or {}).get("text") == text)

    # The marker's checks before and after, around the fault and its revert.
    assert (
        position("steady before")
        < kinds.index(("action", "inject"))
        < kinds.index(("action", "revert"))
        < position("steady after")
    )
    # The monitor's summary, once.
    summaries = [t for t in texts if "availability 100.0%" in t]
    assert len(summaries) == 1, texts
    probes = [line for line in lines if line["type"] == "probe"]
    assert {p["test"] for p in probes} == {"test_probes.py::test_web"}
    assert {p["status"] for p in probes} == {"succeeded"}
    assert {p["phase"] for p in probes} == {"steady", "probe"}
    kill = next(line for line in lines if line["type"] == "action" and line["phase"] == "inject")
    assert kill["name"] == "pods.kill"
    assert kill["input"]["kwargs"]["namespace"] == namespace
