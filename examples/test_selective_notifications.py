"""Selective notifications: a scheduled chaos run tells the channel only when something broke.

The chapter "Running Chaos Experiments Inside A Kubernetes Cluster" of *The DevOps Toolkit: Chaos
Engineering* runs experiments on a schedule and sends Slack notifications, and then only on
failure: a channel that hears "all fine" every five minutes stops being read. Here that is
``--chaos-notify-on=failure`` (the default) with the webhook's URL from the environment (a
mounted Secret in a CronJob: ``--chaos-notify-url-file``), never from the command line.

This example is the CI job itself: it runs a small chaos suite twice with pytest's ``pytester``,
once passing, once failing, against a webhook receiver on 127.0.0.1, and shows what arrives.
A Slack incoming-webhook URL (``https://hooks.slack.com/...``) would get the same summary as a
Block Kit message.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.chaos

SUITE = """
import os


def test_checkout_survives_losing_a_pod(kube, chaos, steady, chaos_namespace):
    labels = {"app": "checkout"}
    kube.apps.create_namespaced_deployment(chaos_namespace, {"metadata": {"name": "checkout"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {
        "labels": labels}, "spec": {"containers": [{"name": "c", "image": "checkout"}]}}}})
    checkout = steady.deployment("checkout", namespace=chaos_namespace)
    checkout.assert_available(within=30)
    chaos.pods.kill("app=checkout", namespace=chaos_namespace)
    checkout.assert_available(within=30)
    broken = bool(os.environ.get("BREAK_IT"))
    assert not broken, "checkout lost its orders"
"""


@pytest.fixture
def channel() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for the chat channel: a webhook receiver on loopback."""
    received: list[dict[str, Any]] = []

    class Webhook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/secret", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_only_the_failed_run_is_announced(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    channel: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = channel
    monkeypatch.setenv("PYTEST_CHAOS_NOTIFY_URL", url)  # the Secret, not a command-line flag
    pytester.makepyfile(test_checkout=SUITE)

    passing = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-cluster=local")
    passing.assert_outcomes(passed=1)
    assert received == []  # a passing run stays quiet

    monkeypatch.setenv("BREAK_IT", "1")
    failing = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-cluster=local")
    failing.assert_outcomes(failed=1)
    (message,) = received
    assert message["verdict"] == "failed"
    assert message["failed"][0]["test"] == "test_checkout.py::test_checkout_survives_losing_a_pod"
    assert "checkout lost its orders" in message["failed"][0]["message"]
    assert message["faults"][0]["fault"].startswith("pods.kill:")
    assert message["replay"] == f"--chaos-seed={message['seed']}"
    assert "secret" not in failing.stdout.str()  # only https://host/… is ever printed
