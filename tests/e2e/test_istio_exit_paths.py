"""Istio faults are undone however a run ends: by teardown, or by ``pytest-chaos cleanup`` after
SIGKILL, from the records in the cluster alone.

The inner run injects all three kinds of VirtualService change: an abort merged into a route, a
header-scoped delay (an inserted route), and a VirtualService of our own for a host that had
none. Afterwards every VirtualService spec is as before, byte for byte, and ours is gone.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.ledger import read_cluster
from tests.e2e.manifests import namespace_with
from tests.e2e.test_exit_paths import cleanup, run_id, run_inner_test, wait_for
from tests.e2e.test_istio_faults import GROUP, PLURAL, service, virtual_service

INNER = """
import time

NS = {ns!r}


def inject(chaos):
    chaos.istio.abort("go-demo-8", namespace=NS, status=500, percent=50)
    chaos.istio.delay("go-demo-8", namespace=NS, delay="15s", header="x-chaos=slow")
    chaos.istio.abort("db", namespace=NS)  # no VirtualService routes to db: one is created
    open({marker!r}, "w").close()


def test_chaos(chaos):
    inject(chaos)
    {ending}
"""

ENDINGS = {"fail": "assert False, 'the system deviated'", "sleep": "time.sleep(60)"}


@dataclass
class Mesh:
    """A namespace with the book's go-demo-8 VirtualService, and a db Service without one."""

    kube: Kube
    namespace: str
    spec: str

    def virtual_services(self) -> dict[str, Any]:
        listing = self.kube.custom.list_namespaced_custom_object(
            GROUP, "v1", self.namespace, PLURAL
        )
        return {vs["metadata"]["name"]: vs for vs in listing["items"]}

    def assert_as_before(self) -> None:
        found = self.virtual_services()
        assert list(found) == ["go-demo-8"]  # ours, for db, is gone
        assert json.dumps(found["go-demo-8"]["spec"]) == self.spec
        assert [r.fault for r in read_cluster(self.kube) if r.namespace == self.namespace] == []


@pytest.fixture
def mesh(kube: Kube) -> Iterator[Mesh]:
    with namespace_with(kube, "istio-exit", {}) as namespace:
        kube.core.create_namespaced_service(namespace, service("go-demo-8"))
        kube.core.create_namespaced_service(namespace, service("db"))
        retries = {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx"}
        created = kube.custom.create_namespaced_custom_object(
            GROUP, "v1", namespace, PLURAL, virtual_service(retries=retries)
        )
        yield Mesh(kube, namespace, json.dumps(created["spec"]))


def start(
    kube: Kube, mesh: Mesh, tmp_path: Path, ending: str
) -> tuple[subprocess.Popen[str], Path]:
    marker = tmp_path / "injected"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(
        INNER.format(ns=mesh.namespace, marker=str(marker), ending=ENDINGS[ending])
    )
    return run_inner_test(kube, test_file, ledger=tmp_path / "ledger"), marker


def test_a_failing_test_has_its_faults_reverted_by_teardown(
    kube: Kube, mesh: Mesh, tmp_path: Path
) -> None:
    proc, marker = start(kube, mesh, tmp_path, "fail")
    output, _ = proc.communicate(timeout=120)

    assert marker.exists(), output
    assert "1 failed" in output, output
    assert "faults injected: 3, reverted: 3, revert failures: 0, leftovers: 0" in output
    mesh.assert_as_before()


def test_sigkill_then_cleanup_restores_every_virtual_service(
    kube: Kube, mesh: Mesh, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    proc, marker = start(kube, mesh, tmp_path, "sleep")
    wait_for(marker, proc)

    proc.kill()
    proc.communicate(timeout=60)
    run = run_id(ledger)
    assert len(mesh.virtual_services()) == 2  # left behind: our VirtualService for db...
    http = mesh.virtual_services()["go-demo-8"]["spec"]["http"]
    assert [r.get("name", "").startswith("pytest-chaos-") for r in http] == [True, False]
    assert "abort" in http[1]["fault"]  # ...the header route and the abort
    for path in ledger.glob("*.jsonl"):
        path.unlink()  # the runner's disk is gone too: only the cluster's records remain

    report = cleanup(kube, ledger, run)

    assert report.count("reverted: istio.") == 3, report
    mesh.assert_as_before()
    assert cleanup(kube, ledger, run).strip() == "nothing left behind"
