"""The chaos_* and steady_state markers, as users write them: checked at collection, tagged chaos.

Every marker problem stops the run with one usage error (exit code 4) before any test runs and
before anything connects to a cluster, so none of these tests needs one.
"""

from __future__ import annotations

import pytest

from pytest_chaos.markers import FAULT_MARKERS

USAGE_ERROR = pytest.ExitCode.USAGE_ERROR


def test_a_misspelled_keyword_names_the_marker_the_argument_and_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_shop="""
        import pytest

        @pytest.mark.chaos_pod_kill("app=web", namspace="shop")
        def test_web_survives():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*invalid chaos markers:*",
            "*test_shop.py::test_web_survives: chaos_pod_kill() got an unexpected keyword "
            "argument 'namspace' (did you mean 'namespace'?)*",
        ]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        pytest.param(
            '@pytest.mark.chaos_pod_kill("app=web", namespace="shop", mode="fixed_percent", '
            "value=50)",
            "chaos_pod_kill(): mode='fixed_percent' is not a mode (did you mean "
            "'fixed-percent'?); choose one of one, all, fixed, fixed-percent, random-max-percent",
            id="bad-mode",
        ),
        pytest.param(
            '@pytest.mark.chaos_pod_kill("app=", namespace="shop")',
            "chaos_pod_kill(): *selector='app=' is not a valid label selector: "
            "missing value after '='*",
            id="bad-selector-is-reported",
        ),
        pytest.param(
            '@pytest.mark.chaos_pod_kill("app=", namespace="shop")',
            "chaos_pod_kill(): selector='app=' is not a valid label selector: "
            "missing value after '='*",
            id="bad-selector",
        ),
        pytest.param(
            '@pytest.mark.chaos_pod_kill("app=web")',
            "chaos_pod_kill() missing 1 required keyword-only argument: 'namespace'",
            id="missing-namespace",
        ),
        pytest.param(
            '@pytest.mark.chaos_deployment_delete("web")',
            "chaos_deployment_delete() missing 1 required keyword-only argument: 'namespace'",
            id="missing-namespace-of-deployment-delete",
        ),
        pytest.param(
            '@pytest.mark.steady_state(namespace="shop", deployments=["web"], within="soon")',
            "steady_state(): within='soon' is not a duration; use a number of seconds*",
            id="bad-within",
        ),
        pytest.param(
            '@pytest.mark.steady_state(namespace="shop", deployments="web")',
            "steady_state(): deployments='web' must be a list (e.g. deployments=*",
            id="deployments-not-a-list",
        ),
        pytest.param(
            '@pytest.mark.chaos_istio_abort("web", namespace="shop", percent=150)',
            "chaos_istio_abort(): percent=150 must be a number from 0 to 100",
            id="abort-percent-over-100",
        ),
        pytest.param(
            '@pytest.mark.chaos_istio_abort("web", namespace="shop", status=42)',
            "chaos_istio_abort(): status=42 must be an HTTP status from 200 to 599*",
            id="abort-bad-status",
        ),
        pytest.param(
            '@pytest.mark.chaos_istio_delay("web", namespace="shop", delay="slow")',
            "chaos_istio_delay(): delay='slow' is not a duration*",
            id="delay-not-a-duration",
        ),
        pytest.param(
            '@pytest.mark.chaos_istio_delay("web", namespace="shop", delay="2s", version="v2")',
            "chaos_istio_delay(): version='v2' must be None*or one of v1, v1beta1, v1alpha3",
            id="istio-unknown-version",
        ),
        pytest.param(
            '@pytest.mark.chaos_istio_abort("web", namespace="shop", header="bad header")',
            "chaos_istio_abort(): header='bad header': 'bad header' is not a valid HTTP header*",
            id="abort-bad-header",
        ),
        pytest.param(
            '@pytest.mark.chaos_node_taint("chaos/down", selector="pool=a", effect="NoRun")',
            "chaos_node_taint(): effect='NoRun' is not a taint effect Kubernetes knows; use one "
            "of NoSchedule, PreferNoSchedule, NoExecute",
            id="taint-unknown-effect",
        ),
        pytest.param(
            "@pytest.mark.chaos_node_drain()",
            "chaos_node_drain(): say which nodes: name=*, selector=* or hosting=*",
            id="drain-without-targets",
        ),
        pytest.param(
            '@pytest.mark.chaos_node_drain(hosting="app=web")',
            "chaos_node_drain(): hosting='app=web' needs namespace=*",
            id="drain-hosting-without-namespace",
        ),
        pytest.param(
            '@pytest.mark.chaos_node_drain(selector="pool=a", count=0)',
            "chaos_node_drain(): count=0 must be a whole number >= 1",
            id="drain-count-zero",
        ),
        pytest.param(
            '@pytest.mark.chaos_network_partition("app=web", namespace="shop", direction="up")',
            "chaos_network_partition(): direction='up' must be one of ingress, egress, both",
            id="partition-bad-direction",
        ),
        pytest.param(
            '@pytest.mark.chaos_stress_pods("app=web", namespace="shop")',
            "chaos_stress_pods(): say how much stress: cpu=*and/or memory=",
            id="stress-without-amounts",
        ),
        pytest.param(
            '@pytest.mark.chaos_stress_pods("app=web", namespace="shop", memory="256m")',
            "chaos_stress_pods(): memory='256m': 'm' is milli; did you mean 'Mi'?",
            id="stress-milli-memory",
        ),
        pytest.param(
            '@pytest.mark.chaos_deployment_scale("web", namespace="shop", replicas=-1)',
            "chaos_deployment_scale(): replicas=-1 must be a whole number >= 0",
            id="deployment-scale-negative",
        ),
        pytest.param(
            '@pytest.mark.chaos_network_cut("app=web", namespace="shop")',
            "chaos_network_cut() missing 1 required keyword-only argument: 'to'",
            id="network-cut-without-to",
        ),
        pytest.param(
            '@pytest.mark.chaos_node_zone_outage("a", how="flood")',
            "chaos_node_zone_outage(): how='flood' must be one of",
            id="zone-outage-bad-how",
        ),
        pytest.param(
            '@pytest.mark.chaos_load_http("http://web/", namespace="shop", concurrency=0)',
            "chaos_load_http(): concurrency=0",
            id="load-http-no-concurrency",
        ),
        pytest.param(
            '@pytest.mark.steady_state(namespace="shop", during="yes")',
            "steady_state(): during='yes' must be True or False",
            id="steady-during-not-bool",
        ),
        pytest.param(
            '@pytest.mark.steady_state(namespace="shop", http=[{"url": "http://w/", "status": 1}])',
            "steady_state(): http: {'url': 'http://w/', 'status': 1} has unknown key(s) status",
            id="steady-http-unknown-key",
        ),
        pytest.param(
            '@pytest.mark.steady_state(namespace="shop", deployments=[{"name": "w", "min": 1}])',
            "steady_state(): deployments: {'name': 'w', 'min': 1} has unknown key(s) min",
            id="steady-workload-unknown-key",
        ),
        pytest.param(
            '@pytest.mark.chaos_stress_nodes(selector="pool=a", cpu="lots")',
            "chaos_stress_nodes(): cpu='lots' must be a CPU amount like 1, 0.5 or '500m'",
            id="stress-nodes-bad-cpu",
        ),
    ],
)
def test_an_invalid_marker_is_a_usage_error_saying_what_is_wrong(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        test_shop=f"""
        import pytest

        {marker}
        def test_web_survives():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines([f"*test_shop.py::test_web_survives: {message}*"])


