from __future__ import annotations

from pytest_chaos.cluster.bootstrap import node_manifest


def test_fake_nodes_spread_over_three_zones_and_are_managed_by_kwok() -> None:
    nodes = [node_manifest(i, kubelet_version="v1.32.5") for i in range(4)]
    zones = [n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes]
    assert zones == ["a", "b", "c", "a"]
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert nodes[0]["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.5"
    assert nodes[0]["status"]["capacity"]["memory"] == "16Gi"
