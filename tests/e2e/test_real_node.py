"""Faults on the local cluster's real node, measured from the outside like a user would.

On the kwok fake nodes nothing runs, so the other e2e tests stop at the API. Here the pods are
real processes (the demo app, tools/images/demo) on ``real-node-0``: requests go through a real
Service (kube-proxy's iptables rules), a killed pod really receives SIGTERM, a cut really resets a
TCP connection, stress-ng really burns the pod's CPU budget. Everything is observed from the host
that runs pytest: HTTP to ClusterIPs and pod IPs, the pods' cgroups, the kubelet's log files.

Each test is skipped (with the reason) where the cluster has no real node.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube, eventually
from pytest_chaos.chaos import Chaos
from pytest_chaos.cluster import ClusterHandle, realnode
from pytest_chaos.errors import NotSteadyError
from pytest_chaos.faults import undo
from pytest_chaos.steady import Steady
from tests.e2e.realnode_manifests import (
    PORT,
    cpu_rate,
    create_service,
    demo_deployment,
    deploy,
    follow_log,
    get_json,
    get_text,
    identity,
    memory_limit,
    memory_usage,
    pod_cgroup,
    service,
    the_pod,
)

pytestmark = pytest.mark.real_node

MiB = 2**20


@pytest.fixture
def pod_logs(chaos_cluster: ClusterHandle) -> Path:
    """Where the local cluster's real node keeps container logs on this host."""
    return chaos_cluster.kubeconfig.parent / "realnode" / "pod-logs"


def pod_url(pod: dict[str, Any], path: str = "/") -> str:
    return f"http://{pod['status']['podIP']}:{PORT}{path}"


# --- 1. pod kill under an HTTP monitor --------------------------------------------------------


@pytest.mark.parametrize(
    ("replicas", "pre_stop_sleep", "grace_period", "warm_up"),
    [
        pytest.param(1, None, 0, 4, id="1-replica-has-an-outage"),
        pytest.param(2, 3, None, 2, id="2-graceful-replicas-stay-available"),
    ],
)
def test_killing_a_pod_behind_a_service(
    kube: Kube,
    chaos: Chaos,
    steady: Steady,
    chaos_namespace: str,
    replicas: int,
    pre_stop_sleep: int | None,
    grace_period: int | None,
    warm_up: int,
) -> None:
    """The book's "Application Availability", measured with requests through the Service.

    A replacement cannot take over at once: the app warms up first (readiness
    ``initialDelaySeconds``). One replica, crashed (``grace_period=0``): it leaves the Service
    at once and nothing answers until the replacement is ready 4 s later. (A *graceful* kill
    of the only replica may show no outage at all: with no ready endpoint kube-proxy still
    sends requests to the terminating pod, and kubelet took 3.9 s to deliver SIGTERM here, so
    a 2 s warm-up won the race.) Two replicas are not enough by themselves: the
    killed one stops listening while kube-proxy still sends it requests for a moment (endpoint
    removal takes 1-2 s on this cluster; 96-100% availability measured), so they also shut
    down gracefully, with a preStop pause that keeps answering until they are out of the
    Service. Then no request fails.
    """
    cluster_ip = create_service(kube, chaos_namespace, service("web"))
    deploy(
        kube,
        chaos_namespace,
        demo_deployment("web", replicas=replicas, pre_stop_sleep=pre_stop_sleep, warm_up=warm_up),
    )
    url = f"http://{cluster_ip}/"
    # kube-proxy programs the Service a moment after the pods are Ready.
    steady.http(url).assert_ok(within=15, consecutive=5, every=0.05)

    with steady.http(url, body="Release: real", timeout=1).monitor(every=0.05) as traffic:
        chaos.pods.kill("app=web", namespace=chaos_namespace, grace_period=grace_period)
        steady.pods("app=web", namespace=chaos_namespace).assert_count(replicas, within=30)
        steady.http(url).assert_ok(within=15, consecutive=10, every=0.05)

    assert traffic.recovered, str(traffic)
    if replicas == 1:
        # Nothing could answer between the kill and the replacement's readiness.
        assert traffic.availability < 1, str(traffic)
        assert traffic.outages, str(traffic)
        outage = traffic.outages[0]
        assert outage.end is not None
        assert outage.end > outage.start
        assert outage.samples >= 1
        assert traffic.time_to_recover is not None
        assert 0 < traffic.time_to_recover < 30
    else:
        assert traffic.availability >= 0.99, str(traffic)


