"""A Service's DNS name as a probe URL from the test process: to its ClusterIP, or through the
API server's service proxy (what kind needs), both shown by requests to a real app."""

from __future__ import annotations

import functools

import httpx
import pytest

from pytest_chaos import Kube
from pytest_chaos.kube.service_proxy import ServiceTransport
from pytest_chaos.steady import Steady
from tests.e2e.realnode_manifests import create_service, demo_deployment, deploy, service

pytestmark = pytest.mark.real_node


def test_a_service_name_answers_from_the_test_process(
    kube: Kube, steady: Steady, chaos_namespace: str
) -> None:
    create_service(kube, chaos_namespace, service("web"))
    deploy(kube, chaos_namespace, demo_deployment("web"))

    steady.http(f"http://web.{chaos_namespace}.svc.cluster.local/", body="Release: real").assert_ok(
        within=15, consecutive=3, every=0.05
    )
    steady.http(f"http://web.{chaos_namespace}.svc/", body="Release: real").assert_ok(within=5)


def test_the_api_servers_proxy_reaches_the_service_and_says_when_nothing_serves(
    kube: Kube, chaos_namespace: str
) -> None:
    create_service(kube, chaos_namespace, service("web"))
    deploy(kube, chaos_namespace, demo_deployment("web"))
    url = f"http://web.{chaos_namespace}.svc.cluster.local/"

    with httpx.Client(transport=ServiceTransport(kube, through_api_server=True)) as client:
        answer = client.get(url, timeout=5)
        assert answer.status_code == 200
        assert "Release: real" in answer.text

        kube.apps.patch_namespaced_deployment_scale(
            "web", chaos_namespace, {"spec": {"replicas": 0}}
        )
        kube.wait(
            functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
            lambda pods: not pods,
            within=30,
            what="no web pods",
            label_selector="app=web",
        )
        # The API server's own 503 ("no endpoints available") is a connection error, as a
        # client inside the cluster would see it, not the app's answer.
        with pytest.raises(httpx.ConnectError, match="through the API server's service proxy"):
            client.get(url, timeout=5)
        with pytest.raises(httpx.ConnectError, match="no such Service"):
            httpx.Client(transport=ServiceTransport(kube, through_api_server=False)).get(
                f"http://absent.{chaos_namespace}.svc/", timeout=5
            )
