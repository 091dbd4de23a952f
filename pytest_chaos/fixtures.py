"""Fixtures: thin builders of the objects tests use; every one undoes what it set up."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.settings import SETTINGS_KEY, Settings

if TYPE_CHECKING:
    from pytest_chaos.chaos import Chaos, ChaosSession
    from pytest_chaos.cluster import ClusterHandle
    from pytest_chaos.kube import Kube
    from pytest_chaos.report.timeline import Timeline
    from pytest_chaos.steady import Steady

#: Label on every object pytest-chaos creates, so leftovers can always be found.
MANAGED_BY = {"app.kubernetes.io/managed-by": "pytest-chaos"}


#: The run's id and seed, set by the plugin at configure time (shared with xdist workers).
RUN_KEY = pytest.StashKey[tuple[str, int]]()
#: Each test's chaos timeline, for its report.
TIMELINE_KEY = pytest.StashKey["Timeline"]()
#: The session's chaos state, for the summary at the end.
SESSION_KEY = pytest.StashKey["ChaosSession"]()
#: Each test's Chaos object (chaos_namespace reverts its faults before deleting the namespace).
CHAOS_KEY = pytest.StashKey["Chaos"]()
#: Chaos figures of this process, written when the chaos session ends.
STATS_KEY = pytest.StashKey[list[dict[str, Any]]]()
#: Each test's Steady object (its HTTP monitors are reported with the test).
STEADY_KEY = pytest.StashKey["Steady"]()


def _settings(config: pytest.Config) -> Settings:
    return config.stash[SETTINGS_KEY]


def timeline_for(node: pytest.Item | pytest.Collector, config: pytest.Config) -> Timeline:
    """The timeline of a test (or of a module/class for wider-scoped fixtures)."""
    from pytest_chaos.report.timeline import Timeline

    if TIMELINE_KEY not in node.stash:
        node.stash[TIMELINE_KEY] = Timeline(
            node.nodeid, journal=_settings(config).journal, run=config.stash[RUN_KEY][0]
        )
    return node.stash[TIMELINE_KEY]


@pytest.fixture(scope="session")
def chaos_cluster(request: pytest.FixtureRequest) -> Iterator[ClusterHandle]:
    """The cluster under test, from ``--chaos-cluster`` (started and stopped when local)."""
    from pytest_chaos.cluster import provider_for

    provider = provider_for(_settings(request.config))
    handle = provider.acquire()
    yield handle
    provider.release()


@pytest.fixture(scope="session")
def kube(chaos_cluster: ClusterHandle) -> Iterator[Kube]:
    """Typed API access to the cluster under test (never touches the global client config)."""
    from pytest_chaos.kube import Kube

    handle = Kube.from_kubeconfig(chaos_cluster.kubeconfig, chaos_cluster.context)
    handle.check_reachable()
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def chaos_session(kube: Kube, request: pytest.FixtureRequest) -> Iterator[ChaosSession]:
    """This run's chaos state: ledger, allow-lists, seed. Refuses unsafe contexts up front."""
    import warnings

    from pytest_chaos.chaos import ChaosSession
    from pytest_chaos.errors import ChaosWarning

    run_id, seed = request.config.stash[RUN_KEY]
    session = ChaosSession(kube, _settings(request.config), run_id=run_id, seed=seed)
    session.safety.check_context()
    request.config.stash[SESSION_KEY] = session
    leftovers = session.leftovers()
    if leftovers:
        names = ", ".join(f"{r.fault} on {r.target}" for r in leftovers[:5])
        warnings.warn(
            ChaosWarning(
                f"{len(leftovers)} fault(s) of crashed runs are still in the cluster ({names}); "
                "revert them with `pytest-chaos cleanup` or `pytest --chaos-cleanup`"
            ),
            stacklevel=1,
        )
    yield session
    # While the cluster is still reachable: did this process leave anything behind?
    try:
        leftover_records = [f"{r.fault} on {r.target}" for r in session.open_records()]
    except Exception as exc:
        leftover_records = [f"(could not check for leftovers: {exc})"]
    session.ledger.finish()
    request.config.stash.setdefault(STATS_KEY, []).append(
        {
            "injected": session.stats.injected,
            "reverted": session.stats.reverted,
            "discarded": session.stats.discarded,
            "revert_failures": list(session.stats.revert_failures),
            "leftovers": leftover_records,
        }
    )


