"""Obstructing And Destroying Network: Istio aborts and delays, and what survives them.

The chapter "Obstructing And Destroying Network" of *The DevOps Toolkit: Chaos Engineering* runs
``go-demo-8`` behind Istio, with a second app, the **repeater**, in front of it: the traffic path
is client -> ingress gateway -> repeater -> go-demo-8. With chaostoolkit-istio it puts faults on
go-demo-8's VirtualService (``k8s/network/istio.yaml``: one route to subset ``primary``) and
probes through the repeater:

1. ``chaos/network.yaml``: abort 50% of the requests to go-demo-8 with HTTP 500. The experiment
   deviates, and having no rollback it leaves the VirtualService broken until the manifest is
   re-applied by hand.
2. ``network-rollback.yaml`` adds the rollback; the fix is ``istio-repeater.yaml``: retries on the
   repeater's VirtualService (``attempts: 10, perTryTimeout: 3s, retryOn: 5xx``).
3. ``network-delay.yaml`` adds a 15 s delay to 50% of the requests; the fix is
   ``istio-delay.yaml``: ``perTryTimeout: 2s`` (shorter than the delay), ``retryOn:
   5xx,connect-failure`` and an overall ``timeout: 10s``.
4. ``network-abort-100.yaml`` aborts 100%: no retry helps; the application itself needs a
   fallback (a degraded answer, a cached page), and small services limit the blast radius.

``chaos.istio.abort`` / ``chaos.istio.delay`` replace the actions, and their revert replaces the
rollbacks the book had to learn to add: every fault is undone at the end of its ``with`` block
or of the test, restoring the VirtualService exactly (a fault that was already on a route stays).

What the local cluster can and cannot show: it serves Istio's CRDs, so every VirtualService here
is validated by Istio's own schemas, but no Istio control plane or Envoy runs (and the fake nodes
run no process; a later real node will run pods, still without Envoy). No request is sent and no
5xx is counted here. What these tests check is the half of each lesson that lives in the
configuration, which is also what a reviewer can check in a pull request: where the fault is,
where the retries are, and whether the timeouts can beat the delay. On a cluster with Istio the
same tests, plus ``steady.http(...)`` probes through the gateway, measure the other half.

One Istio rule shapes all of it: **a fault on a route disables that route's own retries and
timeout** (istio/istio#13705). The retries that absorb the aborts must sit on another route:
here, the route *into* the repeater, while the fault is on the route into go-demo-8.

Run with ``pytest -m chaos examples/``.
"""

from __future__ import annotations

from typing import Any

import pytest

from examples.manifests import go_demo_8_deployment, go_demo_8_service
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.durations import as_seconds
from pytest_chaos.steady import Steady

pytestmark = pytest.mark.chaos

ISTIO = "networking.istio.io"


def go_demo_8_istio() -> list[dict[str, Any]]:
    """``k8s/network/istio.yaml``: go-demo-8's VirtualService and DestinationRule."""
    return [
        {
            "apiVersion": f"{ISTIO}/v1",
            "kind": "VirtualService",
            "metadata": {"name": "go-demo-8"},
            "spec": {
                "hosts": ["go-demo-8"],
                "http": [
                    {
                        "route": [
                            {
                                "destination": {
                                    "host": "go-demo-8",
                                    "subset": "primary",
                                    "port": {"number": 80},
                                }
                            }
                        ]
                    }
                ],
            },
        },
        {
            "apiVersion": f"{ISTIO}/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "go-demo-8"},
            "spec": {
                "host": "go-demo-8",
                "subsets": [{"name": "primary", "labels": {"release": "primary"}}],
            },
        },
    ]