# --- 2. graceful shutdown ---------------------------------------------------------------------


def test_a_kill_with_the_pods_own_grace_period_lets_the_app_shut_down(
    kube: Kube, chaos: Chaos, chaos_namespace: str, pod_logs: Path
) -> None:
    """The pod stays (Terminating) until the app has exited: its last words are in its log."""
    deploy(kube, chaos_namespace, demo_deployment("web"))
    pod = the_pod(kube, chaos_namespace, "web")

    with follow_log(kube, pod, pod_logs) as log:
        started = time.monotonic()
        chaos.pods.kill("app=web", namespace=chaos_namespace)
        took = time.monotonic() - started
        # Already written when the kill returned (the follower polls the file every 50 ms).
        exited = log.wait_for("in-flight requests finished; exiting", within=1)

    assert exited, f"{log.source}:\n{log.text()}"
    assert "received SIGTERM" in log.text()
    assert took < 10, f"the app exits on SIGTERM, yet the kill took {took:.1f}s"


def test_a_kill_with_grace_period_0_removes_the_pod_at_once_but_the_kubelet_still_sends_sigterm(
    kube: Kube, chaos: Chaos, chaos_namespace: str, pod_logs: Path
) -> None:
    """``grace_period=0`` is a force delete: the API object is gone at once, the process is not.

    The kubelet stops the container with its minimum grace period (SIGTERM, then SIGKILL after
    2 s), so an app that exits on SIGTERM still shuts down gracefully. Measured, not assumed.
    """
    deploy(kube, chaos_namespace, demo_deployment("web"))
    pod = the_pod(kube, chaos_namespace, "web")

    with follow_log(kube, pod, pod_logs) as log:
        started = time.monotonic()
        chaos.pods.kill("app=web", namespace=chaos_namespace, grace_period=0)
        took = time.monotonic() - started
        sigterm = log.wait_for("received SIGTERM", within=10)

    assert took < 2, f"the force-deleted pod took {took:.1f}s to leave the API"
    assert sigterm, f"no SIGTERM logged ({log.source}):\n{log.text()}"


# --- 3. cut a client off its broker -----------------------------------------------------------


