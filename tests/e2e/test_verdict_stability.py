"""The verdict-stability benchmark, run in CI on a few repetitions: verdicts must never flip.

``benchmarks/verdicts.py`` runs the instance-kill experiment (examples/test_verdicts.py) in the
marker and the fixture style against a robust and a fragile app: robust must pass every time,
fragile fail every time. It also repeats whole example files and checks that every test gets the
same verdict each time. Here with 2 runs each, on this session's cluster and its real node.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.settings import SETTINGS_KEY

ROOT = Path(__file__).resolve().parents[2]


def verdicts(pytestconfig: pytest.Config, out: Path, *args: str) -> dict[str, Any]:
    """Run benchmarks/verdicts.py on this session's cluster; its JSON results."""
    local_name = pytestconfig.stash[SETTINGS_KEY].local_name
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/verdicts.py",
            "--runs",
            "2",
            "--json",
            str(out),
            *args,
            "--",
            "--chaos-cluster=local",
            f"--chaos-local-name={local_name}",
            # The suite's kill -9 tests, on the other xdist worker, leave a crashed run's fault
            # in the shared cluster until their cleanup: a warning (an error under the suite's
            # filterwarnings) about someone else's namespace, not part of these verdicts.
            "-W",
            "ignore::pytest_chaos.errors.ChaosWarning",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, Any] = json.loads(out.read_text())
    return found


@pytest.mark.real_node
def test_robust_always_passes_and_fragile_always_fails(
    real_node: str, pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    found = verdicts(pytestconfig, tmp_path / "verdicts.json")
    assert found["robust:test_killing_an_instance_users_never_notice"]["verdicts"] == {"passed": 2}
    assert found["fragile:test_users_barely_notice_a_pod_loss"]["verdicts"] == {"failed": 2}


def test_examples_give_the_same_verdict_run_after_run(
    pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    found = verdicts(
        pytestconfig,
        tmp_path / "examples.json",
        "--examples",
        "examples/test_destroying_application_instances.py",
        "examples/test_application_availability.py",
    )
    tests = {k: v for k, v in found.items() if k != "seconds_per_run"}
    assert len(tests) >= 4, found
    assert all(v["verdicts"] == {"passed": 2} for v in tests.values()), found