# Without --strict-markers an unregistered marker is only a warning; our own suite turns
# warnings into errors, which the inner in-process run would inherit.
SHOW_UNKNOWN_MARKS = ("-W", "always::pytest.PytestUnknownMarkWarning")


def test_a_misspelled_marker_name_is_an_unknown_marker_with_a_did_you_mean(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_shop="""
        import pytest

        @pytest.mark.chaos_pod_kil("app=web", namespace="shop")
        def test_web_survives():
            pass
        """
    )
    result = pytester.runpytest(*SHOW_UNKNOWN_MARKS)
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*test_shop.py::test_web_survives: unknown marker 'chaos_pod_kil' "
            "(did you mean 'chaos_pod_kill'?)*"
        ]
    )


def test_every_problem_of_every_test_is_reported_in_one_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_shop="""
        import pytest

        @pytest.mark.chaos_pod_kill("app=web", namspace="shop")
        def test_kill():
            pass

        @pytest.mark.chaos_pod_kill("app=web", namespace="shop", mode="fixed_percent", value=5)
        @pytest.mark.steady_state(namespace="shop", within="soon")
        def test_two_problems():
            pass

        class TestCheckout:
            @pytest.mark.chaos_deployment_delete("checkout")
            def test_delete(self):
                pass

        def test_fine():
            pass
        """,
        test_other="""
        import pytest

        @pytest.mark.chaos_pod_kil("app=db", namespace="shop")
        def test_db():
            pass
        """,
    )
    result = pytester.runpytest(*SHOW_UNKNOWN_MARKS)
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*invalid chaos markers:*",
            "*test_other.py::test_db: unknown marker 'chaos_pod_kil'*",
            "*test_shop.py::test_kill: *unexpected keyword argument 'namspace'*",
            "*test_shop.py::test_two_problems: steady_state(): within='soon'*",
            "*test_shop.py::test_two_problems: chaos_pod_kill(): mode='fixed_percent'*",
            "*test_shop.py::TestCheckout::test_delete: chaos_deployment_delete() missing*",
        ],
        consecutive=True,
    )
    errors = result.stderr.str()
    assert errors.count("invalid chaos markers") == 1
    assert "test_fine" not in errors


