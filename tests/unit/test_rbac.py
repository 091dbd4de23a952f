from __future__ import annotations

from pathlib import Path

from pytest_chaos import rbac


def test_the_faults_a_suite_uses_are_found_in_calls_and_markers(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text(
        "def test_x(chaos, chaos_namespace):\n"
        "    chaos.pods.kill('app=web', namespace=chaos_namespace)\n"
        "    with module_chaos.statefulsets.scale('db', namespace='x', replicas=1):\n"
        "        pass\n"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "test_b.py").write_text(
        "import pytest\n\n@pytest.mark.chaos_deployment_delete('web', namespace='shop')\n"
        "def test_y():\n    pass\n"
    )
    faults, throwaway = rbac.faults_used([tmp_path])
    assert faults == {"pods.kill", "statefulsets.scale", "deployments.delete"}
    assert throwaway


def test_rules_grant_each_fault_only_what_it_needs() -> None:
    only_kill = {
        (r["apiGroups"][0], r["resources"][0]): r["verbs"]
        for r in rbac.rules({"pods.kill"}, throwaway=False)
    }
    assert only_kill[("", "pods")] == ["delete", "get", "list", "watch"]
    assert only_kill[("apps", "deployments")] == ["get", "list", "watch"]  # read only
    assert only_kill[("", "namespaces")] == ["get"]  # no throw-away namespaces: no create

    with_delete = {
        (r["apiGroups"][0], r["resources"][0]): r["verbs"]
        for r in rbac.rules({"deployments.delete"}, throwaway=True)
    }
    assert with_delete[("apps", "deployments")] == ["create", "delete", "get", "list", "watch"]
    assert with_delete[("", "namespaces")] == ["create", "delete", "get"]
    assert "delete" not in with_delete[("", "pods")]


def test_every_fault_family_is_found_and_granted(tmp_path: Path) -> None:
    (tmp_path / "test_c.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.chaos_istio_abort('web', namespace='shop')\n"
        "@pytest.mark.chaos_node_drain(selector='pool=a')\n"
        "def test_z(chaos):\n"
        "    chaos.network.cut('app=web', namespace='shop', to='broker')\n"
        "    chaos.stress.nodes(selector='pool=a', cpu=1)\n"
    )
    faults, _ = rbac.faults_used([tmp_path])
    assert faults == {"istio.abort", "nodes.drain", "network.cut", "stress.nodes"}
    granted = {
        (r["apiGroups"][0], r["resources"][0]): r["verbs"]
        for r in rbac.rules(faults, throwaway=False)
    }
    assert granted[("", "pods/eviction")] == ["create"]
    assert granted[("", "nodes")] == ["get", "list", "patch", "watch"]
    assert "patch" in granted[("networking.istio.io", "virtualservices")]
    assert granted[("", "pods/ephemeralcontainers")] == ["patch"]
    assert granted[("", "pods")] == ["create", "delete", "get", "list", "watch"]


def test_every_fault_marker_maps_to_a_fault_with_rules() -> None:
    from pytest_chaos.markers import FAULT_MARKERS

    for name, marker in FAULT_MARKERS.items():
        assert rbac.MARKERS[name] == f"{marker.family}.{marker.verb}"
        assert rbac.MARKERS[name] in rbac.FAULTS
