"""Outputs never vanish: an unwritable path stops the run at once, a failed late write fails it."""

from __future__ import annotations

import pytest

PASSING_TEST = "def test_nothing():\n    pass\n"


@pytest.mark.parametrize("flag", ["--chaos-report", "--chaos-journal", "--junitxml"])
def test_an_output_under_a_file_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, flag: str
) -> None:
    pytester.makepyfile(PASSING_TEST)
    (pytester.path / "taken").write_text("a file where a directory should be")
    result = pytester.runpytest("--chaos-cluster=local", f"{flag}=taken/out/chaos.out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {flag}: cannot write taken/out/chaos.out: taken is a file*"]
    )


def test_an_empty_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest("--chaos-cluster=local", "--chaos-allow-namespace=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --chaos-allow-namespace: an empty value is not a setting*"]
    )


def test_a_missing_directory_is_made_and_the_report_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest("--chaos-cluster=local", "--chaos-report=new/dir/chaos.html")
    result.assert_outcomes(passed=1)
    assert "<html" in (pytester.path / "new" / "dir" / "chaos.html").read_text()


def test_a_report_that_cannot_be_written_at_the_end_fails_the_run_and_says_so(
    pytester: pytest.Pytester,
) -> None:
    # The directory is fine at the start; the test puts a file in its place before the end.
    pytester.makepyfile(
        "import shutil\n\n\n"
        "def test_takes_the_report_directory_away():\n"
        "    shutil.rmtree('out')\n"
        "    open('out', 'w').close()\n"
    )
    result = pytester.runpytest(
        "--chaos-cluster=local", "--chaos-report=out/chaos.html", "--chaos-journal=out/j.jsonl"
    )
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "chaos: ERROR --chaos-report=out/chaos.html could not be written: File exists;*",
            "chaos: ERROR --chaos-journal=out/j.jsonl could not be written: File exists;*",
        ]
    )
