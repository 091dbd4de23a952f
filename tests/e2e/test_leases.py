"""Target leases on the real API server: one fault at a time per target, whoever injects it.

"Another run" is a second chaos session in this process (its own run id, ledger and Lease
keeper: exactly what another pytest process or CI job has), or a real pytest process for the
``kill -9`` case.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.nodes import NodePool, node_pool
from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos, ChaosSession
from pytest_chaos.faults.leases import (
    LEASE_SECONDS,
    LeaseTarget,
    TargetHeldError,
    read_lease,
)
from pytest_chaos.ledger import new_run_id, read_local
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.steady import Steady
from tests.e2e.manifests import deployment, namespace_with
from tests.e2e.test_exit_paths import cleanup, run_id, run_inner_test, wait_for


@pytest.fixture
def web(kube: Kube, chaos_namespace: str, steady: Steady) -> str:
    """A 4-replica Deployment `web`, available."""
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("web", replicas=4))
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)
    return "web"


def replicas(kube: Kube, namespace: str) -> int:
    return int(kube.apps.read_namespaced_deployment("web", namespace).spec.replicas)


@pytest.fixture
def other_run(kube: Kube, chaos_session: ChaosSession) -> Iterator[Any]:
    """Make the chaos of another run (own run id, ledger, leases) with a given lease wait."""
    made: list[Chaos] = []

    def make(lease_wait: float) -> Chaos:
        settings = dataclasses.replace(chaos_session.settings, lease_wait=lease_wait)
        session = ChaosSession(kube, settings, run_id=new_run_id(), seed=1)
        session.safety = chaos_session.safety  # the same allow-lists (our throw-away namespace)
        injector = Chaos(session, "ci-job-2::test_other", Timeline("ci-job-2::test_other"))
        made.append(injector)
        return injector

    yield make
    for injector in made:
        injector.revert_all()


def lease_of(kube: Kube, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
    return read_lease(kube, LeaseTarget(kind, namespace, name))


def test_a_fault_holds_its_target_naming_run_worker_and_test_until_it_is_reverted(
    kube: Kube, chaos: Chaos, chaos_session: ChaosSession, chaos_namespace: str, web: str
) -> None:
    fault = chaos.deployments.scale(web, namespace=chaos_namespace, replicas=1)

    lease = lease_of(kube, "Deployment", chaos_namespace, web)
    assert lease is not None
    holder = lease["spec"]["holderIdentity"]
    assert holder.startswith(f"run={chaos_session.run_id} worker=")
    assert holder.endswith(f" test={chaos.timeline.test}")
    assert lease["metadata"]["labels"]["chaos.pytest.dev/lease"] == "true"
    # The ledger had the lease before the cluster did: an open local record of it.
    [record] = [
        r
        for r in read_local(chaos_session.ledger.directory)
        if r.owner == chaos_session.ledger.owner and r.undo == "lease"
    ]
    assert (record.namespace, record.name) == (chaos_namespace, "pytest-chaos.deployment.web")
    assert record.payload["holder"] == holder

    fault.revert()

    released = lease_of(kube, "Deployment", chaos_namespace, web)
    assert released is not None
    assert not released["spec"].get("holderIdentity")
    assert released["metadata"]["annotations"]["chaos.pytest.dev/released-by"] == holder
    assert replicas(kube, chaos_namespace) == 4
    assert not [
        r
        for r in read_local(chaos_session.ledger.directory)
        if r.owner == chaos_session.ledger.owner
    ]


def test_with_lease_wait_zero_a_pod_kill_in_a_scaled_deployment_fails_fast_naming_the_holder(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: str, other_run: Any
) -> None:
    chaos.deployments.scale(web, namespace=chaos_namespace, replicas=2)
    other = other_run(0)
    pods_before = {p.metadata.uid for p in kube.core.list_namespaced_pod(chaos_namespace).items}

    started = time.monotonic()
    with pytest.raises(TargetHeldError) as info:
        other.pods.kill("app=web", namespace=chaos_namespace)

    assert time.monotonic() - started < 5
    message = str(info.value)
    assert message.startswith(f"Deployment {chaos_namespace}/web is held by another fault: run=")
    assert f"test={chaos.timeline.test}" in message
    assert message.endswith("not waiting (--chaos-lease-wait=0)")
    assert other.active == []  # nothing injected, nothing to revert
    alive = {p.metadata.uid for p in kube.core.list_namespaced_pod(chaos_namespace).items}
    assert alive <= pods_before  # no pod was killed by the refused fault


def test_a_second_scale_waits_for_the_first_to_revert_and_restores_the_original(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: str, other_run: Any
) -> None:
    first = chaos.deployments.scale(web, namespace=chaos_namespace, replicas=1)
    other = other_run(60)
    outcome: dict[str, Any] = {}

    def second() -> None:
        try:
            outcome["fault"] = other.deployments.scale(web, namespace=chaos_namespace, replicas=2)
        except Exception as exc:  # pragma: no cover - reported by the assertions below
            outcome["error"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 30
    while not any(e.phase == "lease" for e in other.timeline.events):  # it says it waits
        assert thread.is_alive(), outcome
        assert time.monotonic() < deadline, "the second fault never reported waiting"
        time.sleep(0.05)
    assert replicas(kube, chaos_namespace) == 1  # still ours: nothing stacked on it
    [waiting] = [e.text for e in other.timeline.events if e.phase == "lease"]
    assert waiting.startswith(f"deployments.scale: waiting for Deployment {chaos_namespace}/web")

    first.revert()
    thread.join(timeout=30)

    assert "error" not in outcome, outcome
    fault = outcome["fault"]
    assert fault.details == {"from": 4, "to": 2}  # read again after the first one's revert
    assert replicas(kube, chaos_namespace) == 2
    fault.revert()
    assert replicas(kube, chaos_namespace) == 4


def test_faults_of_one_run_share_a_target_and_release_it_after_the_last_revert(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: str
) -> None:
    kill = chaos.pods.kill("app=web", namespace=chaos_namespace)
    scale = chaos.deployments.scale(web, namespace=chaos_namespace, replicas=3)  # same run

    kill.revert()
    lease = lease_of(kube, "Deployment", chaos_namespace, web)
    assert lease is not None
    assert lease["spec"]["holderIdentity"]  # the scale still holds it
    scale.revert()
    lease = lease_of(kube, "Deployment", chaos_namespace, web)
    assert lease is not None
    assert not lease["spec"].get("holderIdentity")


@pytest.fixture
def pool(kube: Kube) -> Iterator[NodePool]:
    """Two extra Ready nodes of this test's own (set up before `chaos`)."""
    with node_pool(kube, 2) as created:
        yield created


