"""API hiccups (429, 503, answers lost after a mutation) never become resilience failures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_chaos import Kube
from tests.e2e.flaky_proxy import Flakiness, flaky_proxy

INNER = """
from tests_inner_manifests import deployment


def test_faults_and_probes_through_a_flaky_api(kube, chaos, steady, chaos_namespace):
    kube_apps = kube.apps
    for attempt in range(20):  # the test's own setup call is not ours to retry: do it by hand
        try:
            kube_apps.create_namespaced_deployment(chaos_namespace, deployment("web", 3))
            break
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                break
    web = steady.deployment("web", namespace=chaos_namespace)
    web.assert_available(within=60)

    chaos.pods.kill("app=web", namespace=chaos_namespace, mode="fixed", value=2)
    web.assert_available(within=60)
    with chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1):
        steady.pods("app=web", namespace=chaos_namespace).assert_count(1, within=60)
    with chaos.deployments.delete("web", namespace=chaos_namespace):
        steady.pods("app=web", namespace=chaos_namespace).assert_count(0, within=60)
    web.assert_ready(within=60)
"""

MANIFESTS = """
def deployment(name, replicas):
    labels = {"app": name}
    return {"metadata": {"name": name}, "spec": {"replicas": replicas,
            "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": name, "image": "example/web:1"}]}}}}
"""


def test_a_flaky_api_server_causes_no_false_failure(pytester: pytest.Pytester, kube: Kube) -> None:
    pki = kube.kubeconfig.parent / "pki"
    server = kube.api_client.configuration.host
    flakiness = Flakiness(refuse_every=5)
    with flaky_proxy(server, pki, flakiness) as url:
        kubeconfig = pytester.path / "flaky-kubeconfig"
        kubeconfig.write_text(re.sub(r"https://127\.0\.0\.1:\d+", url, kube.kubeconfig.read_text()))
        pytester.makepyfile(test_flaky=INNER, tests_inner_manifests=MANIFESTS)
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "--chaos-cluster=existing",
            f"--chaos-kubeconfig={kubeconfig}",
            f"--chaos-context={kube.context}",
            "test_flaky.py",
        )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*revert failures: 0, leftovers: 0*"])
    # The run really went through hiccups, including mutations applied but not answered.
    assert flakiness.counts["refuse"] >= 10, flakiness.counts
    assert flakiness.counts["lose"] >= 2, flakiness.counts


def test_the_proxy_really_breaks_an_unretried_client(kube: Kube, tmp_path: Path) -> None:
    from kubernetes import client, config

    pki = kube.kubeconfig.parent / "pki"
    flakiness = Flakiness(refuse_every=1)
    with flaky_proxy(kube.api_client.configuration.host, pki, flakiness) as url:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(re.sub(r"https://127\.0\.0\.1:\d+", url, kube.kubeconfig.read_text()))
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), persist_config=False
        )
        try:
            with pytest.raises(client.exceptions.ApiException) as refused:
                client.CoreV1Api(api).list_namespace()
        finally:
            api.close()
    assert refused.value.status in (429, 503)
