"""The book's go-demo-8, deployed as its users deploy it: plain YAML and ``kubectl apply``.

*The DevOps Toolkit: Chaos Engineering* runs its experiments against ``go-demo-8``: an API, the
database it keeps a connection to, and a ``repeater`` that forwards requests to the API by
name. ``examples/go-demo-8/`` holds that application as unmodified manifests (no pytest-chaos
labels, no nodeSelector, no toleration), with pytest-chaos's demo app standing in for the
book's images. This suite runs a few of the book's experiments against it, from outside, as a
per-PR gate does:

* **"What happens if we terminate an instance of the application?"** (``health-http.yaml``):
  one API instance is killed while a monitor sends a request through the API's Service every
  50 ms, killed gracefully and as a crash (``grace_period=0``). With two instances users do not
  notice.
* **The same with one instance**, the run of the book where the experiment fails: a graceful
  kill still goes unnoticed (the preStop pause keeps the instance answering until its
  replacement is ready), a crash is an outage the monitor sees (the expected verdict, asserted).
  ``GATE_API_REPLICAS=1 examples/ci/gate.sh`` runs the whole suite on one instance: it fails.
* **The same through the repeater** (the network chapter's path, client -> repeater ->
  go-demo-8): the repeater finds the API by its Service name, and its clients do not notice
  either.
* **"What happens if we terminate an instance of the DB?"** and the lesson of the random-chaos
  chapter: the book's API never re-established its database connection, its pods stayed Ready
  and users got errors. Here every API instance must be connected again soon after the database
  instance is replaced, without a restart.

It needs the application deployed on nodes that run pods, as ``examples/ci/gate.sh`` does::

    pytest-chaos cluster up --real-nodes 3 --nodes 0      # or any cluster: kind, a cloud one
    kubectl create namespace go-demo-8
    kubectl --namespace go-demo-8 apply -f examples/go-demo-8/
    pytest -m chaos examples/test_go_demo_8.py --chaos-cluster=existing

Where go-demo-8 is not deployed (the repository's own ``make demo`` and ``make test`` sessions)
the tests skip saying how to deploy it; ``tests/e2e/test_ci_gate.py`` runs them through the gate.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes.client import ApiException

from pytest_chaos import Kube, eventually
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady

pytestmark = pytest.mark.chaos

NAMESPACE = "go-demo-8"
ANSWER = "Version: 0.0.1"  # what the API answers (the book: "Version: 0.0.1; Release: unknown")


@pytest.fixture(scope="module")
def go_demo_8(kube: Kube) -> Kube:
    """The cluster, once go-demo-8 is found deployed in it (the test skips otherwise)."""
    try:
        kube.apps.read_namespaced_deployment("go-demo-8", NAMESPACE)
    except ApiException as exc:
        if exc.status != 404:
            raise
        pytest.skip(
            f"go-demo-8 is not deployed in namespace {NAMESPACE!r}: `kubectl create namespace "
            f"{NAMESPACE} && kubectl -n {NAMESPACE} apply -f examples/go-demo-8/` on nodes that "
            "run pods (examples/ci/gate.sh does it on three real nodes)"
        )
    return kube


def service_url(kube: Kube, name: str, path: str = "/") -> str:
    """The Service's ClusterIP URL: reachable from this process, which is outside the cluster."""
    ip = kube.core.read_namespaced_service(name, NAMESPACE).spec.cluster_ip
    return f"http://{ip}{path}"


def kill_one_api_instance(
    kube: Kube, chaos: Chaos, steady: Steady, url: str, *, grace_period: int | None
) -> Any:
    """The book's experiment: kill one API instance while users call ``url`` every 50 ms;
    returns the users' monitor (its availability, its failures). ``grace_period=0`` is a crash:
    the pod object is gone at once, so the Service drops it at once, with no terminating
    endpoint to fall back on (the kubelet still stops the process within 2 s)."""
    api = steady.deployment("go-demo-8", namespace=NAMESPACE)
    api.assert_available()
    steady.http(url, body=ANSWER).assert_ok(within=15, consecutive=5, every=0.05)
    with (
        steady.http(url, body=ANSWER, timeout=1).monitor(every=0.05) as users,
        api.monitor() as replicas,
    ):
        chaos.pods.kill("app=go-demo-8", namespace=NAMESPACE, mode="one", grace_period=grace_period)
        replicas.assert_recovered(within=60)
    return users


