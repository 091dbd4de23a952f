"""Nothing is left behind by network and stress faults, however a run ends.

A real pytest process partitions a pod, cuts it off a Service, stresses it and stresses a node,
then fails (teardown reverts) or is SIGKILLed (``pytest-chaos cleanup`` reverts from the
cluster's records alone): no NetworkPolicy, no stress pod, no undo record is left, every
ephemeral container got its undo container, and the pod was never restarted.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.faults.ephemeral import API_ONLY
from pytest_chaos.ledger import read_cluster
from tests.e2e.manifests import namespace_with
from tests.e2e.test_exit_paths import cleanup, run_id, run_inner_test, wait_for

INNER = """
import time

NS = {ns!r}


def inject(chaos):
    chaos.network.partition("app=web", namespace=NS, direction="egress")
    chaos.network.cut("app=web", namespace=NS, to="broker")
    chaos.stress.pods("app=web", namespace=NS, cpu="100m")
    chaos.stress.nodes(selector="type=kwok", cpu="100m", namespace=NS)
    open({marker!r}, "w").close()


def test_chaos(chaos):
    inject(chaos)
    {ending}
"""

ENDINGS = {
    "fail": "assert False, 'the service did not reconnect'",
    "sleep": "time.sleep(120)",
}


def broker_service() -> dict[str, Any]:
    return {
        "metadata": {"name": "broker"},
        "spec": {"selector": {"app": "broker"}, "ports": [{"port": 4222}]},
    }


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    with namespace_with(kube, "netexit", {"web": 1, "broker": 1}) as name:
        kube.core.create_namespaced_service(name, broker_service())
        yield name


def web_pod(kube: Kube, namespace: str) -> dict[str, Any]:
    (pod,) = kube.core.list_namespaced_pod(namespace, label_selector="app=web").items
    data: dict[str, Any] = kube.serialize(pod)
    return data


def start(
    kube: Kube, namespace: str, tmp_path: Path, ending: str
) -> tuple[subprocess.Popen[str], Path]:
    marker = tmp_path / "injected"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER.format(ns=namespace, marker=str(marker), ending=ENDINGS[ending]))
    return run_inner_test(kube, test_file, ledger=tmp_path / "ledger"), marker


def assert_nothing_left(kube: Kube, namespace: str, before: dict[str, Any]) -> None:
    assert kube.networking.list_namespaced_network_policy(namespace).items == []
    managed = "app.kubernetes.io/managed-by=pytest-chaos"
    assert kube.core.list_namespaced_pod(namespace, label_selector=managed).items == []
    assert [r.target for r in read_cluster(kube) if r.namespace == namespace] == []
    pod = web_pod(kube, namespace)
    names = sorted(c["name"].split("-")[1] for c in pod["spec"]["ephemeralContainers"])
    assert names == ["cut", "stress", "undo", "undo"]  # each injection got its undo
    assert pod["metadata"]["uid"] == before["metadata"]["uid"]
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def test_a_failing_test_reverts_every_network_and_stress_fault_in_teardown(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    before = web_pod(kube, namespace)
    proc, _marker = start(kube, namespace, tmp_path, "fail")
    output, _ = proc.communicate(timeout=180)
    assert "1 failed" in output, output
    assert "revert failures: 0, leftovers: 0" in output, output
    assert_nothing_left(kube, namespace, before)


def test_sigkill_then_cleanup_removes_the_partition_the_stress_pod_and_the_rules(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    before = web_pod(kube, namespace)
    ledger = tmp_path / "ledger"
    proc, marker = start(kube, namespace, tmp_path, "sleep")
    wait_for(marker, proc, within=120)

    proc.kill()
    proc.communicate(timeout=60)
    assert len(kube.networking.list_namespaced_network_policy(namespace).items) == 1
    run = run_id(ledger)
    for path in ledger.glob("*.jsonl"):
        path.unlink()  # only the cluster's records remain

    report = cleanup(kube, ledger, run)

    assert "reverted: network.partition on NetworkPolicy" in report, report
    assert "reverted: stress.nodes on Pod" in report, report
    assert report.count(f"reverted: {API_ONLY}: ") == 2, report  # the cut and the stress
    assert_nothing_left(kube, namespace, before)
    assert cleanup(kube, ledger, run).strip() == "nothing left behind"
