"""Fault markers and the steady_state marker, run as users run them, against the real cluster.

Each test creates a namespace ``mk-<random>`` with a 2-replica Deployment ``web`` and writes a
test file that names that namespace in its markers (markers are read at collection, so their
namespace must be known then). The file runs in a pytest subprocess: the cluster client uses
native modules that an in-process run cannot re-import.
"""

from __future__ import annotations

import functools
import secrets
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client import CoordinationV1Api
from kubernetes.client.exceptions import ApiException

from pytest_chaos import Kube
from pytest_chaos.errors import WaitTimeout
from pytest_chaos.settings import SETTINGS_KEY
from pytest_chaos.steady.diagnosis import pod_ready
from tests.e2e.manifests import deployment

WITHIN = 60
#: A test's pods must stay Ready for this long after the shop fixture made them.
QUIET = 25


@pytest.fixture
def shop(kube: Kube) -> Iterator[str]:
    """A namespace ready for pods with 2 ready `web` pods; deleted (finalizers released) after."""
    namespace = f"mk-{secrets.token_hex(4)}"
    wait_for_a_recent_node_heartbeat(kube)
    kube.core.create_namespace({"metadata": {"name": namespace}})
    try:
        kube.wait(
            functools.partial(kube.core.list_namespaced_service_account, namespace),
            lambda accounts: any(a.metadata.name == "default" for a in accounts),
            within=WITHIN,
            what=f"ServiceAccount {namespace}/default",
        )
        kube.apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))
        ready_uids(kube, namespace, "app=web", count=2)
        yield namespace
    finally:
        for pod in kube.core.list_namespaced_pod(namespace).items:
            if pod.metadata.finalizers:
                kube.core.patch_namespaced_pod(
                    pod.metadata.name, namespace, {"metadata": {"finalizers": None}}
                )
        kube.core.delete_namespace(namespace, propagation_policy="Background")


def _heartbeat(node: Any) -> datetime | None:
    for condition in node.status.conditions or []:
        if condition.type == "Ready":
            beat: datetime | None = condition.last_heartbeat_time
            return beat
    return None


def wait_for_a_recent_node_heartbeat(kube: Kube) -> None:
    """Start a test just after the fake nodes' heartbeat, when it is older than QUIET seconds.

    For local clusters started before kwok got node leases (``cluster up`` reuses a running
    cluster): there kwok heartbeats only through node status, so every ~55 s the node-lifecycle
    controller marks every node NotReady and every pod on them not Ready ("NodeNotReady"
    events); kwok puts the nodes back at once, but never the pods. Nodes with Leases heartbeat
    regularly: then this returns at once. Delete it once no such cluster is around.
    """
    if CoordinationV1Api(kube.api_client).list_namespaced_lease("kube-node-lease").items:
        return
    beats = [beat for node in kube.core.list_node().items if (beat := _heartbeat(node))]
    if not beats or (datetime.now(UTC) - min(beats)).total_seconds() < QUIET:
        return
    oldest = min(beats)

    def all_beat_again(nodes: list[Any]) -> bool:
        return all((beat := _heartbeat(n)) is not None and beat > oldest for n in nodes)

    kube.wait(kube.core.list_node, all_beat_again, within=WITHIN + 15, what="a node heartbeat")


def ready_uids(
    kube: Kube,
    namespace: str,
    selector: str,
    *,
    count: int,
    also: Callable[[set[str]], bool] | None = None,
) -> set[str]:
    """Wait for exactly count ready pods matching selector (and also(uids)); their uids."""

    def condition(pods: list[Any]) -> bool:
        uids = {p.metadata.uid for p in pods if pod_ready(p)}
        return len(uids) == count and (also is None or also(uids))

    try:
        pods = kube.wait(
            functools.partial(kube.core.list_namespaced_pod, namespace),
            condition,
            within=WITHIN,
            what=f"{count} ready pod(s) matching {selector} in {namespace}",
            label_selector=selector,
        )
    except WaitTimeout as exc:
        seen = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
        events = kube.core.list_namespaced_event(namespace).items
        raise AssertionError(
            f"{exc}\npods: {[(p.metadata.name, describe_pod(p)) for p in seen]}\nevents: "
            f"{[(e.last_timestamp, e.involved_object.name, e.reason) for e in events]}\n"
            f"nodes: {[(n.metadata.name, _heartbeat(n)) for n in kube.core.list_node().items]}"
        ) from None
    return {p.metadata.uid for p in pods if pod_ready(p)}


def describe_pod(pod: Any) -> str:
    conditions = {c.type: c.status for c in pod.status.conditions or []}
    return f"{pod.status.phase} {conditions} deleted={pod.metadata.deletion_timestamp}"