def repeater_istio(**resilience: Any) -> list[dict[str, Any]]:
    """``k8s/network/repeater``'s Service, Gateway and VirtualService.

    resilience goes on the VirtualService's route: ``retries=`` and ``timeout=``, as
    ``istio-repeater.yaml`` and ``istio-delay.yaml`` add them.
    """
    route = {
        "route": [
            {"destination": {"host": "repeater", "subset": "primary", "port": {"number": 80}}}
        ],
        **resilience,
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "repeater", "labels": {"app": "repeater"}},
            "spec": {
                "selector": {"app": "repeater"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        },
        {
            "apiVersion": f"{ISTIO}/v1",
            "kind": "Gateway",
            "metadata": {"name": "repeater"},
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [
                    {
                        "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                        "hosts": ["repeater.acme.com"],
                    }
                ],
            },
        },
        {
            "apiVersion": f"{ISTIO}/v1",
            "kind": "VirtualService",
            "metadata": {"name": "repeater"},
            "spec": {
                "hosts": ["repeater.acme.com", "repeater"],
                "gateways": ["repeater"],
                "http": [route],
            },
        },
    ]


def apply(kube: Kube, namespace: str, manifests: list[dict[str, Any]]) -> None:
    """``kubectl apply -f`` for the few kinds this chapter uses."""
    plurals = {
        "VirtualService": "virtualservices",
        "DestinationRule": "destinationrules",
        "Gateway": "gateways",
    }
    for manifest in manifests:
        if manifest["kind"] == "Service":
            kube.core.create_namespaced_service(namespace, manifest)
            continue
        group, version = manifest["apiVersion"].split("/")
        kube.custom.create_namespaced_custom_object(
            group, version, namespace, plurals[manifest["kind"]], manifest
        )


def route_of(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """The first HTTP route of a VirtualService, as ``kubectl get virtualservice -o yaml``."""
    vs: Any = kube.custom.get_namespaced_custom_object(
        ISTIO, "v1", namespace, "virtualservices", name
    )
    route: dict[str, Any] = vs["spec"]["http"][0]
    return route


@pytest.fixture
def go_demo_8(kube: Kube, steady: Steady, chaos_namespace: str) -> str:
    """go-demo-8 behind Istio (``k8s/health/app`` + ``k8s/network/istio.yaml``): its namespace."""
    deployment = go_demo_8_deployment(replicas=2)
    deployment["spec"]["template"]["metadata"]["labels"]["release"] = "primary"
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment)
    kube.core.create_namespaced_service(chaos_namespace, go_demo_8_service())
    apply(kube, chaos_namespace, go_demo_8_istio())
    steady.deployment("go-demo-8", namespace=chaos_namespace).assert_available(within=30)
    return chaos_namespace


