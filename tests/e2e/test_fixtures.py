"""The kube and chaos_namespace fixtures, used from a test file as a user writes it."""

from __future__ import annotations

import pytest

from pytest_chaos import Kube


def test_kube_fixture_reaches_the_local_cluster(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_nodes(kube):
            assert kube.context == "pytest-chaos-local"
            assert len(kube.core.list_node().items) >= 3
        """
    )
    result = pytester.runpytest_subprocess("--chaos-cluster=local", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_chaos_namespace_is_ready_for_pods_and_removed_afterwards(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    pytester.makepyfile(
        """
        def test_use(kube, chaos_namespace):
            ns = kube.core.read_namespace(chaos_namespace)
            assert ns.metadata.labels["app.kubernetes.io/managed-by"] == "pytest-chaos"
            assert ns.metadata.labels["chaos.pytest.dev/test"] == "test_use"
            print("NAMESPACE", chaos_namespace)
        """
    )
    result = pytester.runpytest_subprocess("--chaos-cluster=local", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    (line,) = [ln for ln in result.outlines if "NAMESPACE" in ln]
    name = line.split("NAMESPACE ")[1].split()[0]
    namespace = kube.core.read_namespace(name)
    assert (
        namespace.metadata.deletion_timestamp is not None or namespace.status.phase == "Terminating"
    )


def test_the_kubeconfig_of_the_user_is_never_rewritten(kube: Kube) -> None:
    before = kube.kubeconfig.read_bytes()
    kube.core.list_namespace()
    assert kube.kubeconfig.read_bytes() == before