def test_cut_resets_the_brokers_connection_and_the_client_reconnects_after_revert(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    broker_ip = create_service(kube, chaos_namespace, service("broker", port=9000, target="broker"))
    deploy(
        kube,
        chaos_namespace,
        demo_deployment("broker", env={"BROKER_LISTEN": ":9000"}, ports={"broker": 9000}),
    )
    deploy(kube, chaos_namespace, demo_deployment("app", env={"BROKER_ADDR": f"{broker_ip}:9000"}))
    app = the_pod(kube, chaos_namespace, "app")
    status = pod_url(app, "/broker")

    def connected() -> dict[str, Any]:
        state = get_json(status)
        assert state["connected"], state
        return state

    before = eventually(connected, within=20, every=0.1)

    cut = chaos.network.cut("app=app", namespace=chaos_namespace, to="broker")

    (connections,) = cut.details["connections"].values()
    assert connections == {"closed": 1, "left": 0}

    # The established connection was reset at once ...
    def dropped() -> dict[str, Any]:
        state = get_json(status)
        assert not state["connected"], state
        assert state["disconnects"] == before["disconnects"] + 1, state
        return state

    eventually(dropped, within=5, every=0.05)

    # ... and new ones are refused while the cut is active.
    def refused() -> dict[str, Any]:
        state = get_json(status)
        assert "connection refused" in state["last_error"], state
        return state

    eventually(refused, within=5, every=0.05)
    for _ in range(3):
        state = get_json(status)
        assert not state["connected"], state
        assert state["connects"] == before["connects"], state
    # The pod was not restarted for it.
    assert identity(the_pod(kube, chaos_namespace, "app")) == identity(app)

    cut.revert()

    after = eventually(connected, within=15, every=0.1)
    assert after["connects"] == before["connects"] + 1
    assert identity(the_pod(kube, chaos_namespace, "app")) == identity(app)


def test_a_crash_looping_app_can_still_be_cut_and_uncut(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    """Network faults live in the pod's network namespace, not in a container's.

    Their ephemeral containers name no target container, so an app that is not running (here
    it exits at once, as an app might when it cannot reach its broker) does not keep the cut,
    or its undo, from running.
    """
    crashing = demo_deployment("app")
    crashing["spec"]["template"]["spec"]["containers"][0]["args"] = ["-no-such-flag"]
    kube.apps.create_namespaced_deployment(chaos_namespace, crashing)
    app = steady.pods("app=app", namespace=chaos_namespace)
    (restart,) = app.assert_restarted(within=30)
    assert (restart.reason, restart.exit_code) == ("Error", 2)  # Go's flag package

    cut = chaos.network.cut("app=app", namespace=chaos_namespace, to="10.96.0.0/12")

    (state,) = cut.details["pods"].values()
    assert state.startswith("terminated (exit 0)"), state
    cut.revert()

    pod = the_pod(kube, chaos_namespace, "app")
    (undone,) = [
        s
        for s in pod["status"]["ephemeralContainerStatuses"]
        if s["name"].startswith("chaos-undo-")
    ]
    assert undone["state"]["terminated"]["exitCode"] == 0, undone


# --- 4. partition: a NetworkPolicy, enforced only by some network plugins ---------------------


def test_partition_blocks_traffic_where_the_network_plugin_enforces_it(
    kube: Kube, chaos: Chaos, chaos_namespace: str, chaos_cluster: ClusterHandle
) -> None:
    if chaos_cluster.network_policies == "":  # the provider knows nothing enforces them here
        pytest.skip(
            "this node's network plugin (the CNI bridge) does not enforce NetworkPolicies: "
            "partition is an API object only here (the netns real nodes of --real-nodes N run "
            "kube-network-policies: tests/e2e/test_real_nodes_partition.py)"
        )
    deploy(kube, chaos_namespace, demo_deployment("app"))
    deploy(kube, chaos_namespace, demo_deployment("peer"))
    app = the_pod(kube, chaos_namespace, "app")
    peer = the_pod(kube, chaos_namespace, "peer")
    # Asked from the host, answered by the app pod calling the peer pod: the app's side.
    through_app = pod_url(app, f"/?addr={pod_url(peer)}")

    def flows() -> None:
        status, body = get_text(through_app, timeout=3)
        assert status == 200, body
        assert "Version" in body, body

    def blocked() -> None:
        try:
            status, body = get_text(through_app, timeout=3)
        except OSError:
            return  # the app itself timed out waiting for the peer: blocked
        assert status != 200, f"app -> peer still answers: {body.strip()}"

    eventually(flows, within=10)

    partition = chaos.network.partition("app=app", namespace=chaos_namespace, peers="app=peer")

    try:
        eventually(blocked, within=5, every=0.5)
    except AssertionError:
        if chaos_cluster.network_policies:
            raise  # an enforcer runs: the partition must show
        pytest.skip(  # unknown (an existing cluster): its network plugin did not enforce it
            "this cluster's network plugin does not enforce NetworkPolicies: partition is an "
            "API object only here"
        )
    partition.revert()
    eventually(flows, within=15)


# --- 5. CPU stress honours the limit ----------------------------------------------------------


def test_cpu_stress_is_capped_at_the_containers_limit(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    half_a_core = {"cpu": "500m"}
    deploy(
        kube,
        chaos_namespace,
        demo_deployment("web", resources={"requests": half_a_core, "limits": half_a_core}),
    )
    pod = the_pod(kube, chaos_namespace, "web")
    uid = pod["metadata"]["uid"]
    assert (pod_cgroup("cpu", uid) / "cpu.cfs_quota_us").read_text().strip() == "50000"
    idle = cpu_rate(uid, over=1)

    stress = chaos.stress.pods("app=web", namespace=chaos_namespace, cpu=2, duration="2m")

    assert stress.details["cpu_millicores"] == 500
    assert "500m; 2000m asked" in stress.details["limited_by"]["cpu"]
    busy = cpu_rate(uid, over=3)

    stress.revert()

    def calm() -> float:
        rate = cpu_rate(uid, over=1)
        assert rate < 0.1, f"the pod still uses {rate:.2f} cores after the revert"
        return rate

    after = eventually(calm, within=10, every=0)
    assert idle < 0.1, f"the idle demo app used {idle:.2f} cores"
    assert 0.3 < busy < 0.65, f"under stress the pod used {busy:.2f} cores (limit 0.5)"
    assert after < 0.1
    assert identity(the_pod(kube, chaos_namespace, "web")) == identity(pod)


# --- 6. memory stress: held in the pod's budget; past the limit, an OOMKilled restart ---------


def test_memory_stress_is_charged_to_the_pod_and_freed_on_revert(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    deploy(kube, chaos_namespace, demo_deployment("web", resources={"limits": {"memory": "128Mi"}}))
    pod = the_pod(kube, chaos_namespace, "web")
    uid = pod["metadata"]["uid"]
    before = memory_usage(uid)

    stress = chaos.stress.pods("app=web", namespace=chaos_namespace, memory="48Mi", duration="2m")

    assert stress.details["oom_expected"] is False
    held = eventually(lambda: _at_least(memory_usage(uid), before + 48 * MiB), within=10, every=0.1)
    stress.revert()

    after = eventually(lambda: _at_most(memory_usage(uid), before + 8 * MiB), within=10, every=0.1)
    steady.pods("app=web", namespace=chaos_namespace).assert_no_restarts()
    assert identity(the_pod(kube, chaos_namespace, "web")) == identity(pod)
    print(
        f"pod memory: {before / MiB:.1f}Mi idle, {held / MiB:.1f}Mi held, {after / MiB:.1f}Mi after"
    )


def test_node_stress_runs_a_pod_on_the_real_node_that_burns_and_holds_what_was_asked(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    stress = chaos.stress.nodes(
        name="real-node-0", cpu="500m", memory="32Mi", namespace=chaos_namespace, duration="2m"
    )

    assert stress.details["effect"] == "stress-ng running"
    (pod_name,) = [n["pod"] for n in stress.details["nodes"].values()]
    pod = kube.serialize(kube.core.read_namespaced_pod(pod_name, chaos_namespace))
    uid = pod["metadata"]["uid"]
    eventually(lambda: _at_least(memory_usage(uid), 32 * MiB), within=10, every=0.1)
    busy = cpu_rate(uid, over=2)
    assert 0.35 < busy < 0.65, f"the stress pod used {busy:.2f} cores (500m asked)"

    stress.revert()

    assert (
        kube.core.list_namespaced_pod(
            chaos_namespace, field_selector=f"metadata.name={pod_name}"
        ).items
        == []
    )


def _at_least(value: int, bound: int) -> int:
    assert value >= bound, f"{value / MiB:.1f}Mi < {bound / MiB:.1f}Mi"
    return value


def _at_most(value: int, bound: int) -> int:
    assert value <= bound, f"{value / MiB:.1f}Mi > {bound / MiB:.1f}Mi"
    return value


def test_memory_stress_past_the_limit_ends_in_an_oomkilled_restart_that_steady_reports(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    """The pod's memory cgroup fills up; the kernel OOM-kills the app, not the memory holder.

    The holder's memory is not in its resident set and it keeps its oom_score_adj, so the
    kernel picks the process with the most resident memory: the app. Its container restarts
    with reason OOMKilled; the holder, in the app's PID namespace, dies with it, so the
    restarted app has its memory back and the pod is Ready again without any revert.
    """
    deploy(kube, chaos_namespace, demo_deployment("web", resources={"limits": {"memory": "64Mi"}}))
    pod = the_pod(kube, chaos_namespace, "web")
    uid = pod["metadata"]["uid"]
    assert memory_limit(uid) == 64 * MiB
    web = steady.pods("app=web", namespace=chaos_namespace)
    web.assert_no_restarts()
    with pytest.raises(NotSteadyError) as nothing_yet:
        web.assert_restarted("OOMKilled")
    assert "restarted after a run that ended OOMKilled" in str(nothing_yet.value)
    assert "last seen: no container restarted" in str(nothing_yet.value)

    stress = chaos.stress.pods("app=web", namespace=chaos_namespace, memory="limit", duration="2m")

    assert stress.details["memory_bytes"] == 64 * MiB
    assert stress.details["oom_expected"] is True
    (restart,) = web.assert_restarted("OOMKilled", within=30)
    assert (restart.pod, restart.container) == (pod["metadata"]["name"], "demo")
    assert (restart.count, restart.exit_code) == (1, 137)
    with pytest.raises(NotSteadyError) as failed:
        web.assert_no_restarts()
    assert f"{restart.pod}/demo restarted 1 time(s), last run ended OOMKilled (exit 137)" in str(
        failed.value
    )

    # Same pod, restarted container, memory freed: Ready and serving again, before any revert.
    web.assert_ready(within=30)
    assert the_pod(kube, chaos_namespace, "web")["metadata"]["uid"] == uid
    status, body = get_text(pod_url(pod))
    assert status == 200
    assert "Release: real" in body
    assert memory_usage(uid) < 32 * MiB
    assert undo.revert(kube, stress.records[0]).startswith("already ended by itself")
    stress.revert()
    web.assert_no_restarts(since=[restart])


# --- 6. cluster DNS ---------------------------------------------------------------------------


def test_pods_resolve_services_by_name_through_the_cluster_dns(
    kube: Kube, chaos_namespace: str
) -> None:
    web_ip = create_service(kube, chaos_namespace, service("web"))
    deploy(kube, chaos_namespace, demo_deployment("web"))
    deploy(kube, chaos_namespace, demo_deployment("client"))
    client = the_pod(kube, chaos_namespace, "client")
    answer = (200, "Version: 0.0.1; Release: real\n")

    def routed(cluster_ip: str) -> None:
        """Wait until kube-proxy routes the ClusterIP (probed from this host, fresh connections):
        the client's HTTP keep-alive must not pin a connection made before."""

        def answers() -> None:
            try:
                assert get_text(f"http://{cluster_ip}/") == answer
            except OSError as exc:  # not routed yet: refused or timed out
                raise AssertionError(f"not routed yet: {exc!r}") from exc

        eventually(answers, within=10, every=0.1)

    def through_client(url: str) -> tuple[int, str]:
        return get_text(pod_url(client, f"/?addr={url}"))

    routed(web_ip)
    # The short name (the pod's search path), the namespaced name and the FQDN.
    for name in ("web", f"web.{chaos_namespace}", f"web.{chaos_namespace}.svc.cluster.local"):
        assert through_client(f"http://{name}/") == answer, name

    # A name that is no Service fails at once, as on any cluster.
    status, body = through_client("http://nope/")
    assert status == 500
    assert "lookup nope" in body, body
    assert "no such host" in body, body

    # A Service created now resolves as soon as kube-proxy routes it: the DNS watches the API.
    late = service("late")
    late["spec"]["selector"] = {"app": "web"}
    routed(create_service(kube, chaos_namespace, late))
    assert through_client("http://late/") == answer


def test_a_cut_to_the_kube_dns_service_is_a_dns_outage_for_the_chosen_pods_only(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    create_service(kube, chaos_namespace, service("web"))
    for name in ("web", "app", "other"):
        deploy(kube, chaos_namespace, demo_deployment(name))
    app, other = (the_pod(kube, chaos_namespace, name) for name in ("app", "other"))

    def lookup(pod: dict[str, Any], name: str) -> tuple[int, str]:
        """A new connection by name from pod (a name it has not used: no pooled connection)."""
        return get_text(pod_url(pod, f"/?addr=http://{name}/"))

    cut = chaos.network.cut("app=app", namespace=chaos_namespace, to="kube-dns.kube-system")
    # The Service's address and its server's (on this host).
    assert sorted(cut.details["ips"]) == sorted(["10.96.0.10", realnode.host_ip()])

    status, body = lookup(app, "web")
    assert status == 500
    assert "lookup web" in body, body
    assert lookup(other, "web")[0] == 200  # the other pod resolves as before

    cut.revert()

    assert lookup(app, f"web.{chaos_namespace}")[0] == 200
