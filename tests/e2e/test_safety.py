"""Safety: contexts and namespaces outside the allow-lists, and the blast radius, are refused
before anything is touched; dry run touches nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pytest_chaos import Kube
from tests.e2e.manifests import namespace_with

INNER = """
NS = {ns!r}

def test_kill(chaos):
    chaos.pods.kill("app=web", namespace=NS, mode="all")
"""


@pytest.fixture
def web_namespace(kube: Kube) -> Iterator[str]:
    with namespace_with(kube, "safety", {"web": 2}) as namespace:
        yield namespace


def versions(kube: Kube, namespace: str) -> dict[str, str]:
    pods = kube.core.list_namespaced_pod(namespace).items
    return {str(p.metadata.name): str(p.metadata.resource_version) for p in pods}


def run(
    pytester: pytest.Pytester,
    kube: Kube,
    namespace: str,
    *args: str,
    kubeconfig: Path | None = None,
    context: str | None = None,
) -> pytest.RunResult:
    pytester.makepyfile(INNER.format(ns=namespace))
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--chaos-cluster=existing",
        f"--chaos-kubeconfig={kubeconfig or kube.kubeconfig}",
        f"--chaos-context={context or kube.context}",
        *args,
    )


def renamed_context(kube: Kube, directory: Path, name: str) -> Path:
    config = yaml.safe_load(kube.kubeconfig.read_text())
    config["contexts"][0]["name"] = name
    config["current-context"] = name
    path = directory / "prod-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_context_that_is_not_a_test_cluster_is_refused_until_allowed(
    pytester: pytest.Pytester, kube: Kube, web_namespace: str
) -> None:
    before = versions(kube, web_namespace)
    prod = renamed_context(kube, pytester.path, "prod-eu")

    refused = run(pytester, kube, web_namespace, kubeconfig=prod, context="prod-eu")

    refused.assert_outcomes(errors=1)
    refused.stdout.fnmatch_lines(
        [
            "SafetyError: refusing to inject faults through context 'prod-eu'*"
            "allow it with --chaos-allow-context=prod-eu*"
        ]
    )
    assert versions(kube, web_namespace) == before

    allowed = run(
        pytester,
        kube,
        web_namespace,
        "--chaos-allow-context=prod-*",
        kubeconfig=prod,
        context="prod-eu",
    )
    allowed.assert_outcomes(passed=1)


def test_a_namespace_outside_the_allow_list_is_refused(
    pytester: pytest.Pytester, kube: Kube, web_namespace: str
) -> None:
    before = versions(kube, web_namespace)
    result = run(pytester, kube, web_namespace, "--chaos-allow-namespace=shop")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*refusing to touch namespace '{web_namespace}': not in "
            "--chaos-allow-namespace (allowed: shop)*"
        ]
    )
    assert versions(kube, web_namespace) == before


def test_the_blast_radius_limits_how_many_pods_one_fault_hits(
    pytester: pytest.Pytester, kube: Kube, web_namespace: str
) -> None:
    before = versions(kube, web_namespace)
    result = run(pytester, kube, web_namespace, "--chaos-max-percent=50")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*refusing to hit 2 of 2 pods matching 'app=web'*--chaos-max-percent=50) allows 1*"]
    )
    assert versions(kube, web_namespace) == before


def test_dry_run_resolves_the_targets_and_changes_nothing(
    pytester: pytest.Pytester, kube: Kube, web_namespace: str
) -> None:
    before = versions(kube, web_namespace)
    result = run(pytester, kube, web_namespace, "--chaos-dry-run", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*DRY RUN*", "*chaos dry run: would kill 2 of 2 pod(s)*"])
    result.stdout.fnmatch_lines(
        ["*chaos dry run plan*", "*::test_kill: pods.kill: kill 2 of 2 pod(s) matching 'app=web'*"]
    )
    assert versions(kube, web_namespace) == before
