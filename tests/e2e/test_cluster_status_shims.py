"""`pytest-chaos cluster status` while pods run on the real node: their shims are no orphans."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_chaos import Kube
from pytest_chaos.cluster import ClusterHandle
from tests.e2e.realnode_manifests import demo_deployment, deploy

pytestmark = pytest.mark.real_node


def test_status_tells_the_running_pods_shims_from_orphaned_processes(
    kube: Kube, chaos_cluster: ClusterHandle, chaos_namespace: str
) -> None:
    deploy(kube, chaos_namespace, demo_deployment("shimmed"))
    state_dir = chaos_cluster.kubeconfig.parent  # the local cluster's: <root>/<name>/kubeconfig
    env = {**os.environ, "PYTEST_CHAOS_STATE_DIR": str(state_dir.parent)}

    status = subprocess.run(
        [sys.executable, "-m", "pytest_chaos", "cluster", "status", "--name", state_dir.name],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert status.returncode == 0, status.stdout + status.stderr
    assert "orphaned" not in status.stdout, status.stdout
    assert "pod shims:" in status.stdout, status.stdout
    assert "of the real node's running pods" in status.stdout
