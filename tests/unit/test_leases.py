"""Target leases: names, expiry, holders, and the bounded wait for a held target (pure logic)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from pytest_chaos.faults.leases import (
    LEASE_SECONDS,
    LeaseTarget,
    TargetHeldError,
    TargetReleasedError,
    call_waiting,
    expires_in,
    holder_identity,
    lease_body,
)

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def test_a_namespaced_target_is_leased_in_its_namespace_and_a_node_in_default() -> None:
    web = LeaseTarget("Deployment", "shop", "web")
    node = LeaseTarget("Node", None, "kwok-node-0")
    assert (web.lease_namespace, web.lease_name) == ("shop", "pytest-chaos.deployment.web")
    assert (node.lease_namespace, node.lease_name) == ("default", "pytest-chaos.node.kwok-node-0")
    assert web.text == "Deployment shop/web"
    assert node.text == "Node kwok-node-0"


def test_lease_names_are_valid_distinct_and_stable_even_for_long_names() -> None:
    long_a = LeaseTarget("Deployment", "shop", "a" * 250)
    long_b = LeaseTarget("Deployment", "shop", "a" * 249 + "b")
    for target in (long_a, long_b, LeaseTarget("StatefulSet", "x", "db-0")):
        assert len(target.lease_name) <= 253
        assert DNS_SUBDOMAIN.fullmatch(target.lease_name), target.lease_name
    assert long_a.lease_name != long_b.lease_name
    assert long_a.lease_name == LeaseTarget("Deployment", "shop", "a" * 250).lease_name
    # One kind's name never collides with another kind's of the same name.
    assert (
        LeaseTarget("Node", None, "web").lease_name
        != LeaseTarget("Deployment", None, "web").lease_name
    )


def _lease(holder: str | None, renewed_ago: float, *, duration: int = LEASE_SECONDS) -> Any:
    now = time.time()
    body = lease_body(LeaseTarget("Node", None, "n"), holder or "x", run="r", now=now - renewed_ago)
    body["spec"]["holderIdentity"] = holder
    body["spec"]["leaseDurationSeconds"] = duration
    return body


def test_a_lease_expires_its_duration_after_its_last_renewal() -> None:
    now = time.time()
    assert expires_in(_lease("someone", 1), now) == pytest.approx(LEASE_SECONDS - 1, abs=0.01)
    assert expires_in(_lease("someone", LEASE_SECONDS + 1), now) < 0
    assert expires_in(_lease("someone", 1, duration=60), now) == pytest.approx(59, abs=0.01)


def test_a_released_lease_is_free_at_once() -> None:
    assert expires_in(_lease(None, 0), time.time()) == 0
    assert expires_in({"spec": {"holderIdentity": "x"}}, time.time()) == 0  # never renewed


def test_the_holder_names_run_worker_process_and_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    holder = holder_identity("20261203T081900-abc123", "tests/test_a.py::test_b")
    assert holder.startswith("run=20261203T081900-abc123 worker=gw3 pid=")
    assert holder.endswith(" test=tests/test_a.py::test_b")
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert " worker=main " in holder_identity("r", "t")


def test_a_held_target_error_names_the_holder_the_lease_and_the_option() -> None:
    target = LeaseTarget("Deployment", "shop", "web")
    now = str(TargetHeldError(target, "run=r1 worker=gw1 pid=7@h test=t", waited=0))
    assert "Deployment shop/web is held by another fault: run=r1 worker=gw1" in now
    assert "Lease shop/pytest-chaos.deployment.web" in now
    assert "--chaos-lease-wait=0" in now
    later = str(TargetHeldError(target, "run=r1", waited=30))
    assert "still held after waiting 30s (raise --chaos-lease-wait)" in later


class FakeKeeper:
    """Frees the target after a number of waits; records how long each wait could last."""

    def __init__(self, free_after: int, *, blocks: bool = False) -> None:
        self.free_after = free_after
        self.blocks = blocks  # wait as the real keeper does when the holder never lets go
        self.waits: list[float] = []

    @property
    def busy(self) -> bool:
        return len(self.waits) < self.free_after

    def wait_free(self, target: LeaseTarget, *, until: float) -> None:
        self.waits.append(until - time.monotonic())
        if self.blocks:
            time.sleep(max(0.0, until - time.monotonic()))


TARGET = LeaseTarget("Deployment", "shop", "web")


def test_a_held_target_is_waited_for_then_the_fault_runs_again_from_scratch() -> None:
    keeper: Any = FakeKeeper(free_after=2)
    attempts: list[int] = []
    said: list[str] = []
    rewinds: list[int] = []

    def attempt() -> str:
        attempts.append(len(keeper.waits))
        if keeper.busy:
            raise TargetHeldError(TARGET, "run=other")
        return "injected"

    result = call_waiting(
        attempt,
        keeper=keeper,
        wait=60,
        say=said.append,
        rewind=lambda: rewinds.append(1),
    )

    assert result == "injected"
    assert attempts == [0, 1, 2]
    assert len(rewinds) == 2  # the seeded choice is replayed before each new attempt
    assert len(said) == 1  # one progress line when the wait starts (more only every 10 s)
    assert said[0].startswith("waiting for Deployment shop/web, held by run=other (0s of up to")
    assert all(0 < w <= 10.01 for w in keeper.waits)


def test_wait_zero_fails_at_once_naming_the_holder() -> None:
    keeper: Any = FakeKeeper(free_after=99)

    def attempt() -> str:
        raise TargetHeldError(TARGET, "run=other worker=gw1")

    with pytest.raises(
        TargetHeldError, match="held by another fault: run=other worker=gw1"
    ) as info:
        call_waiting(attempt, keeper=keeper, wait=0, say=lambda _: None)
    assert info.value.waited == 0
    assert keeper.waits == []


def test_the_wait_is_bounded_by_the_deadline() -> None:
    keeper: Any = FakeKeeper(free_after=10**6, blocks=True)

    def attempt() -> str:
        raise TargetHeldError(TARGET, "run=other")

    started = time.monotonic()
    with pytest.raises(TargetHeldError, match=re.escape("still held after waiting 0.2s")):
        call_waiting(attempt, keeper=keeper, wait=0.2, say=lambda _: None)
    assert time.monotonic() - started < 5
    assert keeper.waits
    assert max(keeper.waits) <= 0.2  # never asked to wait past the deadline


def test_a_release_seen_mid_attempt_runs_the_fault_again_without_waiting() -> None:
    keeper: Any = FakeKeeper(free_after=0)
    attempts: list[int] = []

    def attempt() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise TargetReleasedError(TARGET)
        return "injected"

    assert call_waiting(attempt, keeper=keeper, wait=60, say=lambda _: None) == "injected"
    assert len(attempts) == 2
    assert keeper.waits == []
