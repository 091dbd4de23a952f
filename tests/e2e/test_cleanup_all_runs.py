"""`pytest-chaos cleanup` without `--run` reverts every crashed run's faults, not the newest's.

Two real pytest processes each scale a Deployment of their own to 0 and are killed (``kill -9``:
no teardown); one cleanup must revert both. It runs on a small cluster of this module's own:
a cleanup of every run on the session's shared cluster would also revert the crashed runs other
tests are examining at the same time.
"""

from __future__ import annotations

import functools
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos import Kube
from pytest_chaos.cluster.local import LocalCluster
from pytest_chaos.ledger import read_cluster
from tests.e2e.manifests import deployment
from tests.e2e.test_exit_paths import run_inner_test, wait_for

pytestmark = pytest.mark.solo

INNER = """
import time


def test_holds(chaos):
    chaos.deployments.scale({name!r}, namespace={ns!r}, replicas=0)
    open({marker!r}, "w").close()
    time.sleep(120)
"""


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    """A cluster of this module's own (overrides the session's shared one here)."""
    cluster = LocalCluster(f"runs-{secrets.token_hex(2)}", root=tmp_path_factory.mktemp("state"))
    result = cluster.up(nodes=1)
    client = Kube.from_kubeconfig(result.kubeconfig, result.context)
    try:
        yield client
    finally:
        client.close()
        cluster.down()


def replicas(kube: Kube, namespace: str, name: str) -> int:
    return int(kube.apps.read_namespaced_deployment(name, namespace).spec.replicas)


def cleanup_every_run(kube: Kube, ledger: Path) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_chaos",
            "cleanup",
            f"--kubeconfig={kube.kubeconfig}",
            f"--context={kube.context}",
        ],
        env={**os.environ, "PYTEST_CHAOS_LEDGER_DIR": str(ledger)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_one_cleanup_reverts_the_faults_of_two_crashed_runs(kube: Kube, tmp_path: Path) -> None:
    namespace = f"runs-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": namespace}})
    kube.wait(
        functools.partial(kube.core.list_namespaced_service_account, namespace),
        lambda accounts: any(a.metadata.name == "default" for a in accounts),
        within=60,
        what="default service account",
    )
    for name in ("first", "second"):
        kube.apps.create_namespaced_deployment(namespace, deployment(name, replicas=2))
    ledger = tmp_path / "ledger"
    for name in ("first", "second"):  # one run after the other: the second is the newest
        marker = tmp_path / f"{name}-injected"
        test_file = tmp_path / name / "test_holder.py"
        test_file.parent.mkdir()
        test_file.write_text(INNER.format(name=name, ns=namespace, marker=str(marker)))
        proc = run_inner_test(kube, test_file, ledger=ledger)
        wait_for(marker, proc)
        proc.kill()
        proc.communicate(timeout=60)
        assert replicas(kube, namespace, name) == 0
    runs = {r.owner.run for r in read_cluster(kube) if r.namespace == namespace}
    assert len(runs) == 2

    report = cleanup_every_run(kube, ledger)

    assert report.count("reverted: deployments.scale on Deployment") == 2, report
    assert replicas(kube, namespace, "first") == 2
    assert replicas(kube, namespace, "second") == 2
    assert [r for r in read_cluster(kube) if r.namespace == namespace] == []
    assert cleanup_every_run(kube, ledger).strip() == "nothing left behind"
