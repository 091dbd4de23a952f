"""chaos.random.pods on the embedded cluster: real deletions, seeded, stopped on time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

SUITE = """
import json, os
import pytest
from pytest_chaos import eventually

POD = {"containers": [{"name": "c", "image": "x"}]}


def bare_pods(kube, ns, n=6):
    for i in range(n):
        kube.core.create_namespaced_pod(
            ns, {"metadata": {"name": f"p{i}", "labels": {"app": "p"}}, "spec": POD}
        )


def web(kube, ns, replicas=3):
    labels = {"app": "web"}
    kube.apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": labels}, "template": {"metadata": {
        "labels": labels}, "spec": POD}}})


def test_victims(kube, chaos, chaos_namespace):
    bare_pods(kube, chaos_namespace)
    with chaos.random.pods(
        namespace=chaos_namespace, every="0.2s", for_="0.8s", max_in_flight=6
    ) as monkey:
        assert monkey.wait(30)
    with open(os.environ["VICTIMS"], "w") as out:
        json.dump([k.pod.split("/")[1] for k in monkey.kills], out)
    assert len(monkey.kills) == 4
    assert all(k.node for k in monkey.kills)
    killed = {k.pod.split("/")[1] for k in monkey.kills}

    def really_gone():
        left = {p.metadata.name for p in kube.core.list_namespaced_pod(chaos_namespace).items}
        assert left == {f"p{i}" for i in range(6)} - killed

    eventually(really_gone, within=30, every=0.1)


@pytest.mark.skipif("not os.environ.get('FAIL_TEST')")
def test_fails_mid_schedule(kube, chaos, steady, chaos_namespace):
    web(kube, chaos_namespace)
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)
    monkey = chaos.random.pods(namespace=chaos_namespace, every="0.2s", for_="10m")
    def two_kills():
        assert len(monkey.kills) >= 2

    eventually(two_kills, within=30, every=0.1)
    assert False, "the system deviated"
"""

ARGS = ("-p", "no:cacheprovider", "--chaos-cluster=local")


def victims(pytester: pytest.Pytester, seed: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    out = pytester.path / f"victims-{seed}.json"
    monkeypatch.setenv("VICTIMS", str(out))
    result = pytester.runpytest_subprocess(*ARGS, f"--chaos-seed={seed}", "-k", "victims")
    result.assert_outcomes(passed=1)
    victims: list[str] = json.loads(out.read_text())
    return victims


def test_the_same_seed_kills_the_same_pods_in_the_same_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_random=SUITE)
    first = victims(pytester, 1234, monkeypatch)
    assert len(first) == 4
    assert len(set(first)) == 4  # a killed bare pod is gone, never chosen twice
    assert victims(pytester, 1234, monkeypatch) == first
    others = [victims(pytester, seed, monkeypatch) for seed in (1, 2, 3)]
    assert any(other != first for other in others), (first, others)


def test_a_failing_test_stops_the_schedule_and_the_timeline_lists_every_kill(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytester.makepyfile(test_random=SUITE)
    monkeypatch.setenv("FAIL_TEST", "1")
    journal = tmp_path / "journal.jsonl"
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        *ARGS, "-k", "fails_mid_schedule", f"--chaos-journal={journal}"
    )
    assert time.monotonic() - started < 60  # not the schedule's 10 minutes
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "random.pods: killed" in output  # the failure's timeline lists the kills so far
    assert "faults injected: 1, reverted: 1, revert failures: 0, leftovers: 0" in output
    lines = [json.dumps(json.loads(line)) for line in journal.read_text().splitlines()]
    kills = [line for line in lines if "random.pods: killed" in line]
    stopped = [line for line in lines if "random.pods: schedule stopped after" in line]
    assert len(kills) >= 2, "every kill is in the journal"
    assert len(stopped) == 1
    # Stopped at the test's end: nothing killed after the stop line.
    assert lines.index(stopped[0]) > max(lines.index(k) for k in kills)


MARKED = """
import pytest
from pytest_chaos import TEST_NAMESPACE, eventually

POD = {"containers": [{"name": "c", "image": "x"}]}


@pytest.fixture
def web(kube, chaos_namespace):
    labels = {"app": "web"}
    kube.apps.create_namespaced_deployment(chaos_namespace, {"metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": {
        "metadata": {"labels": labels}, "spec": POD}}})
    return chaos_namespace


def replaced_three(kube, ns):
    seen = set()

    def check():
        seen.update(p.metadata.uid for p in kube.core.list_namespaced_pod(ns).items)
        assert len(seen) >= 6, seen

    eventually(check, within=30, every=0.1)


@pytest.mark.chaos_random_pods(namespace=TEST_NAMESPACE, every="0.3s", for_="1m")
@pytest.mark.steady_state(
    namespace=TEST_NAMESPACE, deployments=[{"name": "web", "min_ready": 2}], during=True
)
def test_one_pod_at_a_time_keeps_two_ready(kube, web):
    replaced_three(kube, web)


@pytest.mark.chaos_random_pods(namespace=TEST_NAMESPACE, every="0.3s", for_="1m")
@pytest.mark.steady_state(namespace=TEST_NAMESPACE, deployments=["web"], during=True)
def test_all_three_always_ready_is_not_what_happens(kube, web):
    replaced_three(kube, web)
"""


def test_the_marker_kills_during_the_test_while_the_steady_state_is_monitored(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_marker=MARKED)
    result = pytester.runpytest_subprocess(*ARGS, "--chaos-report=report.html")
    # max_in_flight=1: never two pods down at once, so two of three stay ready; the monitor
    # sees every dip, so "all three always ready" fails.
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    assert "faults injected: 2, reverted: 2, revert failures: 0, leftovers: 0" in output
    page = (pytester.path / "report.html").read_text()
    assert "random.pods: killed" in page
    assert "random.pods: schedule stopped after" in page


def test_bad_arguments_are_refused_before_anything_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.chaos_random_pods(namespace="shop", every="1m", for_="30s")
def test_longer_every():
    pass

@pytest.mark.chaos_random_pods(namespace="shop", every="soon", for_="30s")
def test_bad_every():
    pass
"""
    )
    result = pytester.runpytest_subprocess(*ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stdout.str() + result.stderr.str()
    assert "every='1m' is longer than for_='30s'" in err
    assert "every='soon' is not a duration" in err


def test_a_dry_run_plans_the_schedule_and_kills_nobody(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_dry="""
import pytest
from pytest_chaos import TEST_NAMESPACE

@pytest.mark.chaos_random_pods(namespace=TEST_NAMESPACE, every="1s", for_="1m")
def test_marked(chaos_namespace):
    raise AssertionError("a dry run never runs the test body")

def test_fixture(chaos, chaos_namespace):
    chaos.random.pods(namespace=chaos_namespace, every="1s", for_="1m")
    raise AssertionError("a dry run stops at the plan")
"""
    )
    result = pytester.runpytest_subprocess(*ARGS, "--chaos-dry-run", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["*chaos dry run: would kill any pod in chaos-* every 1s for 60s (60 tick(s)*"]
    )
    assert "faults injected: 0," in result.stdout.str()
