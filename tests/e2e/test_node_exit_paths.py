"""Node faults leave nothing behind, however a run ends.

A real pytest process drains one node of a pool, taints another (NoExecute) and deletes the third,
then fails (teardown reverts) or is SIGKILLed (nothing runs: ``pytest-chaos cleanup`` reverts from
the records kept in the cluster, without the runner's local ledger). Afterwards every node of the
pool is exactly as before (labels, annotations, taints, unschedulable; the deleted one re-created)
and no undo record of the run is left in ``default``, where node records are kept.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.nodes import NodePool, node_pool
from pytest_chaos import Kube
from pytest_chaos.ledger import CLUSTER_SCOPE_NAMESPACE, read_cluster
from tests.e2e.test_exit_paths import cleanup, run_id, run_inner_test, wait_for

INNER = """
import time

NODES = {nodes!r}


def inject(chaos):
    chaos.nodes.drain(NODES[0], timeout="30s")
    chaos.nodes.taint("chaos.pytest.dev/exit", name=NODES[1], effect="NoExecute")
    chaos.nodes.delete(NODES[2])
    open({marker!r}, "w").close()


{body}
"""

BODIES = {
    "fail": "def test_chaos(chaos):\n    inject(chaos)\n    assert False, 'the system deviated'\n",
    "sleep": "def test_chaos(chaos):\n    inject(chaos)\n    time.sleep(60)\n",
}


@pytest.fixture
def pool(kube: Kube) -> Iterator[NodePool]:
    with node_pool(kube, 3, prefix="exit") as created:
        yield created


def start(
    kube: Kube, pool: NodePool, tmp_path: Path, body: str, ledger: Path
) -> tuple[subprocess.Popen[str], Path]:
    marker = tmp_path / "injected"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER.format(nodes=pool.nodes, marker=str(marker), body=BODIES[body]))
    return run_inner_test(kube, test_file, ledger=ledger), marker


def undo_configmaps(kube: Kube, pool: NodePool) -> list[str]:
    """Undo records of the pool's nodes still in the cluster (in ``default``)."""
    return [
        r.configmap_name
        for r in read_cluster(kube)
        if r.store_namespace == CLUSTER_SCOPE_NAMESPACE and r.name in pool.nodes
    ]


def test_a_failing_test_reverts_its_node_faults_in_teardown(
    kube: Kube, pool: NodePool, tmp_path: Path
) -> None:
    before = pool.states()
    proc, marker = start(kube, pool, tmp_path, "fail", tmp_path / "ledger")

    output, _ = proc.communicate(timeout=180)

    assert marker.exists(), output
    assert "1 failed" in output, output
    assert "revert failures: 0, leftovers: 0" in output, output
    pool.wait_ready()
    assert pool.states() == before
    assert undo_configmaps(kube, pool) == []


def test_sigkill_then_cleanup_restores_every_node(
    kube: Kube, pool: NodePool, tmp_path: Path
) -> None:
    before = pool.states()
    ledger = tmp_path / "ledger"
    proc, marker = start(kube, pool, tmp_path, "sleep", ledger)
    wait_for(marker, proc, within=120)

    proc.kill()  # SIGKILL: no teardown, no finally
    proc.communicate(timeout=60)
    run = run_id(ledger)
    drained, tainted, deleted = pool.nodes
    assert kube.core.read_node(drained).spec.unschedulable is True
    assert "chaos.pytest.dev/exit" in {t.key for t in kube.core.read_node(tainted).spec.taints}
    assert deleted not in {n.metadata.name for n in kube.core.list_node().items}
    assert len(undo_configmaps(kube, pool)) == 3
    for path in ledger.glob("*.jsonl"):
        path.unlink()  # the runner's disk is gone too: only the cluster's records remain

    report = cleanup(kube, ledger, run)

    assert report.count("reverted: ") == 3, report
    pool.wait_ready()
    assert pool.states() == before
    assert undo_configmaps(kube, pool) == []
    assert cleanup(kube, ledger, run).strip() == "nothing left behind"
