"""--chaos-report writes an HTML page of the run; --chaos-notify posts its summary."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

INNER = """
def make_web(kube, ns):
    labels = {"app": "web"}
    kube.apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {
        "labels": labels}, "spec": {"containers": [{"name": "web", "image": "x"}]}}}})


def test_scaled(kube, chaos, chaos_namespace):
    make_web(kube, chaos_namespace)
    chaos.deployments.scale("web", namespace=chaos_namespace, replicas=0)


def test_deviates(kube, chaos, chaos_namespace):
    make_web(kube, chaos_namespace)
    chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1)
    assert False, "<script>the system deviated</script>"


def test_without_chaos():
    pass
"""

ARGS = ("-p", "no:cacheprovider", "--chaos-cluster=local")


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_report_and_the_notification_tell_the_run(
    pytester: pytest.Pytester, receiver: tuple[str, list[dict[str, Any]]], workers: list[str]
) -> None:
    url, received = receiver
    pytester.makepyfile(test_shop=INNER)
    result = pytester.runpytest_subprocess(
        *ARGS, *workers, "--chaos-report=out/chaos.html", f"--chaos-notify={url}"
    )
    result.assert_outcomes(passed=2, failed=1)

    page = (pytester.path / "out" / "chaos.html").read_text()
    assert "faults injected: 2, reverted: 2, revert failures: 0, leftovers: 0" in page
    assert "test_shop.py::test_scaled" in page
    assert "test_shop.py::test_without_chaos" not in page  # no chaos, no row
    assert "deployments.scale: Deployment" in page
    assert "<script>" not in page
    assert "failed" in page

    (posted,) = received  # a failed run notifies (--chaos-notify-on=failure, the default)
    assert posted["text"].startswith("pytest-chaos run ")
    assert "failed: 1 failed, 2 passed; faults injected 2, reverted 2" in posted["text"]
    assert posted["chaos"]["leftovers"] == []


def test_a_notify_value_that_is_not_a_url_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess("--chaos-notify=slack-channel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--chaos-notify: 'slack-channel' from --chaos-notify is not an http(s) URL*"]
    )


def test_a_failed_tests_row_shows_why_it_failed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shop=INNER)
    result = pytester.runpytest_subprocess(
        *ARGS, "-k", "deviates or scaled", "--chaos-report=chaos.html"
    )
    result.assert_outcomes(passed=1, failed=1)
    page = (pytester.path / "chaos.html").read_text()
    rows = {row.split("</td>", 1)[0]: row for row in page.split("<tr><td>")[1:]}
    failed = rows["test_shop.py::test_deviates"]
    assert "<pre class='message'>AssertionError: &lt;script&gt;the system deviated" in failed
    assert "deployments.scale: Deployment" in failed  # its chaos timeline, beside the reason
    assert "class='message'" not in rows["test_shop.py::test_scaled"]
