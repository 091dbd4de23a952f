"""Object probes and monitors on the embedded cluster: hypotheses over time, one meaning of a pod.

Every monitor here watches (no polling) and records each change; the tests check what it saw
during a real fault (a scale-down, a pod kill, a drain of a fake kwok node), and the generic
``steady.object`` probe on a ConfigMap, a Deployment's status and a custom resource.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator

import pytest
from kubernetes.client.exceptions import ApiException

from examples.nodes import NodePool, node_pool
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.errors import ChaosConfigError, NotSteadyError
from pytest_chaos.steady import Steady
from tests.e2e.manifests import deployment


@pytest.fixture
def web(kube: Kube, chaos_namespace: str, steady: Steady) -> str:
    """A 3-replica Deployment `web` on the cluster's kwok nodes, available; its namespace."""
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("web", replicas=3))
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=60)
    return chaos_namespace


@pytest.fixture
def pool(kube: Kube) -> Iterator[NodePool]:
    """Two extra fake nodes of this test only (set up before `chaos`, so drains are undone)."""
    with node_pool(kube, 2) as created:
        yield created


def phases(steady: Steady, phase: str) -> list[str]:
    assert steady._timeline is not None
    return [e.text for e in steady._timeline.events if e.phase == phase]


# ------------------------------------------------------------------------- workload monitors


def test_a_scale_down_below_the_wanted_count_is_a_deviation_with_its_min_ready(
    chaos: Chaos, steady: Steady, web: str
) -> None:
    probe = steady.deployment("web", namespace=web)
    with probe.monitor() as monitor:
        assert monitor.readings[0].ok  # the first reading is taken before the block starts
        assert (monitor.readings[0].ready, monitor.readings[0].wanted) == (3, 3)
        scale = chaos.deployments.scale("web", namespace=web, replicas=1)
        assert monitor.wait_for(lambda r: r.ready == 1, 30) is not None
        scale.revert()
        monitor.assert_recovered(within=60)  # waits, by watch, while still deviated

    # The worst deviation (a blip may come first: the spec changed before its controller saw
    # it; and the controllers may take pods away more than once while the scale goes and back).
    dip = min(monitor.intervals, key=lambda d: d.min_ready or 0)
    assert dip.min_ready == 1, monitor.readings
    assert dip.end is not None
    assert dip.duration > 0
    assert dip.seen.startswith("1/3 ready"), dip.seen
    assert any("1/3 ready" in r.seen and "spec wants 1" in r.seen for r in monitor.readings)
    assert monitor.min_ready == 1
    assert monitor.recovered
    assert 0 < monitor.unready_time <= monitor.duration
    assert monitor.what == f"Deployment {web}/web"
    assert monitor in steady.object_monitors
    monitor.assert_never_below(1)
    with pytest.raises(NotSteadyError, match=r"never fewer than 2 ready[\s\S]*min 1 ready"):
        monitor.assert_never_below(2)
    with pytest.raises(NotSteadyError, match=r"\d deviation\(s\)"):
        monitor.assert_steady()
    summary = monitor.summary()
    assert summary["min_ready"] == 1
    assert summary["recovered"] is True
    windows = summary["deviations"]
    assert isinstance(windows, list)
    assert len(windows) == len(monitor.intervals)
    assert min(w["min_ready"] for w in windows) == 1
    assert all(0 < w["start"] < w["end"] <= summary["duration"] for w in windows)
    assert re.search(r"min 1 ready, \d deviation\(s\) for \d+\.\ds, recovered", str(monitor))
    probes = phases(steady, "probe")
    assert any("deviated" in text for text in probes)
    assert any("holds again" in text for text in probes)
    assert any("never fewer than 2 ready: NOT held" in t for t in phases(steady, "steady"))


def test_a_steady_monitor_records_no_deviation(steady: Steady, web: str) -> None:
    with steady.deployment("web", namespace=web).monitor() as monitor:
        steady.deployment("web", namespace=web).assert_ready()
    monitor.assert_steady()
    monitor.assert_never_below(3)
    assert monitor.intervals == []
    assert monitor.unready_time == 0
    assert any("held after" in t for t in phases(steady, "steady"))


def test_a_pod_kill_on_kwok_nodes_shows_the_dip_and_the_recovery(
    chaos: Chaos, steady: Steady, web: str
) -> None:
    pods = steady.pods("app=web", namespace=web)
    with pods.monitor() as every_pod, steady.deployment("web", namespace=web).monitor() as wanted:
        chaos.pods.kill("app=web", namespace=web, mode="one")
        wanted.assert_recovered(within=30)
        every_pod.assert_recovered(within=30)

    for monitor in (every_pod, wanted):
        assert monitor.intervals, monitor
        assert monitor.min_ready == 2  # the victim is never counted once it is terminating
        assert monitor.recovered
    assert pods.assert_count(3)  # the replacement is ready: 3 ready pods, none terminating


