"""Option plumbing, as users meet it on the command line and in ini files."""

from __future__ import annotations

import pytest

PASSING_TEST = "def test_nothing():\n    pass\n"


def test_the_header_says_which_cluster_chaos_tests_use(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest("--chaos-cluster=local", "--chaos-local-name=ci")
    result.stdout.fnmatch_lines(["chaos: cluster=local (embedded, name 'ci')"])
    result.assert_outcomes(passed=1)


def test_an_unknown_cluster_kind_on_the_command_line_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest("--chaos-cluster=lokal")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaos-cluster: invalid choice: 'lokal'*"])


def test_an_invalid_ini_value_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nchaos_cluster = lokal\n")
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--chaos-cluster: invalid value 'lokal' from ini key "
            "chaos_cluster; choose one of existing, local, kind*"
        ]
    )


def test_a_bad_kind_worker_count_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest("--chaos-cluster=kind", "--chaos-kind-workers=many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaos-kind-workers: 'many' from --chaos-kind-workers*"])


def test_the_chaos_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n\n@pytest.mark.chaos\ndef test_resilient():\n    pass\n")
    result = pytester.runpytest("--strict-markers", "-m", "chaos")
    result.assert_outcomes(passed=1)


def test_the_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_cluster(kube):\n    pass\n")
    result = pytester.runpytest("-p", "no:chaos")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'kube' not found*"])


def test_an_existing_cluster_without_a_kubeconfig_errors_with_the_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(pytester.path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    pytester.makepyfile("def test_cluster(kube):\n    pass\n")
    result = pytester.runpytest("--chaos-cluster=existing")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--chaos-cluster=existing needs a kubeconfig*"])
