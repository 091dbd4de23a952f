"""The pytest_chaos_* hooks, implemented in a conftest as a user extends pytest-chaos."""

from __future__ import annotations

import pytest

CONFTEST = """
def pytest_chaos_fault_injected(fault, test):
    print(f"HOOK injected {fault.kind} {', '.join(fault.targets)} in {test}")


def pytest_chaos_fault_reverted(fault, test):
    print(f"HOOK reverted {fault.kind} active={fault.active}")


def pytest_chaos_run_summary(config, summary):
    print(f"HOOK summary {summary['text']}")
"""

TEST = """
def test_scale(kube, chaos, chaos_namespace):
    labels = {"app": "web"}
    kube.apps.create_namespaced_deployment(chaos_namespace, {"metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
        "metadata": {"labels": labels}, "spec": {"containers": [{"name": "w", "image": "x"}]}}}})
    with chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1):
        pass
    chaos.deployments.restart("web", namespace=chaos_namespace)
"""


def test_extension_hooks_see_every_fault_and_the_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-cluster=local", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*HOOK injected deployments.scale chaos-*/web in test_extension_hooks_see_every*",
            "*HOOK reverted deployments.scale active=False*",
            "*HOOK injected deployments.restart*",
            "*HOOK reverted deployments.restart active=False*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "HOOK summary pytest-chaos run * passed: 1 passed; faults "
            "injected 2, reverted 2, revert failures 0, leftovers 0*"
        ]
    )