def all_uids(kube: Kube, namespace: str, selector: str) -> set[str]:
    pods = kube.core.list_namespaced_pod(namespace, label_selector=selector).items
    return {str(p.metadata.uid) for p in pods}


def user_file(namespace: str, body: str) -> str:
    """A user's test file whose markers name namespace (as NS)."""
    return f"import pytest\n\nNS = {namespace!r}\n\n" + textwrap.dedent(body)


Run = Callable[..., pytest.RunResult]


@pytest.fixture
def run(pytester: pytest.Pytester, pytestconfig: pytest.Config) -> Run:
    """Run the user's test file in a subprocess, on this session's local cluster."""
    local_name = pytestconfig.stash[SETTINGS_KEY].local_name

    def run_inner(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "--chaos-cluster=local",
            f"--chaos-local-name={local_name}",
            "-ra",
            *args,
            timeout=120,
        )

    return run_inner


def wait_available(kube: Kube, namespace: str, name: str) -> None:
    def available(objs: list[Any]) -> bool:
        return any((o.status.available_replicas or 0) >= (o.spec.replicas or 0) for o in objs)

    kube.wait(
        functools.partial(kube.apps.list_namespaced_deployment, namespace),
        available,
        within=WITHIN,
        what=f"Deployment {namespace}/{name} available",
        field_selector=f"metadata.name={name}",
    )


def test_a_pod_kill_marker_kills_one_pod_and_the_deployment_recovers(
    pytester: pytest.Pytester, run: Run, kube: Kube, shop: str
) -> None:
    before = ready_uids(kube, shop, "app=web", count=2)
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            @pytest.mark.chaos_pod_kill("app=web", namespace=NS)
            @pytest.mark.steady_state(namespace=NS, deployments=["web"], within="30s")
            def test_web_survives_losing_a_pod(kube):
                pods = kube.core.list_namespaced_pod(NS, label_selector="app=web").items
                assert pods, "the Deployment should already be replacing the killed pod"
            """,
        )
    )

    result = run()

    result.assert_outcomes(passed=1)
    after = ready_uids(kube, shop, "app=web", count=2, also=lambda uids: not before <= uids)
    assert len(before - all_uids(kube, shop, "app=web")) == 1
    assert len(after - before) == 1
    result.stdout.fnmatch_lines(
        [
            "*= chaos summary =*",
            "faults injected: 1, reverted: 1, revert failures: 0, leftovers: 0",
        ]
    )


def test_a_deployment_delete_marker_removes_it_during_the_test_and_restores_it(
    pytester: pytest.Pytester, run: Run, kube: Kube, shop: str
) -> None:
    original = kube.serialize(kube.apps.read_namespaced_deployment("web", shop))
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            from kubernetes.client.exceptions import ApiException

            @pytest.mark.chaos_deployment_delete("web", namespace=NS)
            def test_web_is_gone_while_the_test_runs(kube):
                with pytest.raises(ApiException) as gone:
                    kube.apps.read_namespaced_deployment("web", NS)
                assert gone.value.status == 404
            """,
        )
    )

    result = run()

    result.assert_outcomes(passed=1)
    restored = kube.serialize(kube.apps.read_namespaced_deployment("web", shop))
    assert restored["spec"] == original["spec"]
    assert restored["metadata"]["labels"] == original["metadata"]["labels"]
    assert restored["metadata"]["uid"] != original["metadata"]["uid"]
    ready_uids(kube, shop, "app=web", count=2)


def test_not_steady_before_chaos_is_an_error_and_injects_nothing(
    pytester: pytest.Pytester, run: Run, kube: Kube, shop: str
) -> None:
    before = ready_uids(kube, shop, "app=web", count=2)
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            @pytest.mark.chaos_pod_kill("app=web", namespace=NS)
            @pytest.mark.steady_state(namespace=NS, deployments=["does-not-exist"], within="1s")
            def test_web_survives_losing_a_pod():
                pass
            """,
        )
    )

    result = run()

    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "not steady before chaos" in output
    assert f"Deployment {shop}/does-not-exist does not exist" in output
    result.stdout.fnmatch_lines(["faults injected: 0, reverted: 0, *"])
    assert all_uids(kube, shop, "app=web") == before


def test_not_steady_after_revert_is_a_failure(
    pytester: pytest.Pytester, run: Run, kube: Kube, shop: str
) -> None:
    kube.apps.create_namespaced_deployment(shop, deployment("api", replicas=1))
    wait_available(kube, shop, "api")
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            @pytest.mark.chaos_deployment_delete("web", namespace=NS)
            @pytest.mark.steady_state(namespace=NS, deployments=["web", "api"], within="10s")
            def test_the_api_is_lost_for_good(kube):
                kube.apps.delete_namespaced_deployment("api", NS)
            """,
        )
    )

    result = run()

    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "not steady after revert" in output
    assert f"Deployment {shop}/api does not exist" in output
    result.stdout.fnmatch_lines(["faults injected: 1, reverted: 1, revert failures: 0, *"])
    # The marker's fault was reverted before the check: web is back.
    wait_available(kube, shop, "web")


