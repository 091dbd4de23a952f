"""Markers can target the test's own throw-away namespace through TEST_NAMESPACE."""

from __future__ import annotations

import pytest

SUITE = """
import pytest
from pytest_chaos import TEST_NAMESPACE


@pytest.fixture
def web(kube, chaos_namespace, steady):
    labels = {"app": "web"}
    kube.apps.create_namespaced_deployment(chaos_namespace, {"metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
        "metadata": {"labels": labels}, "spec": {"containers": [{"name": "w", "image": "x"}]}}}})
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)


@pytest.mark.steady_state(namespace=TEST_NAMESPACE, deployments=["web"], within="30s")
@pytest.mark.chaos_pod_kill("app=web", namespace=TEST_NAMESPACE, mode="all")
def test_web_comes_back(web, kube, chaos_namespace):
    pods = kube.core.list_namespaced_pod(chaos_namespace, label_selector="app=web").items
    print("ALIVE", sum(p.metadata.deletion_timestamp is None for p in pods))


@pytest.mark.chaos_deployment_delete("web", namespace=TEST_NAMESPACE)
def test_marker_brings_chaos_namespace_along(web):
    pass
"""


def test_test_namespace_in_markers_is_the_tests_chaos_namespace(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chaos-cluster=local", "-s", "--markers"
    )
    result.stdout.fnmatch_lines(["*chaos_pod_kill(selector=None, *, namespace, mode='one'*"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-cluster=local", "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*faults injected: 2, reverted: 2, revert failures: 0, leftovers: 0*"]
    )