def test_a_taint_on_a_node_a_cordon_holds_waits_but_other_nodes_are_free(
    kube: Kube, pool: NodePool, chaos: Chaos, other_run: Any
) -> None:
    first, second = sorted(pool.nodes)
    cordon = chaos.nodes.cordon(first)
    other = other_run(0)

    with pytest.raises(TargetHeldError, match=f"^Node {first} is held by another fault"):
        other.nodes.taint("chaos.pytest.dev/test", name=first)
    taint = other.nodes.taint("chaos.pytest.dev/test", name=second)  # not held: at once

    lease = lease_of(kube, "Node", None, first)
    assert lease is not None
    assert lease["metadata"]["namespace"] == "default"
    taint.revert()
    cordon.revert()


def start_holder(kube: Kube, tmp_path: Path, namespace: str) -> tuple[Any, Path]:
    """A real pytest process that kills a pod of web (holding web) and sleeps; its ledger."""
    marker = tmp_path / "injected"
    test_file = tmp_path / "test_holder.py"
    test_file.write_text(
        "import time\n\n\n"
        "def test_holds(chaos):\n"
        f"    chaos.pods.kill('app=web', namespace={namespace!r})\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    time.sleep(120)\n"
    )
    ledger = tmp_path / "ledger"
    proc = run_inner_test(kube, test_file, ledger=ledger)
    wait_for(marker, proc)
    lease = lease_of(kube, "Deployment", namespace, "web")
    assert lease is not None
    assert "test=test_holder.py::test_holds" in str(lease["spec"]["holderIdentity"])
    proc.kill()  # kill -9: no teardown, no release
    proc.communicate(timeout=60)
    return proc, ledger


def test_a_killed_holder_frees_its_target_when_its_lease_expires(
    kube: Kube, tmp_path: Path, chaos: Chaos
) -> None:
    with namespace_with(kube, "lease", {"web": 2}) as namespace:
        start_holder(kube, tmp_path, namespace)

        started = time.monotonic()
        chaos.pods.kill("app=web", namespace=namespace)  # waits for the expiry, then runs

        waited = time.monotonic() - started
        assert 0 < waited <= LEASE_SECONDS + 5
        said = next(e.text for e in chaos.timeline.events if e.phase == "lease")
        assert "held by run=" in said
        assert "test=test_holder.py::test_holds" in said
        chaos.revert_all()


def test_cleanup_removes_the_lease_of_a_killed_run_at_once(
    kube: Kube, tmp_path: Path, chaos: Chaos
) -> None:
    with namespace_with(kube, "lease", {"web": 2}) as namespace:
        _proc, ledger = start_holder(kube, tmp_path, namespace)

        lines = cleanup(kube, ledger, run_id(ledger))

        assert f"lease released: pods.kill on Lease {namespace}/pytest-chaos.deployment.web" in (
            lines
        ), lines
        assert lease_of(kube, "Deployment", namespace, "web") is None
        started = time.monotonic()
        chaos.pods.kill("app=web", namespace=namespace)  # free: no wait
        assert time.monotonic() - started < 10
        assert not [e for e in chaos.timeline.events if e.phase == "lease"]
