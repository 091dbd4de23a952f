"""The CI files in examples/ci/ are valid for their CI, and only call gate.sh.

They are checked against the schemas check-jsonschema ships (GitHub's workflow schema and
GitLab's CI schema, vendored in the package: no network), and every command they run is
``examples/ci/gate.sh`` itself, so the gate cannot run differently on CI than on a laptop.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
GATE_COMMANDS = {"examples/ci/gate.sh", "examples/ci/gate.sh deps"}


def check_jsonschema() -> str:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("check-jsonschema is not installed: `pip install -e '.[dev]'`")
    return found


@pytest.mark.parametrize(
    ("ci_file", "schema"),
    [("github-workflow.yml", "vendor.github-workflows"), ("gitlab-ci.yml", "vendor.gitlab-ci")],
)
def test_the_ci_file_is_valid_for_its_ci(ci_file: str, schema: str) -> None:
    result = subprocess.run(
        [check_jsonschema(), "--builtin-schema", schema, str(CI / ci_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def load(ci_file: str) -> Any:
    return yaml.safe_load((CI / ci_file).read_text())


def test_every_github_step_that_runs_a_command_runs_the_gate() -> None:
    steps = [step for job in load("github-workflow.yml")["jobs"].values() for step in job["steps"]]
    commands = [step["run"].strip() for step in steps if "run" in step]
    assert commands, "the workflow runs nothing"
    assert set(commands) <= GATE_COMMANDS, commands
    assert "examples/ci/gate.sh" in commands


def test_every_gitlab_script_line_runs_the_gate() -> None:
    config = load("gitlab-ci.yml")
    jobs = [job for name, job in config.items() if isinstance(job, dict) and "script" in job]
    assert jobs, "the pipeline has no job"
    for job in jobs:
        lines = [
            line.strip()
            for key in ("before_script", "script", "after_script")
            for line in job.get(key, [])
        ]
        assert set(lines) <= GATE_COMMANDS, lines
        assert "examples/ci/gate.sh" in lines


def test_the_gate_script_is_executable_and_parses() -> None:
    gate = CI / "gate.sh"
    assert gate.stat().st_mode & 0o111, "gate.sh must be executable: CI runs it as a program"
    result = subprocess.run(["bash", "-n", str(gate)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
