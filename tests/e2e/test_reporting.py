"""What a run reports: junit properties, the timeline of a failed test, the seed, leftovers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_chaos import Kube
from pytest_chaos.ledger import MANAGED_BY, MANAGED_BY_LABEL, RECORD_KEY, RUN_LABEL, UNDO_LABEL

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

SCALE = """
def make_web(kube, ns):
    labels = {"app": "web"}
    kube.apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {
        "labels": labels}, "spec": {"containers": [{"name": "web", "image": "x"}]}}}})
"""

ARGS = ("-p", "no:cacheprovider", "--chaos-cluster=local")


def test_junit_gets_the_fault_and_the_monitor_figures(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SERVER)
    pytester.makepyfile(
        SCALE
        + """
def test_scale(kube, chaos, steady, chaos_namespace, server):
    make_web(kube, chaos_namespace)
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)
    with steady.http(server).monitor(every=0.02) as probe:
        chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1)
        steady.pods("app=web", namespace=chaos_namespace).assert_count(1, within=30)
    assert probe.availability == 1.0
"""
    )
    result = pytester.runpytest_subprocess(*ARGS, "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    tree = ET.parse(pytester.path / "junit.xml")
    properties = {p.get("name"): p.get("value") for p in tree.iter("property")}
    assert "deployments.scale" in str(properties["chaos.fault"])
    assert properties["chaos.availability"] == "1.0"
    assert str(properties["chaos.targets"]).endswith("/web")


def test_a_failing_test_shows_its_chaos_timeline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        SCALE
        + """
def test_deviates(kube, chaos, chaos_namespace):
    make_web(kube, chaos_namespace)
    chaos.deployments.scale("web", namespace=chaos_namespace, replicas=0)
    assert False, "the system deviated"
"""
    )
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- chaos timeline -*",
            "*inject   deployments.scale: Deployment chaos-*/web 2 -> 0 replicas",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*faults injected: 1, reverted: 1, revert failures: 0, leftovers: 0*"]
    )


def test_the_seed_is_in_the_header_and_shared_by_xdist_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
import pytest

@pytest.mark.parametrize("n", range(4))
def test_seed(chaos, n):
    print("SEED", chaos.seed)
""")
    result = pytester.runpytest_subprocess(*ARGS, "--chaos-seed=4242", "-n", "2", "-s")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["chaos: seed=4242 (replay with --chaos-seed=4242)*"])
    unseeded = pytester.runpytest_subprocess(*ARGS, "-n", "2", "-rA")
    unseeded.assert_outcomes(passed=4)
    header = next(line for line in unseeded.outlines if line.startswith("chaos: seed="))
    assert header.split("=")[1].split()[0].isdigit()


def test_the_next_run_warns_about_leftovers_and_cleanup_reverts_them(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    # The record a SIGKILLed run would have left: owner process long gone.
    record = {
        "id": "deadbeef0001",
        "fault": "deployments.scale",
        "test": "test_x.py::test_gone",
        "owner": {"run": "20200101T000000-dead00", "host": "nowhere", "pid": 1, "start_time": 1},
        "kind": "Deployment",
        "namespace": "default",
        "name": "ghost",
        "uid": "0-0",
        "undo": "none",
        "payload": {},
        "created": 0.0,
    }
    kube.core.create_namespaced_config_map(
        "default",
        {
            "metadata": {
                "name": "pytest-chaos-undo-deadbeef0001",
                "labels": {
                    UNDO_LABEL: "true",
                    RUN_LABEL: record["owner"]["run"],
                    MANAGED_BY_LABEL: MANAGED_BY,
                },
            },
            "data": {RECORD_KEY: json.dumps(record)},
        },
    )
    pytester.makepyfile("def test_uses_chaos(chaos):\n    pass\n")

    warned = pytester.runpytest_subprocess(*ARGS, "-W", "always")
    warned.assert_outcomes(passed=1)
    warned.stdout.fnmatch_lines(
        [
            "*1 fault(s) of crashed runs are still in the cluster "
            "(deployments.scale on Deployment default/ghost)*"
        ]
    )

    cleaned = pytester.runpytest_subprocess(*ARGS, "--chaos-cleanup")
    assert cleaned.ret == 0
    cleaned.stdout.fnmatch_lines(
        ["*nothing to undo: deployments.scale on Deployment default/ghost*"]
    )
    quiet = pytester.runpytest_subprocess(*ARGS, "-W", "always")
    quiet.assert_outcomes(passed=1)
    assert "crashed runs" not in quiet.stdout.str()


def test_the_journal_has_every_event_as_a_json_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        SCALE
        + """
def test_scale(kube, chaos, chaos_namespace):
    make_web(kube, chaos_namespace)
    chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1)
"""
    )
    result = pytester.runpytest_subprocess(*ARGS, "--chaos-journal=events.jsonl")
    result.assert_outcomes(passed=1)
    lines = [json.loads(line) for line in (pytester.path / "events.jsonl").read_text().splitlines()]
    actions = [line for line in lines if line["type"] == "action"]
    assert [a["phase"] for a in actions] == ["inject", "revert"]
    assert all(a["test"].endswith("::test_scale") for a in actions)
    assert actions[0]["output"]["targets"][0].endswith("/web")
    # The timeline's events are the steps of the activities they belong to.
    assert actions[0]["output"]["steps"][0].startswith("inject: deployments.scale: Deployment")