def test_nothing_runs_when_a_marker_is_invalid(pytester: pytest.Pytester) -> None:
    ran = pytester.path / "ran"
    pytester.makepyfile(
        test_shop=f"""
        import pathlib
        import pytest

        RAN = pathlib.Path({str(ran)!r})

        def test_valid():
            RAN.write_text("test_valid ran")

        @pytest.mark.chaos_pod_kill("app=web", namespace="shop", mode="fixed_percent")
        def test_invalid():
            RAN.write_text("test_invalid ran")
        """
    )
    recorder = pytester.inline_run()
    assert recorder.ret == USAGE_ERROR
    recorder.assertoutcome(passed=0, skipped=0, failed=0)
    assert not recorder.getcalls("pytest_runtest_setup")
    assert not ran.exists()


def test_nothing_runs_under_collect_only_either(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_shop="""
        import pytest

        @pytest.mark.chaos_pod_kill("app=web", namespace="")
        def test_kill():
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*test_shop.py::test_kill: chaos_pod_kill(): namespace='' must be a namespace name "
            "or a non-empty list of them*"
        ]
    )


@pytest.mark.parametrize(
    "marker",
    [
        pytest.param(
            '@pytest.mark.chaos_pod_kill("app=web", namespace="shop", within="5s")',
            id="pod-kill-within",
        ),
        pytest.param(
            '@pytest.mark.chaos_pod_kill("app=web", namespace="shop", phase="Running", '
            'node="kwok-node-0", field_selector="status.phase=Running")',
            id="pod-kill-filters",
        ),
        pytest.param(
            '@pytest.mark.chaos_deployment_delete("web", namespace="shop", within=30)',
            id="deployment-delete-within",
        ),
        pytest.param(
            '@pytest.mark.chaos_istio_abort("web", namespace="shop", status=500, percent=50, '
            'header="x-chaos=on", version="v1alpha3")',
            id="istio-abort",
        ),
        pytest.param(
            '@pytest.mark.chaos_istio_delay("web", namespace="shop", delay="15s", percent=50)',
            id="istio-delay",
        ),
        pytest.param(
            '@pytest.mark.chaos_node_drain(selector="kubernetes.io/os=linux", count=1, '
            'timeout="2m", delete_emptydir_data=True)',
            id="node-drain",
        ),
        pytest.param(
            '@pytest.mark.chaos_node_drain(hosting="app=db", namespace="shop")', id="drain-hosting"
        ),
        pytest.param(
            '@pytest.mark.chaos_node_taint("chaos.pytest.dev/down", selector="zone=a", '
            'value="yes", effect="NoExecute")',
            id="node-taint",
        ),
        pytest.param(
            '@pytest.mark.chaos_network_partition("app=web", namespace="shop", '
            'peers="app=db", direction="egress")',
            id="network-partition",
        ),
        pytest.param(
            '@pytest.mark.chaos_stress_pods("app=web", namespace="shop", cpu="500m", '
            'memory="128Mi")',
            id="stress-pods",
        ),
        pytest.param(
            '@pytest.mark.chaos_stress_nodes(selector="zone=a", cpu=2, count=1)',
            id="stress-nodes",
        ),
    ],
)
def test_a_marker_takes_the_arguments_of_its_fixture_twin(
    pytester: pytest.Pytester, marker: str
) -> None:
    pytester.makepyfile(
        test_shop=f"""
        import pytest

        {marker}
        def test_web_survives():
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


CHAOS_TESTS = {
    "fixture": "def test_chaos(chaos):\n    pass\n",
    "module-fixture": "def test_chaos(module_chaos):\n    pass\n",
    "class-fixture": "class TestShop:\n    def test_chaos(self, class_chaos):\n        pass\n",
    "pod-kill-marker": (
        '@pytest.mark.chaos_pod_kill("app=web", namespace="shop")\ndef test_chaos():\n    pass\n'
    ),
    "deployment-delete-marker": (
        '@pytest.mark.chaos_deployment_delete("web", namespace="shop")\n'
        "def test_chaos():\n    pass\n"
    ),
    "steady-state-marker": (
        '@pytest.mark.steady_state(namespace="shop", deployments=["web"])\n'
        "def test_chaos():\n    pass\n"
    ),
    "class-pytestmark": (
        "class TestShop:\n"
        '    pytestmark = pytest.mark.chaos_pod_kill("app=web", namespace="shop")\n\n'
        "    def test_chaos(self):\n        pass\n"
    ),
}


def _chaos_and_plain_tests(source: str) -> str:
    return f"import pytest\n\n{source}\n\ndef test_plain():\n    pass\n"


@pytest.mark.parametrize("source", CHAOS_TESTS.values(), ids=CHAOS_TESTS.keys())
def test_tests_using_chaos_are_selected_by_the_chaos_marker(
    pytester: pytest.Pytester, source: str
) -> None:
    pytester.makepyfile(test_shop=_chaos_and_plain_tests(source))
    result = pytester.runpytest("--strict-markers", "-m", "chaos", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["test_shop.py::*test_chaos", "1/2 tests collected (1 deselected)*"]
    )
    assert "test_plain" not in result.stdout.str()


@pytest.mark.parametrize("source", CHAOS_TESTS.values(), ids=CHAOS_TESTS.keys())
def test_tests_using_chaos_are_deselected_by_not_chaos(
    pytester: pytest.Pytester, source: str
) -> None:
    pytester.makepyfile(test_shop=_chaos_and_plain_tests(source))
    result = pytester.runpytest("--strict-markers", "-m", "not chaos", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["test_shop.py::test_plain PASSED*"])
    assert "test_chaos" not in result.stdout.str()


def test_a_test_without_chaos_is_not_tagged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_shop="""
        import pytest

        @pytest.mark.slow
        def test_kube_only(kube):
            pass

        def test_plain():
            pass
        """
    )
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow tests\n")
    result = pytester.runpytest("--strict-markers", "-m", "chaos", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["no tests collected (2 deselected)*"])


