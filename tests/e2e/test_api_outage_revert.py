"""Reverts outlast the control plane's absence: the API server (and etcd) stop mid-fault.

A small local cluster of this module's own (another name and state directory: the session's
shared cluster must keep answering everyone else's tests) runs a Deployment; a fault scales it;
then its etcd and API server are stopped and, once the revert has met the refusal, started again
from the same command lines. The revert retries through the outage (``--chaos-revert-timeout``);
when the outage outlasts that, the undo record stays in the ledger and ``pytest-chaos cleanup``
finishes it. One API call's own retry deadline is shortened here, so that the outage outlasts it
in seconds rather than half a minute.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos, ChaosSession
from pytest_chaos.cleanup import clean
from pytest_chaos.cluster import processes
from pytest_chaos.cluster.local import LocalCluster
from pytest_chaos.errors import RevertError
from pytest_chaos.kube import retry
from pytest_chaos.ledger import new_run_id, read_cluster
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.settings import Settings
from tests.e2e.manifests import deployment

pytestmark = pytest.mark.solo


@dataclass
class Component:
    """A stopped component of the cluster, and how to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log: Path

    def start(self) -> None:
        processes.spawn(self.name, self.argv, self.log, env=self.env, cwd=Path(self.cwd))


def stop(cluster: LocalCluster, names: tuple[str, ...]) -> list[Component]:
    """Stop these components of the cluster, keeping their command lines to start them again.

    Found by the cluster's state directory in their command lines (so a component an earlier
    test restarted is found too) and by their program's name.
    """
    state = json.loads((cluster.state_dir / "cluster.json").read_text())
    logs = {r["component"]: Path(r["log"]) for r in state["processes"]}
    running = processes.find_orphans(str(cluster.state_dir) + "/")
    stopped = []
    for name in names:
        [pid] = [p for p in running if program(p) == name]
        proc = Path(f"/proc/{pid}")
        argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
        env = dict(
            line.decode().split("=", 1)
            for line in (proc / "environ").read_bytes().split(b"\0")
            if b"=" in line
        )
        stopped.append(Component(name, argv, env, os.readlink(proc / "cwd"), logs[name]))
        assert processes.terminate([pid]) == []
    return stopped


def program(pid: int) -> str:
    try:
        return Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()).name
    except OSError:
        return ""


@pytest.fixture(scope="module")
def outage_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(f"outage-{secrets.token_hex(2)}", root=tmp_path_factory.mktemp("state"))
    cluster.up(nodes=1)
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def chaos_of(
    outage_cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Kube, str, Chaos, ChaosSession]]:
    """A Deployment web (2 replicas) in a fresh namespace, and a chaos session on that cluster."""
    monkeypatch.setenv("PYTEST_CHAOS_LEDGER_DIR", str(tmp_path / "ledger"))
    kube = Kube.from_kubeconfig(outage_cluster.kubeconfig, outage_cluster.context)
    namespace = f"outage-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": namespace}})
    kube.wait(
        functools.partial(kube.core.list_namespaced_service_account, namespace),
        lambda accounts: any(a.metadata.name == "default" for a in accounts),
        within=60,
        what="default service account",
    )
    kube.apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))
    settings = Settings(
        cluster="existing",
        kubeconfig=outage_cluster.kubeconfig,
        context=outage_cluster.context,
        local_name=outage_cluster.name,
        local_nodes=1,
        revert_timeout=90,
    )
    session = ChaosSession(kube, settings, run_id=new_run_id(), seed=1)
    chaos = Chaos(session, "test_api_outage_revert", Timeline("test_api_outage_revert"))
    try:
        yield kube, namespace, chaos, session
    finally:
        for fault in chaos.active:
            fault.discard("test over")
        kube.close()


def replicas(kube: Kube, namespace: str) -> int:
    return int(kube.apps.read_namespaced_deployment("web", namespace).spec.replicas)


def said(chaos: Chaos, text: str) -> bool:
    return any(text in e.text for e in chaos.timeline.events)


def test_a_revert_retries_through_an_api_server_and_etcd_restart(
    outage_cluster: LocalCluster,
    chaos_of: tuple[Kube, str, Chaos, ChaosSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube, namespace, chaos, _session = chaos_of
    fault = chaos.deployments.scale("web", namespace=namespace, replicas=0)
    monkeypatch.setattr(retry, "DEFAULT_DEADLINE", 2.0)
    stopped = stop(outage_cluster, ("kube-apiserver", "etcd"))

    def restart_once_refused() -> None:
        deadline = time.monotonic() + 60
        while not said(chaos, "the API server refuses") and time.monotonic() < deadline:
            time.sleep(0.05)
        for component in reversed(stopped):  # etcd first, then the API server
            component.start()

    restarter = threading.Thread(target=restart_once_refused)
    restarter.start()
    started = time.monotonic()
    fault.revert()
    restarter.join()

    assert not fault.active
    assert said(chaos, "the API server answers again after")
    assert time.monotonic() - started > 2  # it did outlast one call's own retries
    assert replicas(kube, namespace) == 2
    assert [r for r in read_cluster(kube) if r.namespace == namespace] == []


def test_past_the_revert_timeout_the_record_stays_and_cleanup_finishes_it(
    outage_cluster: LocalCluster,
    chaos_of: tuple[Kube, str, Chaos, ChaosSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube, namespace, chaos, session = chaos_of
    fault = chaos.deployments.scale("web", namespace=namespace, replicas=0)
    monkeypatch.setattr(retry, "DEFAULT_DEADLINE", 1.0)
    fault._ctx.revert_timeout = 3.0
    stopped = stop(outage_cluster, ("kube-apiserver",))
    try:
        with pytest.raises(RevertError) as info:
            fault.revert()
    finally:
        for component in stopped:
            component.start()
    assert "--chaos-revert-timeout=3s" in str(info.value)
    assert "run `pytest-chaos cleanup` once the API is back" in str(info.value)
    assert fault.active
    monkeypatch.setattr(retry, "DEFAULT_DEADLINE", 30.0)
    kube.check_reachable(deadline=60)
    assert replicas(kube, namespace) == 0  # the fault is still there
    assert [r.fault for r in read_cluster(kube) if r.namespace == namespace] == [
        "deployments.scale"
    ]

    lines, failures = clean(kube, include_live=True, run=session.run_id)

    assert failures == []
    assert any(line.startswith("reverted: deployments.scale on Deployment") for line in lines)
    assert replicas(kube, namespace) == 2
    assert [r for r in read_cluster(kube) if r.namespace == namespace] == []