def test_a_dry_run_skips_with_the_plan_and_touches_nothing(
    pytester: pytest.Pytester, run: Run, kube: Kube, shop: str
) -> None:
    before = ready_uids(kube, shop, "app=web", count=2)
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            @pytest.mark.chaos_pod_kill("app=web", namespace=NS)
            def test_web_survives_losing_a_pod():
                pass
            """,
        )
    )

    result = run("--chaos-dry-run")

    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "chaos: DRY RUN*",
            f"SKIPPED * chaos dry run: would kill 1 of 2 pod(s) matching 'app=web' in {shop}*",
        ]
    )
    assert all_uids(kube, shop, "app=web") == before
    assert ready_uids(kube, shop, "app=web", count=2) == before


def test_a_pod_kill_that_does_not_take_effect_is_inconclusive(
    pytester: pytest.Pytester, run: Run, kube: Kube, shop: str
) -> None:
    # A finalizer holds a deleted pod. kwok strips the finalizers of pods on its nodes when
    # they are deleted, so this pod is never scheduled: no scheduler is called "nobody".
    kube.core.create_namespaced_pod(
        shop,
        {
            "metadata": {
                "name": "stuck",
                "labels": {"app": "stuck"},
                "finalizers": ["example.com/hold"],
            },
            "spec": {
                "schedulerName": "nobody",
                "containers": [{"name": "stuck", "image": "example/stuck:1"}],
            },
        },
    )
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            def test_a_pod_held_by_a_finalizer(chaos):
                chaos.pods.kill("app=stuck", namespace=NS, within=2)
            """,
        )
    )

    result = run()

    assert result.parseoutcomes().get("errors") == 1
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "inconclusive" in output
    result.stdout.fnmatch_lines(
        ["ERROR (inconclusive) test_shop.py::test_a_pod_held_by_a_finalizer*"]
    )
    assert "pods.kill did not take effect" in output
    stuck = kube.core.read_namespaced_pod("stuck", shop)
    assert stuck.metadata.deletion_timestamp is not None


def test_a_selector_that_matches_nothing_is_an_error_listing_the_pods(
    pytester: pytest.Pytester, run: Run, kube: Kube, shop: str
) -> None:
    before = ready_uids(kube, shop, "app=web", count=2)
    names = sorted(str(p.metadata.name) for p in kube.core.list_namespaced_pod(shop).items)
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            @pytest.mark.chaos_pod_kill("app=nope", namespace=NS)
            def test_nope_survives_losing_a_pod():
                pass
            """,
        )
    )

    result = run()

    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert f"no pods match selector 'app=nope' in namespace '{shop}'" in output
    assert "ERROR (chaos error) test_shop.py::test_nope_survives_losing_a_pod" in output
    for name in names:
        assert f"{name} (app=web, pod-template-hash=" in output
    assert all_uids(kube, shop, "app=web") == before


@pytest.fixture
def system_canary(kube: Kube) -> Iterator[tuple[str, str]]:
    """A bare pod in kube-system, labelled uniquely: (selector, uid)."""
    name = f"chaos-canary-{secrets.token_hex(4)}"
    pod = kube.core.create_namespaced_pod(
        "kube-system",
        {
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "canary", "image": "example/canary:1"}]},
        },
    )
    try:
        yield f"app={name}", str(pod.metadata.uid)
    finally:
        try:
            kube.core.delete_namespaced_pod(name, "kube-system", grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise


def test_a_system_namespace_is_refused_and_nothing_is_deleted(
    pytester: pytest.Pytester, run: Run, kube: Kube, system_canary: tuple[str, str]
) -> None:
    selector, uid = system_canary
    pytester.makepyfile(
        test_shop=f"""
        def test_kill_in_kube_system(chaos):
            chaos.pods.kill({selector!r}, namespace="kube-system")
        """
    )

    result = run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*refusing to touch namespace 'kube-system': it is a system namespace*",
            "ERROR (chaos error) test_shop.py::test_kill_in_kube_system*",
        ]
    )
    pods = kube.core.list_namespaced_pod("kube-system", label_selector=selector).items
    assert [(p.metadata.uid, p.metadata.deletion_timestamp) for p in pods] == [(uid, None)]
