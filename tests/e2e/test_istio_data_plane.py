"""Istio aborts and delays measured on real requests through Envoy (issue 17).

The checks themselves are in ``istio_mesh/through_gateway.py``; they run in a pytest session of
their own whose embedded cluster (``--chaos-local-istio``, one fake node) runs istiod and the
host ingress gateway, started for that session and stopped when it ends. Skipped, saying why,
where istiod is not built (``make test`` builds it, tolerating a failed build).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chaos.cluster.istio.control import istio_binaries
from pytest_chaos.cluster.local import LocalCluster, state_root
from pytest_chaos.cluster.processes import find_orphans
from pytest_chaos.errors import BinaryMissingError

pytestmark = pytest.mark.solo  # its own cluster with istiod: after the parallel suite

INNER = Path(__file__).parent / "istio_mesh" / "through_gateway.py"
NAME = "istio-e2e"


def _missing() -> str:
    try:
        istio_binaries()
    except BinaryMissingError as exc:
        return str(exc)
    return ""


def test_faults_act_on_requests_through_the_gateway() -> None:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(INNER),
            "-p",
            "no:cacheprovider",
            "-q",
            "--chaos-cluster=local",
            f"--chaos-local-name={NAME}",
            "--chaos-local-nodes=1",
            "--chaos-local-istio",
            "--chaos-local-real-node=no",
        ],
        cwd=Path(__file__).parents[2],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "4 passed" in output, output
    # The session started the cluster, so it stopped it: istiod, pilot-agent and Envoy too.
    assert not LocalCluster(NAME).status().exists
    assert find_orphans(str(state_root() / NAME) + "/") == []