def test_an_explicit_chaos_marker_still_selects_a_test_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_shop="""
        import pytest

        @pytest.mark.chaos
        def test_chaos(chaos):
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-m", "chaos", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["test_shop.py::test_chaos", "1 test collected*"])


def test_markers_are_listed_with_their_signatures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.chaos: a resilience (chaos) test; selected with `pytest -m chaos`*",
            "@pytest.mark.chaos_pod_kill(selector=None, *, namespace, mode='one', value=None, "
            "grace_period=None*): Kill pods matching selector in namespace while the test runs "
            "(``chaos.pods.kill``).",
            "@pytest.mark.chaos_deployment_delete(name, *, namespace*): Delete a Deployment "
            "during the test, re-create it after (``chaos.deployments.delete``).",
            "@pytest.mark.steady_state(*, namespace, deployments=(), statefulsets=(), pods=(), "
            "http=(), within='30s', during=False): Check before the faults (ERROR), after their "
            "revert (FAIL); ``during``: no dip allowed.",
        ]
    )
    ours = [
        line
        for line in result.outlines
        if line.startswith(("@pytest.mark.chaos_", "@pytest.mark.steady_state"))
    ]
    assert len(ours) == len(FAULT_MARKERS) + 1  # every fault marker, and steady_state
    for line in ours:
        assert "->" not in line
        assert "'str" not in line
