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
