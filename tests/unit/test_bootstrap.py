from __future__ import annotations

from pytest_chaos.cluster.bootstrap import node_manifest


def test_fake_nodes_spread_over_three_zones_and_are_managed_by_kwok() -> None:
    nodes = [node_manifest(i, kubelet_version="v1.32.5") for i in range(4)]
    zones = [n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes]
    assert zones == ["a", "b", "c", "a"]
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert nodes[0]["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.5"
    assert nodes[0]["status"]["capacity"]["memory"] == "16Gi"


def test_a_pod_ready_delay_delays_only_the_pod_ready_stage() -> None:
    import yaml

    from pytest_chaos.cluster import binaries
    from pytest_chaos.cluster.local import _kwok_stages

    stages = binaries.binary(binaries.KWOK_POD_STAGES)
    assert _kwok_stages(stages, 0) == ""  # kwok's defaults
    documents = list(yaml.safe_load_all(_kwok_stages(stages, 1.5)))
    delays = {d["metadata"]["name"]: d["spec"].get("delay") for d in documents}
    assert delays == {
        "pod-ready": {"durationMilliseconds": 1500, "jitterDurationMilliseconds": 1500},
        "pod-complete": None,
        "pod-delete": None,
    }