def test_assert_recovered_fails_when_a_deviation_outlasts_within(
    chaos: Chaos, steady: Steady, web: str
) -> None:
    with steady.deployment("web", namespace=web).monitor() as monitor:
        chaos.deployments.scale("web", namespace=web, replicas=2)
        # No wait here: the verdict first catches up with what the API says now.
        with pytest.raises(NotSteadyError, match=r"1 deviation\(s\) lasted longer") as error:
            monitor.assert_recovered(within=0.5)
    assert re.search(r"2/3 ready[^\n]*spec wants 2", str(error.value))
    assert "deviations:\n  from +" in str(error.value)


def test_leaving_the_block_records_what_the_api_said_up_to_its_end(
    chaos: Chaos, steady: Steady, web: str
) -> None:
    with steady.deployment("web", namespace=web).monitor() as monitor:
        chaos.deployments.scale("web", namespace=web, replicas=2)  # and leave at once
    assert monitor.intervals, monitor.readings
    assert monitor.intervals[-1].end is None
    assert not monitor.recovered


def test_a_statefulset_monitor_with_min_ready_holds_through_a_pod_kill(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    manifest = deployment("db", replicas=2)
    manifest.update(kind="StatefulSet")
    manifest["spec"]["serviceName"] = "db"
    kube.apps.create_namespaced_stateful_set(chaos_namespace, manifest)
    db = steady.statefulset("db", namespace=chaos_namespace)
    db.assert_available(within=60)
    with db.monitor(min_ready=1) as at_least_one, db.monitor() as all_of_them:
        chaos.pods.kill("app=db", namespace=chaos_namespace, mode="one")
        all_of_them.assert_recovered(within=60)
    at_least_one.assert_steady()  # one pod was always ready
    at_least_one.assert_never_below(1)
    assert at_least_one.readings[0].wanted == 1
    assert all_of_them.min_ready == 1
    with pytest.raises(NotSteadyError, match=rf"StatefulSet {chaos_namespace}/db: expected"):
        all_of_them.assert_steady()


def test_monitor_rejects_a_bad_min_ready(steady: Steady, web: str) -> None:
    with pytest.raises(ChaosConfigError, match=r"min_ready=-1"):
        steady.pods("app=web", namespace=web).monitor(min_ready=-1)


# ------------------------------------------------------------------------- one meaning of a pod


def test_a_drain_cannot_pass_for_ready_while_the_replacement_is_pending(
    kube: Kube, pool: NodePool, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    """The drain false pass of issue 11: readiness comes from the pods, not the lagging status.

    Two replicas, one per node, on a pool of two nodes: draining one leaves its replacement
    Pending (Unschedulable) until the node is uncordoned, so any check that passes in between
    would be a false pass.
    """
    manifest = pool.deployment("web", replicas=2, one_per_node=True)
    kube.apps.create_namespaced_deployment(chaos_namespace, manifest)
    namespace = steady.namespace(chaos_namespace)
    namespace.assert_ready(within=60)
    web = steady.deployment("web", namespace=chaos_namespace)

    with web.monitor() as monitor, namespace.monitor() as whole:
        fault = chaos.nodes.drain(hosting="app=web", namespace=chaos_namespace, timeout="60s")
        pending = monitor.wait_for(lambda r: "Pending (Unschedulable)" in r.seen, 30)
        assert pending is not None, monitor.readings
        with pytest.raises(NotSteadyError, match=r"Pending \(Unschedulable\)"):
            namespace.assert_ready()
        with pytest.raises(NotSteadyError, match=r"1/2 ready"):
            web.assert_available()
        with pytest.raises(NotSteadyError):
            steady.pods("app=web", namespace=chaos_namespace).assert_ready()
        fault.revert()
        namespace.assert_ready(within=60)
        monitor.assert_recovered(within=60)
        whole.assert_recovered(within=60)

    [dip] = monitor.intervals
    assert dip.min_ready == 1
    assert re.match(r"1/2 ready: web-\S+ (Terminating|Pending)", dip.seen), dip.seen
    [whole_dip] = whole.intervals
    assert whole_dip.min_ready == 1
    assert "Deployment web: 1/2 ready" in whole_dip.seen


# ------------------------------------------------------------------------- steady.object


def test_a_configmap_value_by_path_regex_and_predicate(
    kube: Kube, steady: Steady, chaos_namespace: str
) -> None:
    kube.core.create_namespaced_config_map(
        chaos_namespace,
        {
            "metadata": {"name": "cfg", "labels": {"app.kubernetes.io/name": "shop"}},
            "data": {"mode": "blue", "replicas": "3"},
        },
    )
    cfg = steady.object("v1", "ConfigMap", "cfg", namespace=chaos_namespace)
    assert cfg.assert_that("data.mode", "blue") == "blue"
    assert cfg.assert_that("metadata.labels['app.kubernetes.io/name']", re.compile("^sh"))
    cfg.assert_that("data.replicas", predicate=lambda v: int(v) >= 2)
    with pytest.raises(NotSteadyError) as error:
        cfg.assert_that("data.mode", "green")
    message = str(error.value)
    assert f"ConfigMap {chaos_namespace}/cfg: data.mode == 'green'" in message
    assert "last seen: data.mode = 'blue'" in message

    with cfg.monitor("data.mode", "blue") as monitor:
        kube.core.patch_namespaced_config_map("cfg", chaos_namespace, {"data": {"mode": "red"}})
        assert monitor.wait_for(lambda r: not r.ok, 30) is not None
        kube.core.patch_namespaced_config_map("cfg", chaos_namespace, {"data": {"mode": "blue"}})
        monitor.assert_recovered(within=30)
    [dip] = monitor.intervals
    assert dip.seen == "data.mode = 'red'"
    assert dip.min_ready is None
    assert monitor.what == f"ConfigMap {chaos_namespace}/cfg"


def test_a_deployment_status_by_path_and_condition_filter(steady: Steady, web: str) -> None:
    obj = steady.object("apps/v1", "Deployment", "web", namespace=web)
    assert obj.assert_that("status.readyReplicas", (2, 3), within=30) == 3
    obj.assert_that("status.replicas", range(3, 4))
    obj.assert_that('status.conditions[?type=="Available"].status', "True")
    obj.assert_that("spec.template.spec.containers[0].image", re.compile(r":1\.0$"))
    obj.assert_that(lambda o: o["spec"]["replicas"], 3)
    with pytest.raises(NotSteadyError, match=r"status.readyReplicas in \[5, 9\] within 0.2"):
        obj.assert_that("status.readyReplicas", (5, 9), within=0.2)


def test_a_custom_resource_and_clear_errors_for_unknown_kinds(
    kube: Kube, steady: Steady, chaos_namespace: str
) -> None:
    body = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {
            "hosts": ["web"],
            "http": [{"route": [{"destination": {"host": "web"}}], "timeout": "3s"}],
        },
    }
    kube.custom.create_namespaced_custom_object(
        "networking.istio.io", "v1", chaos_namespace, "virtualservices", body
    )
    vs = steady.object("networking.istio.io/v1", "VirtualService", "web", namespace=chaos_namespace)
    vs.assert_that("spec.http[0].timeout", "3s")
    vs.assert_that("spec.http[0].route[*].destination.host", ["web"])
    with vs.monitor("spec.http[0].timeout", "3s") as monitor:
        pass
    monitor.assert_steady()

    with pytest.raises(
        ChaosConfigError, match=r"kind='VirtualSrvice' is not served .*VirtualService"
    ):
        steady.object(
            "networking.istio.io/v1", "VirtualSrvice", "web", namespace=chaos_namespace
        ).assert_that("spec", predicate=bool)
    with pytest.raises(ChaosConfigError, match=r"api_version='nothing.example/v9' is not served"):
        steady.object("nothing.example/v9", "Thing", "x", namespace=chaos_namespace).assert_that(
            "spec", predicate=bool
        )
    with pytest.raises(ChaosConfigError, match=r"is namespaced; pass namespace="):
        steady.object("v1", "ConfigMap", "x").assert_that("data", predicate=bool)
    with pytest.raises(NotSteadyError, match=r"VirtualService .*/gone does not exist"):
        steady.object(
            "networking.istio.io/v1", "VirtualService", "gone", namespace=chaos_namespace
        ).assert_that("spec", predicate=bool)


@pytest.fixture
def widget_crd(kube: Kube) -> Iterator[str]:
    """A CustomResourceDefinition of this test's own (``Widget``, namespaced); its group."""
    group = f"h1-{secrets.token_hex(3)}.example.com"
    kube.extensions.create_custom_resource_definition(
        {
            "metadata": {"name": f"widgets.{group}"},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
    )
    try:
        kube.wait(
            kube.extensions.list_custom_resource_definition,
            lambda crds: any(
                c.type == "Established" and c.status == "True"
                for crd in crds
                for c in (crd.status.conditions or [])
            ),
            within=30,
            what=f"widgets.{group} established",
            field_selector=f"metadata.name=widgets.{group}",
        )
        yield group
    finally:
        with contextlib.suppress(ApiException):
            kube.extensions.delete_custom_resource_definition(f"widgets.{group}")


def test_a_watch_that_fails_for_good_is_raised_when_the_block_ends(
    kube: Kube, steady: Steady, chaos_namespace: str, widget_crd: str
) -> None:
    kube.custom.create_namespaced_custom_object(
        widget_crd,
        "v1",
        chaos_namespace,
        "widgets",
        {
            "apiVersion": f"{widget_crd}/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 3},
        },
    )
    widget = steady.object(f"{widget_crd}/v1", "Widget", "w", namespace=chaos_namespace)
    widget.assert_that("spec.size", 3)
    monitor = widget.monitor("spec.size", 3)
    with pytest.raises(ApiException) as error, monitor:  # noqa: PT012 - the block is what fails
        kube.extensions.delete_custom_resource_definition(f"widgets.{widget_crd}")
        assert monitor.wait_for(lambda r: False, 60) is None  # ends when the watch fails
        assert monitor.failure is not None
    assert error.value.status == 404
    assert any("does not exist" in r.seen for r in monitor.readings)  # its objects went first
