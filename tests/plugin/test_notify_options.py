"""Bad notification settings stop the run before any test runs, naming option, source and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

PASSING_TEST = "def test_nothing():\n    pass\n"


@pytest.fixture(autouse=True)
def _no_notify_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PYTEST_CHAOS_NOTIFY", "PYTEST_CHAOS_NOTIFY_URL", "PYTEST_CHAOS_NOTIFY_URL_FILE"):
        monkeypatch.delenv(name, raising=False)


def refused(pytester: pytest.Pytester, *args: str) -> str:
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "passed" not in result.stdout.str()
    return result.stderr.str()


def test_a_missing_url_file_is_named_with_its_source(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-secret"
    error = refused(pytester, f"--chaos-notify-url-file={missing}")
    assert (
        f"--chaos-notify-url-file: {missing} (from --chaos-notify-url-file) cannot be read" in error
    )
    assert "No such file or directory; give a file holding the webhook URL" in error


def test_an_empty_url_file_is_refused(pytester: pytest.Pytester, tmp_path: Path) -> None:
    empty = tmp_path / "url"
    empty.write_text("\n")
    assert "is empty; it must hold the webhook URL" in refused(
        pytester, f"--chaos-notify-url-file={empty}"
    )


def test_a_url_file_that_holds_no_url_is_refused_without_echoing_it(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    secret = tmp_path / "url"
    secret.write_text("xoxb-not-a-url-but-a-token\n")
    error = refused(pytester, f"--chaos-notify-url-file={secret}")
    assert f"--chaos-notify: the value from the file {secret}" in error
    assert "is not an http(s) URL" in error
    assert "xoxb" not in error


def test_a_url_from_the_environment_that_is_not_http_is_refused(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_NOTIFY_URL", "ftp://example.test/hook")
    error = refused(pytester)
    assert (
        "--chaos-notify: the value from environment variable PYTEST_CHAOS_NOTIFY_URL is not an "
        "http(s) URL" in error
    )
    assert "ftp://" not in error


def test_a_url_given_twice_is_refused(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url_file = tmp_path / "url"
    url_file.write_text("http://127.0.0.1:9/hook\n")
    monkeypatch.setenv("PYTEST_CHAOS_NOTIFY_URL", "http://127.0.0.1:9/other")
    assert "give the URL one way only" in refused(pytester, f"--chaos-notify-url-file={url_file}")


def test_an_unknown_notify_on_is_refused_with_the_choices(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nchaos_notify_on = sometimes\n")
    assert (
        "--chaos-notify-on: invalid value 'sometimes' from ini key chaos_notify_on; choose one "
        "of failure, always, never" in refused(pytester)
    )


def test_a_notify_timeout_that_does_not_parse_is_refused(pytester: pytest.Pytester) -> None:
    error = refused(pytester, "--chaos-notify-timeout=soon")
    assert "--chaos-notify-timeout='soon' is not a duration" in error
    assert "(from --chaos-notify-timeout; e.g. --chaos-notify-timeout=90s)" in error
