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
import time
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


HOLD = """
import time

from tests.e2e.istio_mesh.through_gateway import HOST, mesh  # noqa: F401 - the fixture


def test_hold_a_full_abort(chaos, mesh):
    chaos.istio.abort(HOST, namespace=mesh.namespace, status=500)
    assert mesh.get()[0] == 500
    with open({marker!r}, "w") as out:
        out.write(mesh.namespace)
    time.sleep(300)
"""


def test_kill_9_mid_fault_then_cleanup_and_down_leave_nothing(tmp_path: Path) -> None:
    from pytest_chaos.faults.istio_effect import wait_in_data_plane
    from pytest_chaos.kube import Kube

    missing = _missing()
    if missing:
        pytest.skip(missing)
    name = f"{NAME}-kill"
    marker = tmp_path / "injected"
    inner = tmp_path / "test_hold.py"
    inner.write_text(HOLD.format(marker=str(marker)))
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "PYTEST_CHAOS_LEDGER_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(inner),
            "-p",
            "no:cacheprovider",
            "-q",
            "--chaos-cluster=local",
            f"--chaos-local-name={name}",
            "--chaos-local-nodes=1",
            "--chaos-local-istio",
            "--chaos-local-real-node=no",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    cluster = LocalCluster(name)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the inner run never injected its fault"
            time.sleep(0.1)
        namespace = marker.read_text()
        proc.kill()  # SIGKILL mid-fault: no teardown, no revert
        proc.communicate()
        cleaned = subprocess.run(
            [sys.executable, "-m", "pytest_chaos", "cleanup", f"--local={name}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert "reverted" in cleaned.stdout, cleaned.stdout
        kube = Kube.from_kubeconfig(cluster.kubeconfig, cluster.context)
        try:
            value = {"httpStatus": 500, "percentage": {"value": 100.0}}
            proxy, _waited, gone = wait_in_data_plane(
                kube, [(namespace, "backend")], "abort", value, None, present=False
            )
        finally:
            kube.close()
        assert proxy is not None, "the gateway's Envoy does not serve the VirtualService"
        assert gone, "the gateway's Envoy still carries the abort"
    finally:
        if proc.poll() is None:
            proc.kill()
        assert cluster.down() == []
    assert not cluster.status().exists
    assert find_orphans(str(state_root() / name) + "/") == []
