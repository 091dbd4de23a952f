"""``steady_state(..., during=True)``: recovery is not enough when no outage is allowed.

The same fault, the same hypotheses, two verdicts: ``within`` alone measures recovery (the
Deployment is whole again after the revert: pass); ``during=True`` also watches it while the fault
is in place (it dipped: FAIL "deviated during chaos", saying when, for how long and what was
seen). Each user file runs in a pytest subprocess on this session's cluster (see
test_marker_faults.py), against the ``shop`` namespace with its 2-replica Deployment ``web``.
"""

from __future__ import annotations

import pytest

from pytest_chaos import Kube
from tests.e2e.manifests import deployment
from tests.e2e.test_marker_faults import Run, ready_uids, run, shop, user_file

__all__ = ["run", "shop"]


def test_a_scale_down_passes_on_recovery_but_fails_when_monitored_during_chaos(
    pytester: pytest.Pytester, run: Run, shop: str
) -> None:
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            @pytest.mark.chaos_deployment_scale("web", namespace=NS, replicas=1)
            @pytest.mark.steady_state(namespace=NS, deployments=["web"], within="30s")
            def test_recovers(steady):
                steady.pods("app=web", namespace=NS).assert_count(1, within=30)

            @pytest.mark.chaos_deployment_scale("web", namespace=NS, replicas=1)
            @pytest.mark.steady_state(
                namespace=NS, deployments=["web"], within="30s", during=True
            )
            def test_no_outage_allowed(steady):
                steady.pods("app=web", namespace=NS).assert_count(1, within=30)

            @pytest.mark.chaos_deployment_scale("web", namespace=NS, replicas=1)
            @pytest.mark.steady_state(
                namespace=NS,
                deployments=[{"name": "web", "min_ready": 1}],
                within="30s",
                during=True,
            )
            def test_one_ready_pod_is_enough(steady):
                steady.pods("app=web", namespace=NS).assert_count(1, within=30)
            """,
        )
    )

    result = run()

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*deviated during chaos: 1 time(s) a hypothesis did not hold",
            f"*Deployment {shop}/web (at least 2 ready) at +*s for *: *1/2 ready*",
            "FAILED test_shop.py::test_no_outage_allowed*",
        ]
    )


def test_a_deviation_is_on_the_timeline_and_a_steady_run_says_so(
    pytester: pytest.Pytester, run: Run, kube: Kube, shop: str
) -> None:
    kube.apps.create_namespaced_deployment(shop, deployment("api", replicas=1))
    ready_uids(kube, shop, "app=api", count=1)
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            @pytest.mark.chaos_pod_kill("app=api", namespace=NS)
            @pytest.mark.steady_state(namespace=NS, deployments=["api"], during=True)
            def test_a_single_replica_has_an_outage():
                pass

            @pytest.mark.steady_state(namespace=NS, deployments=["web"], pods=["app=web"],
                                      during=True)
            def test_nothing_happens():
                pass
            """,
        )
    )

    result = run("-rA")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*steady   monitoring 1 hypothesis(es) during chaos",
            "*inject   pods.kill*",
            "*steady   deviated during chaos: 1 time(s) a hypothesis did not hold",
        ]
    )
    result.stdout.fnmatch_lines(["PASSED test_shop.py::test_nothing_happens"])


def test_a_service_url_is_resolved_when_the_test_runs(
    pytester: pytest.Pytester, run: Run, kube: Kube, shop: str
) -> None:
    kube.core.create_namespaced_service(
        shop,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
        },
    )
    pytester.makepyfile(
        test_shop=user_file(
            shop,
            """
            from pytest_chaos import service_url

            @pytest.mark.steady_state(
                namespace=NS,
                http=[{"url": service_url("web", port="http", path="/health"), "timeout": 0.2}],
                within="1s",
            )
            def test_web_answers():
                pass

            @pytest.mark.steady_state(namespace=NS, http=[service_url("nope")], within="1s")
            def test_no_such_service():
                pass
            """,
        )
    )

    result = run()

    # Pods on the fake nodes serve nothing: the resolved ClusterIP URL is probed and fails.
    result.assert_outcomes(errors=2)
    ip = kube.core.read_namespaced_service("web", shop).spec.cluster_ip
    result.stdout.fnmatch_lines_random(
        [
            "*not steady before chaos:*",
            f"*GET http://{ip}:80/health not steady within 1s*",
            f"*service_url('nope'): there is no Service {shop}/nope*",
        ]
    )
