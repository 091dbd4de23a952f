"""module_chaos and class_chaos: one fault held across several tests, reverted when they end."""

from __future__ import annotations

import pytest

from pytest_chaos import Kube
from tests.e2e.manifests import namespace_with

SUITE = """
import pytest

NS = {ns!r}


@pytest.fixture(scope="module")
def degraded(module_chaos):
    return module_chaos.deployments.scale("web", namespace=NS, replicas=1)


def test_first_sees_the_fault(degraded, kube):
    assert degraded.active
    assert kube.apps.read_namespaced_deployment("web", NS).spec.replicas == 1


def test_second_still_sees_it(degraded, kube):
    assert kube.apps.read_namespaced_deployment("web", NS).spec.replicas == 1


class TestWithClassScope:
    @pytest.fixture(scope="class")
    def drained(self, class_chaos):
        return class_chaos.deployments.scale("api", namespace=NS, replicas=0)

    def test_one(self, drained, kube):
        assert kube.apps.read_namespaced_deployment("api", NS).spec.replicas == 0

    def test_two(self, drained, kube):
        assert kube.apps.read_namespaced_deployment("api", NS).spec.replicas == 0


def test_after_the_class_api_is_back(kube):
    assert kube.apps.read_namespaced_deployment("api", NS).spec.replicas == 1
"""


def test_wider_scoped_faults_last_as_long_as_their_scope(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    with namespace_with(kube, "scopes", {"web": 2, "api": 1}) as namespace:
        pytester.makepyfile(test_suite=SUITE.format(ns=namespace))
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-cluster=local")
        result.assert_outcomes(passed=5)
        result.stdout.fnmatch_lines(
            ["*faults injected: 2, reverted: 2, revert failures: 0, leftovers: 0*"]
        )
        assert kube.apps.read_namespaced_deployment("web", namespace).spec.replicas == 2
        assert kube.apps.read_namespaced_deployment("api", namespace).spec.replicas == 1
