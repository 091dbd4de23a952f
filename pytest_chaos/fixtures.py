"""Fixtures: thin builders of the objects tests use; every one undoes what it set up."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.settings import SETTINGS_KEY, Settings

if TYPE_CHECKING:
    from pytest_chaos.cluster import ClusterHandle
    from pytest_chaos.kube import Kube

#: Label on every object pytest-chaos creates, so leftovers can always be found.
MANAGED_BY = {"app.kubernetes.io/managed-by": "pytest-chaos"}


def _settings(config: pytest.Config) -> Settings:
    return config.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def chaos_cluster(request: pytest.FixtureRequest) -> Iterator[ClusterHandle]:
    """The cluster under test, from ``--chaos-cluster`` (started and stopped when local)."""
    from pytest_chaos.cluster import LocalClusterProvider, provider_for

    config = request.config
    provider = provider_for(_settings(config))
    handle = provider.acquire()
    yield handle
    workeroutput = getattr(config, "workeroutput", None)
    if isinstance(provider, LocalClusterProvider) and workeroutput is not None:
        # Under xdist other workers may still use the cluster: the controller stops it.
        if provider.started:
            workeroutput["chaos_started_local"] = provider.cluster.name
        return
    provider.release()


@pytest.fixture(scope="session")
def kube(chaos_cluster: ClusterHandle) -> Iterator[Kube]:
    """Typed API access to the cluster under test (never touches the global client config)."""
    from pytest_chaos.kube import Kube

    handle = Kube.from_kubeconfig(chaos_cluster.kubeconfig, chaos_cluster.context)
    handle.check_reachable()
    yield handle
    handle.close()


@pytest.fixture
def chaos_namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A throw-away namespace, ready for pods, deleted (with everything in it) at teardown."""
    from kubernetes.client.exceptions import ApiException

    from pytest_chaos.kube.retry import call

    name = f"chaos-{secrets.token_hex(4)}"
    body: Any = {
        "metadata": {
            "name": name,
            "labels": {**MANAGED_BY, "chaos.pytest.dev/test": _label(request)},
        }
    }
    call(kube.core.create_namespace, body)
    try:
        # Pods are refused until the service-account controller has made "default".
        kube.wait(
            functools.partial(kube.core.list_namespaced_service_account, name),
            lambda accounts: any(a.metadata.name == "default" for a in accounts),
            within=60,
            what=f"ServiceAccount {name}/default",
        )
        yield name
    finally:
        try:
            call(kube.core.delete_namespace, name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


def _label(request: pytest.FixtureRequest) -> str:
    """The test's name as a label value (63 characters of [A-Za-z0-9._-])."""
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in request.node.name)
    return cleaned.strip("._-")[:63].strip("._-") or "test"
