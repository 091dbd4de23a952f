"""Output paths are tried before the run: a report that cannot be written is a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.report.outputs import check_output, check_outputs, write_failed


def test_a_writable_path_passes_and_a_missing_directory_is_made(tmp_path: Path) -> None:
    check_output("--chaos-report", tmp_path / "out" / "deeper" / "chaos.html")
    assert (tmp_path / "out" / "deeper").is_dir()
    assert list((tmp_path / "out" / "deeper").iterdir()) == []  # the probe file is gone


def test_a_file_in_the_way_of_the_directory_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    with pytest.raises(ChaosConfigError) as info:
        check_output("--chaos-journal", tmp_path / "afile" / "sub" / "j.jsonl")
    message = str(info.value)
    assert message.startswith("--chaos-journal: cannot write ")
    assert f"{tmp_path / 'afile'} is a file, not a directory" in message


def test_a_directory_given_as_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ChaosConfigError, match=r"^--chaos-report: .* is a directory; give the"):
        check_output("--chaos-report", tmp_path)


def test_a_directory_that_cannot_be_made_is_refused_with_the_reason() -> None:
    with pytest.raises(ChaosConfigError, match=r"^--chaos-report: cannot create the directory"):
        check_output("--chaos-report", Path("/proc/pytest-chaos-nope/chaos.html"))


def test_unset_outputs_are_not_checked(tmp_path: Path) -> None:
    check_outputs([("--chaos-report", None), ("--junitxml", None), ("--chaos-journal", "")])


def test_a_late_write_failure_names_the_option_and_the_reason(tmp_path: Path) -> None:
    error = OSError(28, "No space left on device")
    message = write_failed("--chaos-report", tmp_path / "r.html", error)
    assert message == (
        f"--chaos-report={tmp_path / 'r.html'} could not be written: No space left on device; "
        "the run's chaos record is missing"
    )
