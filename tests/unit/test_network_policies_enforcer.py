"""The NetworkPolicy enforcer of the netns real nodes: its command lines, as a user reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chaos.cluster.realnodes import policies
from pytest_chaos.cluster.realnodes.plan import plan


def test_each_node_runs_its_enforcer_in_its_own_netns_as_itself() -> None:
    node = plan(2).nodes[1]
    argv = policies.argv(Path("/cache/np"), node, Path("/state/realnodes/real-node-1/kubeconfig"))
    assert argv[:3] == ["nsenter", f"--net=/run/netns/{node.netns}", "--"]
    assert argv[3:] == [
        "/cache/np",
        "--kubeconfig=/state/realnodes/real-node-1/kubeconfig",
        "--hostname-override=real-node-1",
        "--nfqueue-id=100",
        "--nftables-table=kube-network-policies",
        f"--pod-cidr={node.pod_cidr}",
        "--v=1",
    ]


def test_the_rules_are_checked_or_removed_in_a_netns_or_on_the_host() -> None:
    assert policies.rules_argv(Path("/p"), "pcx0n0", remove=True) == [
        "nsenter", "--net=/run/netns/pcx0n0", "--",
        "/p", "--remove-rules", "--nftables-table=kube-network-policies", "--nfqueue-id=100",
    ]  # fmt: skip
    assert policies.rules_argv(Path("/p"), None, remove=False) == [
        "/p", "--check-rules", "--nftables-table=kube-network-policies", "--nfqueue-id=100",
    ]  # fmt: skip


def test_what_the_check_can_answer() -> None:
    assert {
        "present bound",
        "present unbound",
        "absent bound",
        "absent unbound",
    } == policies.ANSWERS


def test_the_enforcer_is_named_with_its_version() -> None:
    assert policies.enforcer() == "sigs.k8s.io/kube-network-policies v0.8.0"


def test_no_binary_means_nothing_to_remove(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_CACHE_DIR", str(tmp_path))  # an empty cache: never built
    assert policies.remove_rules(plan(2).nodes) == []
    assert policies.rules_left(plan(2).nodes) == []
