"""Selective notifications, for real: pytester runs posting to a webhook on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.webhook import Webhook, webhook

SUITE = """
import pytest

def make_web(kube, ns):
    labels = {"app": "web"}
    kube.apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {
        "labels": labels}, "spec": {"containers": [{"name": "web", "image": "x"}]}}}})


def test_scaled(kube, chaos, steady, chaos_namespace):
    make_web(kube, chaos_namespace)
    with steady.deployment("web", namespace=chaos_namespace).monitor():
        chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1)


@pytest.mark.skipif("not config.getoption('--fail-one', default=False)")
def test_deviates(kube, chaos, chaos_namespace):
    make_web(kube, chaos_namespace)
    chaos.deployments.scale("web", namespace=chaos_namespace, replicas=0)
    assert False, "the shop went dark"
"""

CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--fail-one", action="store_true")
"""

ARGS = ("-p", "no:cacheprovider", "--chaos-cluster=local")


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with webhook() as receiver:
        yield receiver


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PYTEST_CHAOS_NOTIFY", raising=False)
    monkeypatch.delenv("PYTEST_CHAOS_NOTIFY_URL", raising=False)
    pytester.makepyfile(test_shop=SUITE)
    pytester.makeconftest(CONFTEST)
    return pytester


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def test_a_passing_run_does_not_notify_by_default_but_does_when_always(
    suite: pytest.Pytester, hook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_NOTIFY_URL", hook.url)
    quiet = suite.runpytest_subprocess(*ARGS)
    quiet.assert_outcomes(passed=1, skipped=1)
    assert hook.received == []
    assert "notification" not in output(quiet)

    told = suite.runpytest_subprocess(*ARGS, "--chaos-notify-on=always")
    told.assert_outcomes(passed=1, skipped=1)
    (posted,) = hook.received
    assert posted["verdict"] == "passed"
    assert posted["failed"] == []
    assert [f["fault"].split(":")[0] for f in posted["faults"]] == ["deployments.scale"]
    assert "Deployment" in posted["monitors"][0]["monitor"]
    # The URL is a secret: only its scheme and host are printed.
    assert "secret" not in output(told)
    assert "chaos: notification posted to http://127.0.0.1:" in output(told)


def test_a_failing_run_notifies_with_its_failed_tests_faults_and_monitors(
    suite: pytest.Pytester, hook: Webhook, tmp_path: Path
) -> None:
    url_file = tmp_path / "webhook-url"
    url_file.write_text(hook.url + "\n")
    result = suite.runpytest_subprocess(*ARGS, "--fail-one", f"--chaos-notify-url-file={url_file}")
    result.assert_outcomes(passed=1, failed=1)
    (posted,) = hook.received
    assert posted["verdict"] == "failed"
    assert posted["text"].startswith("pytest-chaos run ")
    ((failed),) = posted["failed"]
    assert failed["test"] == "test_shop.py::test_deviates"
    assert "the shop went dark" in failed["message"]
    assert sorted(f["test"] for f in posted["faults"]) == [
        "test_shop.py::test_deviates",
        "test_shop.py::test_scaled",
    ]
    assert posted["monitors"][0]["test"] == "test_shop.py::test_scaled"
    assert posted["replay"] == f"--chaos-seed={posted['seed']}"
    assert posted["chaos"]["leftovers"] == []


def test_a_webhook_that_fails_twice_is_retried_until_it_answers(
    suite: pytest.Pytester, hook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook.answers[:] = [500, 503]
    monkeypatch.setenv("PYTEST_CHAOS_NOTIFY_URL", hook.url)
    result = suite.runpytest_subprocess(*ARGS, "--fail-one")
    result.assert_outcomes(passed=1, failed=1)
    assert len(hook.received) == 3
    assert hook.received[0] == hook.received[2]
    assert "chaos: notification posted to http://127.0.0.1:" in output(result)
    assert "(attempt 3," in output(result)


def test_a_webhook_that_hangs_costs_the_timeout_and_a_warning_not_the_run(
    suite: pytest.Pytester, hook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook.answers[:] = ["hang"]
    monkeypatch.setenv("PYTEST_CHAOS_NOTIFY_URL", hook.url)
    started = time.monotonic()
    result = suite.runpytest_subprocess(
        *ARGS, "--chaos-notify-on=always", "--chaos-notify-timeout=2s"
    )
    took = time.monotonic() - started
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == 0
    assert len(hook.received) == 1
    assert "WARNING --chaos-notify: could not post to http://127.0.0.1:" in output(result)
    assert "timed out" in output(result)
    assert "the run's verdict is unchanged" in output(result)
    # The run itself takes a few seconds; the notification adds its 2s budget, not more.
    assert took < 30, took


def test_an_unreachable_webhook_is_a_warning_not_a_failure(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_NOTIFY_URL", "http://127.0.0.1:9/nowhere")
    result = suite.runpytest_subprocess(
        *ARGS, "--chaos-notify-on=always", "--chaos-notify-timeout=1s", "-W", "error"
    )
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == 0
    assert "WARNING --chaos-notify: could not post to http://127.0.0.1:9/…" in output(result)
    assert "nowhere" not in output(result)