@pytest.fixture
def one_api_instance(go_demo_8: Kube) -> Iterator[Kube]:
    """go-demo-8's API scaled to one instance for the test, and back to what it was after."""
    scale = go_demo_8.apps.read_namespaced_deployment_scale("go-demo-8", NAMESPACE)
    before = scale.spec.replicas

    def set_replicas(count: int) -> None:
        go_demo_8.apps.patch_namespaced_deployment_scale(
            "go-demo-8", NAMESPACE, {"spec": {"replicas": count}}
        )

        def settled() -> None:
            d = go_demo_8.apps.read_namespaced_deployment("go-demo-8", NAMESPACE)
            assert (d.status.replicas, d.status.ready_replicas) == (count, count), d.status

        eventually(settled, within=60)

    set_replicas(1)
    yield go_demo_8
    set_replicas(before)


def test_one_instance_is_not_enough(one_api_instance: Kube, chaos: Chaos, steady: Steady) -> None:
    """The experiment's other verdict, expected here: with one instance users DO notice. This is
    the run of the book where the experiment fails; a gate on a one-replica Deployment fails."""
    url = service_url(one_api_instance, "go-demo-8")
    graceful = kill_one_api_instance(one_api_instance, chaos, steady, url, grace_period=None)
    crash = kill_one_api_instance(one_api_instance, chaos, steady, url, grace_period=0)
    # A graceful kill of the only instance goes unnoticed: its preStop pause keeps it answering
    # (as a terminating endpoint, the Service's last) until its replacement is ready. A crash
    # of the only instance leaves nobody to answer until the replacement is ready.
    assert graceful.availability >= 0.99, f"graceful kill of the only instance: {graceful}"
    assert crash.availability < 0.99, f"one instance crashed, yet users did not notice: {crash}"
    assert crash.outages, str(crash)


@pytest.mark.parametrize(
    "grace_period", [pytest.param(None, id="graceful"), pytest.param(0, id="crash")]
)
@pytest.mark.parametrize(
    ("entry", "path"),
    [
        pytest.param("go-demo-8", "/", id="through-the-api-service"),
        pytest.param("repeater", "/?addr=http://go-demo-8", id="through-the-repeater"),
    ],
)
def test_terminating_an_instance_of_the_application(
    go_demo_8: Kube, chaos: Chaos, steady: Steady, entry: str, path: str, grace_period: int | None
) -> None:
    url = service_url(go_demo_8, entry, path)
    users = kill_one_api_instance(go_demo_8, chaos, steady, url, grace_period=grace_period)
    assert users.availability >= 0.99, str(users)  # users barely noticed


def test_terminating_the_db_the_api_reconnects(
    go_demo_8: Kube, chaos: Chaos, steady: Steady
) -> None:
    pods = go_demo_8.core.list_namespaced_pod(NAMESPACE, label_selector="app=go-demo-8").items

    def connected(pod: Any, *, broken_more_than: int = -1) -> dict[str, Any]:
        """The API instance's database connection (the demo's /broker): up, and broken more
        than ``broken_more_than`` times so far."""
        try:
            state: dict[str, Any] = httpx.get(f"http://{pod.status.pod_ip}:8080/broker").json()
        except httpx.HTTPError as exc:
            raise AssertionError(f"{pod.metadata.name} does not answer: {exc!r}") from exc
        assert state["connected"], f"{pod.metadata.name}: {state}"
        assert state["disconnects"] > broken_more_than, f"{pod.metadata.name}: {state}"
        return state

    before = {p.metadata.name: eventually(functools.partial(connected, p)) for p in pods}

    chaos.pods.kill("app=go-demo-8-db", namespace=NAMESPACE)
    steady.deployment("go-demo-8-db", namespace=NAMESPACE).assert_available(within=60)

    for pod in pods:  # each connection broke, and the API made a new one by itself
        broken = before[pod.metadata.name]["disconnects"]
        eventually(functools.partial(connected, pod, broken_more_than=broken), within=30)
        now = go_demo_8.core.read_namespaced_pod(pod.metadata.name, NAMESPACE)
        assert now.status.container_statuses[0].restart_count == 0  # no restart was needed
