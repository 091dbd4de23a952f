"""Real traffic on a real node: what a client sees, not only what the API says.

The other examples run on kwok's fake nodes, where pods never run a process: they show which pods
the API counts as Ready, not whether a request gets an answer. The local cluster's real node
(``chaos_local_real_node = "auto"``, or ``pytest-chaos cluster up --real-node``) runs the pods for
real, so the same experiments send real requests through a real Service and break real TCP
connections:

* **Application Availability** (the book's chapter): kill the only instance of an app while a
  monitor sends a request through its Service every 50 ms. The monitor reports the outage: the
  availability and how long it took to recover. With two instances that also shut down
  gracefully (a preStop pause, so the killed one keeps answering until the Service has dropped
  it) no request fails. Without the pause a few requests do: two replicas alone are not enough.
* **Cutting a service off its broker** (the NATS question): ``chaos.network.cut`` resets the
  service's long-lived connection at once and refuses reconnects until the revert; then the
  service reconnects by itself. Nothing is restarted.
* **A DNS outage**: ``chaos.network.cut(..., to="kube-dns.kube-system")`` cuts the app off the
  cluster DNS, as on any cluster. New lookups fail at once; what the app already holds (its
  pooled HTTP connection, its broker connection) goes on working, and addresses still work.
* **Running out of memory**: ``chaos.stress.pods(memory="limit")`` fills the pod's memory budget
  the way a leak would; the kernel OOM-kills the app and the kubelet restarts it.
  ``steady.pods(...).assert_restarted("OOMKilled")`` reports the restart and why, and the
  monitor measures what the clients saw meanwhile.

The app is pytest-chaos's demo image: ``/`` answers, ``/ready`` is its readiness, ``/broker``
reports its broker connection as JSON. Pods find each other by Service name (the real node's
cluster DNS), as in production; the test process, outside the cluster, uses ClusterIPs and pod IPs.

Run with ``pytest -m chaos examples/``; skipped, with the reason, where no real node can run.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pytest_chaos import Kube, eventually
from pytest_chaos.chaos import Chaos
from pytest_chaos.cluster.realnode import ON_REAL_NODE
from pytest_chaos.steady import Steady

pytestmark = [pytest.mark.chaos, pytest.mark.real_node]

DEMO = "localhost/pytest-chaos/demo:1.0"


def demo(
    name: str,
    *,
    replicas: int = 1,
    env: dict[str, str] | None = None,
    graceful: bool = False,
    memory_limit: str | None = None,
) -> dict[str, Any]:
    """The demo app on the real node; it needs 2 s to warm up before it reports ready."""
    container: dict[str, Any] = {
        "name": name,
        "image": DEMO,
        "imagePullPolicy": "Never",
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": 8080},
            "initialDelaySeconds": 2,
            "periodSeconds": 1,
        },
    }
    if graceful:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": 3}}}
    if memory_limit:
        container["resources"] = {"limits": {"memory": memory_limit}}
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # The kwok nodes beside it run nothing: pin to the real node (its label,
                    # and the toleration of its taint).
                    **ON_REAL_NODE,
                    "containers": [container],
                },
            },
        },
    }


def service(kube: Kube, namespace: str, name: str, *, port: int, target: int) -> str:
    """A ClusterIP Service over app=<name>; returns its ClusterIP."""
    body = {
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": target}]},
    }
    return str(kube.core.create_namespaced_service(namespace, body).spec.cluster_ip)


@pytest.mark.parametrize(
    ("replicas", "graceful"),
    [
        pytest.param(1, False, id="one-instance-deviates"),
        pytest.param(2, True, id="two-graceful-instances-complete"),
    ],
)
def test_killing_an_instance_under_traffic(
    kube: Kube,
    chaos: Chaos,
    steady: Steady,
    chaos_namespace: str,
    replicas: int,
    graceful: bool,
) -> None:
    url = f"http://{service(kube, chaos_namespace, 'web', port=80, target=8080)}/"
    kube.apps.create_namespaced_deployment(
        chaos_namespace, demo("web", replicas=replicas, graceful=graceful)
    )
    steady.deployment("web", namespace=chaos_namespace).assert_ready(within=60)
    steady.http(url).assert_ok(within=15, consecutive=5, every=0.05)  # the Service routes

    with steady.http(url, timeout=1).monitor(every=0.05) as traffic:
        chaos.pods.kill("app=web", namespace=chaos_namespace)
        steady.pods("app=web", namespace=chaos_namespace).assert_count(replicas, within=30)
        steady.http(url).assert_ok(within=15, consecutive=10, every=0.05)

    if replicas == 1:
        # The book's deviation, measured: requests failed until the replacement was ready.
        assert traffic.availability < 1, str(traffic)
        assert traffic.recovered, str(traffic)
        assert traffic.time_to_recover is not None
    else:
        assert traffic.availability >= 0.99, str(traffic)


def test_a_service_cut_off_its_broker_reconnects_after_the_revert(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    service(kube, chaos_namespace, "broker", port=9000, target=9000)
    kube.apps.create_namespaced_deployment(
        chaos_namespace, demo("broker", env={"BROKER_LISTEN": ":9000"})
    )
    kube.apps.create_namespaced_deployment(
        chaos_namespace,
        demo("app", env={"BROKER_ADDR": "broker:9000"}),  # by name, via DNS
    )
    steady.namespace(chaos_namespace).assert_ready(within=60)
    (app,) = kube.core.list_namespaced_pod(chaos_namespace, label_selector="app=app").items
    status = f"http://{app.status.pod_ip}:8080/broker"

    def broker(connected: bool) -> dict[str, Any]:
        state: dict[str, Any] = httpx.get(status, timeout=2).json()
        assert state["connected"] is connected, state
        return state

    def refused() -> None:
        assert "connection refused" in broker(connected=False)["last_error"]

    before = eventually(lambda: broker(connected=True), within=20)

    cut = chaos.network.cut("app=app", namespace=chaos_namespace, to="broker")

    # The long-lived connection was reset at once (a NetworkPolicy could not do that) ...
    # (At least one disconnect: on a loaded machine the app may have redialled once already
    # between our look before and the cut; what counts is that the cut ended it within 5 s.)
    during = eventually(lambda: broker(connected=False), within=5, every=0.05)
    assert during["disconnects"] >= before["disconnects"] + 1
    # ... and reconnecting is refused while the cut is active.
    eventually(refused, within=5, every=0.05)

    cut.revert()

    after = eventually(lambda: broker(connected=True), within=15)
    assert after["connects"] >= during["connects"] + 1
    # Nothing was restarted for the experiment: the same pod, its container never restarted.
    now = kube.core.read_namespaced_pod(app.metadata.name, chaos_namespace)
    assert now.metadata.uid == app.metadata.uid
    assert now.status.container_statuses[0].restart_count == 0


def test_a_dns_outage_fails_new_lookups_but_not_the_connections_already_open(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    web_ip = service(kube, chaos_namespace, "web", port=80, target=8080)
    service(kube, chaos_namespace, "broker", port=9000, target=9000)
    for name, env in (
        ("web", {}),
        ("broker", {"BROKER_LISTEN": ":9000"}),
        ("app", {"BROKER_ADDR": "broker:9000"}),
    ):
        kube.apps.create_namespaced_deployment(chaos_namespace, demo(name, env=env))
    steady.namespace(chaos_namespace).assert_ready(within=60)
    (app,) = kube.core.list_namespaced_pod(chaos_namespace, label_selector="app=app").items
    base = f"http://{app.status.pod_ip}:8080"

    def through_app(url: str) -> httpx.Response:
        """The app calls url (the demo's call-through), and answers what it got."""
        return httpx.get(base, params={"addr": url}, timeout=15)

    def answers(url: str) -> None:
        assert through_app(url).status_code == 200

    def broker() -> dict[str, Any]:
        state: dict[str, Any] = httpx.get(f"{base}/broker", timeout=2).json()
        assert state["connected"], state
        return state

    # The Service serves before the app first calls it: the connection it pools is to web.
    steady.http(f"http://{web_ip}/").assert_ok(within=20, consecutive=3)
    eventually(lambda: answers("http://web/"), within=20)  # it now holds a pooled connection
    before = eventually(broker, within=20)

    with chaos.network.cut("app=app", namespace=chaos_namespace, to="kube-dns.kube-system"):
        # A name it has no connection to cannot be resolved: the request fails at once ...
        failed = through_app(f"http://web.{chaos_namespace}/")
        assert failed.status_code == 500
        assert f"lookup web.{chaos_namespace}" in failed.text
        # ... while what it already holds goes on working, and so do addresses.
        answers("http://web/")
        answers(f"http://{web_ip}/")
        assert broker()["connects"] == before["connects"]

    eventually(lambda: answers(f"http://web.{chaos_namespace}/"), within=10)


def test_running_out_of_memory_restarts_the_app_and_clients_notice(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    url = f"http://{service(kube, chaos_namespace, 'web', port=80, target=8080)}/"
    kube.apps.create_namespaced_deployment(chaos_namespace, demo("web", memory_limit="64Mi"))
    steady.deployment("web", namespace=chaos_namespace).assert_ready(within=60)
    steady.http(url).assert_ok(within=15, consecutive=5, every=0.05)
    web = steady.pods("app=web", namespace=chaos_namespace)
    web.assert_no_restarts()

    with steady.http(url, timeout=1).monitor(every=0.05) as traffic:
        leak = chaos.stress.pods("app=web", namespace=chaos_namespace, memory="limit")
        (restart,) = web.assert_restarted("OOMKilled", within=30)
        web.assert_ready(within=30)
        steady.http(url).assert_ok(within=15, consecutive=10, every=0.05)

    assert leak.details["oom_expected"] is True
    assert restart.exit_code == 137  # SIGKILL, from the kernel's OOM killer
    # One instance, and a restarted app needs its 2 s warm-up: the clients saw an outage.
    assert traffic.availability < 1, str(traffic)
    assert traffic.recovered, str(traffic)