def test_aborting_half_of_the_requests_and_rolling_back(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    apply(kube, go_demo_8, repeater_istio())  # the repeater as first deployed: no retries
    original = route_of(kube, go_demo_8, "go-demo-8")

    with chaos.istio.abort("go-demo-8", namespace=go_demo_8, status=500, percent=50):
        # What `kubectl describe virtualservice go-demo-8` showed in the book.
        assert route_of(kube, go_demo_8, "go-demo-8")["fault"] == {
            "abort": {"httpStatus": 500, "percentage": {"value": 50}}
        }
        # Nothing retries on the way in: each request through the repeater is a coin flip, and
        # the book's 5 probes all pass with probability 1/32. Its experiment deviated.
        assert "retries" not in route_of(kube, go_demo_8, "repeater")

    # The rollback the book had to add by hand (network-rollback.yaml).
    assert route_of(kube, go_demo_8, "go-demo-8") == original


def test_retries_on_the_caller_absorb_a_partial_abort(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    retries: dict[str, Any] = {"attempts": 10, "perTryTimeout": "3s", "retryOn": "5xx"}
    apply(kube, go_demo_8, repeater_istio(retries=retries))  # istio-repeater.yaml

    with chaos.istio.abort("go-demo-8", namespace=go_demo_8, status=500, percent=50) as fault:
        # The fault and the retries are on two different routes, so Istio keeps the retries.
        assert fault.targets == (f"{go_demo_8}/go-demo-8",)
        assert fault.details["disabled"] == []
        assert route_of(kube, go_demo_8, "repeater")["retries"] == retries
        # A request fails only if 1 + 10 attempts are all aborted: about 1 in 2000.
        assert 0.5 ** (1 + retries["attempts"]) < 0.001


def test_retries_on_the_faulted_route_itself_do_not_count(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    # The tempting shortcut: retries on go-demo-8's own route, right next to the fault.
    route = route_of(kube, go_demo_8, "go-demo-8")
    route["retries"] = {"attempts": 10, "perTryTimeout": "3s", "retryOn": "5xx"}
    kube.custom.patch_namespaced_custom_object(
        ISTIO, "v1", go_demo_8, "virtualservices", "go-demo-8", {"spec": {"http": [route]}}
    )

    with chaos.istio.abort("go-demo-8", namespace=go_demo_8, percent=50) as fault:
        # Istio disables a faulted route's retries and timeout: these retries never happen.
        # pytest-chaos says so, in the fault's details and in the test's timeline.
        assert fault.details["disabled"] == ["VirtualService go-demo-8 http[0]: retries"]
        # go-demo-8's VirtualService binds no gateway, so it applies to mesh traffic: the
        # repeater's calls see the fault. (One bound to a gateway only would not be seen by
        # them at all: chaostoolkit-istio#17.)
        assert fault.details["gateways"] == {f"{go_demo_8}/go-demo-8": ["mesh"]}


def test_delays_need_a_per_try_timeout_shorter_than_the_delay(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    retries = {"attempts": 10, "perTryTimeout": "2s", "retryOn": "5xx,connect-failure"}
    apply(kube, go_demo_8, repeater_istio(retries=retries, timeout="10s"))  # istio-delay.yaml
    original = route_of(kube, go_demo_8, "go-demo-8")

    chaos.istio.abort("go-demo-8", namespace=go_demo_8, status=500, percent=50)
    delay = chaos.istio.delay("go-demo-8", namespace=go_demo_8, delay="15s", percent=50)

    # Both faults on go-demo-8's route, as network-delay.yaml set them.
    assert set(route_of(kube, go_demo_8, "go-demo-8")["fault"]) == {"abort", "delay"}
    injected = as_seconds(delay.details["fixedDelay"])
    repeater = route_of(kube, go_demo_8, "repeater")
    per_try = as_seconds(repeater["retries"]["perTryTimeout"])
    overall = as_seconds(repeater["timeout"])
    # The lesson: a delayed attempt is cut after 2 s and retried, long before the 15 s are up,
    # and the whole request gives up after 10 s instead of hanging (the book's probes took
    # 2-6 s each once this was in place).
    assert per_try < injected
    assert overall < injected
    assert per_try * 2 <= overall  # room for at least one retry after a cut attempt

    chaos.revert_all()  # the book's two rollbacks, in one call
    assert route_of(kube, go_demo_8, "go-demo-8") == original


def test_a_total_abort_needs_a_fallback_in_the_application(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    retries: dict[str, Any] = {"attempts": 10, "perTryTimeout": "3s", "retryOn": "5xx"}
    apply(kube, go_demo_8, repeater_istio(retries=retries))

    with chaos.istio.abort("go-demo-8", namespace=go_demo_8, status=500, percent=100) as fault:
        # Every attempt fails, so every retry fails too: retries cannot help here. Total loss
        # of a dependency must be handled by the application (a fallback, a degraded answer).
        percent = fault.details["percentage"]["value"]
        assert (percent / 100) ** (1 + retries["attempts"]) == 1.0


def test_a_header_scoped_fault_hits_only_the_test_requests(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    # On a shared cluster, abort only the requests that carry the test's header.
    original = route_of(kube, go_demo_8, "go-demo-8")

    with chaos.istio.abort("go-demo-8", namespace=go_demo_8, header="x-chaos=on"):
        vs: Any = kube.custom.get_namespaced_custom_object(
            ISTIO, "v1", go_demo_8, "virtualservices", "go-demo-8"
        )
        ours, theirs = vs["spec"]["http"]
        assert ours["match"] == [{"headers": {"x-chaos": {"exact": "on"}}}]
        assert ours["fault"]["abort"]["httpStatus"] == 503
        assert theirs == original  # everyone else's requests: routed as before

    assert route_of(kube, go_demo_8, "go-demo-8") == original
