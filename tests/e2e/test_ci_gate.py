"""The per-PR gate, ``examples/ci/gate.sh``, run as CI runs it: a script, judged by its exit code.

It starts a cluster with three real nodes, builds go-demo-8's image with podman, loads it,
applies the plain manifests, runs ``pytest -m chaos examples/test_go_demo_8.py`` and always tears
the cluster down. A gate that passes leaves its junit XML and chaos report; a gate that must
fail (the API scaled to one instance: a crash of it is an outage) exits non-zero, still leaves
its results, and still leaves nothing on this host.

``solo``: one cluster with netns real nodes per machine; each test starts its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_chaos.cluster.realnodes import cluster as real_nodes
from tests.e2e.test_real_nodes import host_leftovers

pytestmark = pytest.mark.solo

GATE = Path(__file__).resolve().parents[2] / "examples" / "ci" / "gate.sh"
NAME = "gate-e2e"


@dataclass(frozen=True)
class Gate:
    """gate.sh with a state directory and a results directory of its own."""

    root: Path

    @property
    def out(self) -> Path:
        return self.root / "results"

    @property
    def state_dir(self) -> Path:
        return self.root / "clusters" / NAME

    def run(self, **settings: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PYTEST_CHAOS_STATE_DIR": str(self.root / "clusters"),
            "GATE_CLUSTER": NAME,
            "GATE_OUT": str(self.out),
            **settings,
        }
        return subprocess.run(
            ["bash", str(GATE)], env=env, capture_output=True, text=True, timeout=900, check=False
        )

    def verdicts(self) -> dict[str, str]:
        """Test id -> passed / failed / skipped, from the gate's junit XML."""
        verdicts = {}
        for case in ET.parse(self.out / "junit.xml").iter("testcase"):
            failed = case.find("failure") is not None or case.find("error") is not None
            skipped = case.find("skipped") is not None
            name = case.get("name", "")
            verdicts[name] = "failed" if failed else "skipped" if skipped else "passed"
        return verdicts


@pytest.fixture
def gate() -> Iterator[Gate]:
    missing = real_nodes.requirements()
    if missing:
        pytest.skip("this host cannot run real nodes now: " + "; ".join(missing))
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: `examples/ci/gate.sh deps` installs it")
    root = Path(tempfile.mkdtemp(prefix="pcg-"))  # short: unix sockets live under it
    yield Gate(root)
    shutil.rmtree(root, ignore_errors=True)


def assert_cleaned_up(gate: Gate, run: subprocess.CompletedProcess[str]) -> None:
    assert f"local cluster '{NAME}' is down" in run.stdout + run.stderr, run.stderr[-3000:]
    assert host_leftovers(gate.state_dir) == []
    assert not list(Path("/tmp").glob("gatepod.*")), "podman's run root is left in /tmp"


def test_the_gate_passes_on_go_demo_8_and_leaves_nothing(gate: Gate) -> None:
    run = gate.run()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    assert (gate.out / "chaos-report.html").stat().st_size > 0
    verdicts = gate.verdicts()
    assert verdicts, "the junit XML lists no test"
    assert set(verdicts.values()) == {"passed"}, verdicts
    assert "test_one_instance_is_not_enough" in verdicts  # the expected failing verdict, shown
    assert_cleaned_up(gate, run)


def test_a_gate_on_one_api_instance_fails_and_still_cleans_up(gate: Gate) -> None:
    run = gate.run(GATE_API_REPLICAS="1")
    assert run.returncode == 1, run.stdout[-4000:] + run.stderr[-3000:]  # pytest's: tests failed
    verdicts = gate.verdicts()
    crashes = {name: v for name, v in verdicts.items() if name.endswith("-crash]")}
    assert crashes, verdicts
    assert set(crashes.values()) == {"failed"}, verdicts
    assert (gate.out / "chaos-report.html").exists()
    assert_cleaned_up(gate, run)