def _chaos(request: pytest.FixtureRequest) -> Iterator[Chaos]:
    from pytest_chaos.chaos import Chaos

    session: ChaosSession = request.getfixturevalue("chaos_session")
    injector = Chaos(
        session,
        request.node.nodeid,
        timeline_for(request.node, request.config),
        hook=request.config.hook,
    )
    request.node.stash[CHAOS_KEY] = injector
    yield injector
    injector.revert_all()


chaos = pytest.fixture(_chaos)
chaos.__doc__ = (
    """The fault injector (``chaos.pods``, ``chaos.deployments``...); reverts at teardown."""
)
module_chaos = pytest.fixture(scope="module", name="module_chaos")(_chaos)
class_chaos = pytest.fixture(scope="class", name="class_chaos")(_chaos)


@pytest.fixture
def steady(request: pytest.FixtureRequest) -> Iterator[Steady]:
    """Steady-state probes: deployment, statefulset, pods, node, namespace, http."""
    from pytest_chaos.steady import Steady

    probes = Steady(
        lambda: request.getfixturevalue("kube"),
        timeline_for(request.node, request.config),
        proxy_services=lambda: not request.getfixturevalue("chaos_cluster").pods_reachable,
    )
    request.node.stash[STEADY_KEY] = probes
    yield probes
    probes.close()


@pytest.fixture(scope="session")
def real_node(kube: Kube, chaos_cluster: ClusterHandle, request: pytest.FixtureRequest) -> str:
    """The name of a Ready real node, where pods really run; skips the test when there is none.

    On the local cluster that is the node ``chaos_local_real_node`` adds; on an existing
    cluster, any Ready node that is not a kwok fake.
    """
    from pytest_chaos.cluster.realnode import real_node_names

    names = real_node_names(kube)
    if names:
        return names[0]
    if chaos_cluster.real_node_missing:
        reason = "this host cannot run a real node: " + "; ".join(chaos_cluster.real_node_missing)
    elif chaos_cluster.provider == "local":
        reason = (
            "the local cluster runs without a real node: set chaos_local_real_node = auto (or "
            "--chaos-local-real-node=auto), or start it with `pytest-chaos cluster up --real-node`"
        )
    else:
        reason = "the cluster has no Ready node that runs containers (only kwok fakes)"
    pytest.skip(reason)


@pytest.fixture
def chaos_namespace(
    kube: Kube, chaos_session: ChaosSession, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A throw-away namespace, ready for pods, deleted (with everything in it) at teardown."""
    import secrets

    from kubernetes.client.exceptions import ApiException

    from pytest_chaos.kube.retry import call

    name = f"chaos-{secrets.token_hex(4)}"
    body: Any = {
        "metadata": {
            "name": name,
            "labels": {**MANAGED_BY, "chaos.pytest.dev/test": _label(request)},
        }
    }
    # 409: a retried create whose first attempt was applied but not answered (the name is
    # ours: random, and labelled with this test).
    kube.create(kube.core.create_namespace, body)
    chaos_session.safety.allow_throwaway(name)
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
        # Faults inside the namespace must be reverted while it still accepts objects; the chaos
        # fixture's own teardown then finds nothing left to do.
        injector = request.node.stash.get(CHAOS_KEY, None)
        try:
            if injector is not None:
                injector.revert_all()
        finally:
            # Even when a revert failed (reported, and failing the session): the namespace and
            # whatever it holds go, faults included; nothing of the test stays behind.
            try:
                call(kube.core.delete_namespace, name, propagation_policy="Background")
            except ApiException as exc:
                if exc.status != 404:
                    raise


def _label(request: pytest.FixtureRequest) -> str:
    """The test's name as a label value (63 characters of [A-Za-z0-9._-])."""
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in request.node.name)
    return cleaned.strip("._-")[:63].strip("._-") or "test"
