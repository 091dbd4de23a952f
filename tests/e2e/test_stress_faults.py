"""Stress faults against a real API server: the stress-ng they start, the limits they honour, the
pods they pin to nodes, and what revert leaves.

On the local cluster's kwok nodes nothing runs, so the checks are on the API side: the ephemeral
container (its stress-ng arguments, user, target), the undo container, the per-node pods, and that
the stressed pod is never restarted. The scripts run for real in tests/unit/test_network_scripts.py.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos, ChaosSession
from pytest_chaos.errors import ChaosConfigError, InjectError, TargetingError
from pytest_chaos.faults import ephemeral as ephemeral_module
from pytest_chaos.faults import scripts, undo
from pytest_chaos.faults.ephemeral import API_ONLY
from pytest_chaos.faults.undo import FAULT_LABEL
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.steady import Steady
from tests.e2e.manifests import ephemeral, records_in
from tests.e2e.realnode_manifests import identity
from tests.e2e.test_network_faults import PlayedKubelet, exited

MiB = 2**20
RESTRICTED = {
    "pod": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "container": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}


def web_deployment(*, limits: dict[str, str] | None, restricted: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": "example/web:1.0"}
    if limits:
        container["resources"] = {"limits": limits}
    pod_spec: dict[str, Any] = {"containers": [container]}
    if restricted:
        pod_spec["securityContext"] = RESTRICTED["pod"]
        container["securityContext"] = RESTRICTED["container"]
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


@pytest.fixture
def web(kube: Kube, steady: Steady, chaos_namespace: str) -> str:
    """One web pod whose container may use 500m CPU and 128Mi memory."""
    kube.apps.create_namespaced_deployment(
        chaos_namespace, web_deployment(limits={"cpu": "500m", "memory": "128Mi"})
    )
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)
    return chaos_namespace


def web_pod(kube: Kube, namespace: str) -> dict[str, Any]:
    (pod,) = kube.core.list_namespaced_pod(namespace, label_selector="app=web").items
    data: dict[str, Any] = kube.serialize(pod)
    return data


def test_stress_in_a_pod_honours_the_containers_cpu_limit(
    kube: Kube, chaos: Chaos, web: str
) -> None:
    before = web_pod(kube, web)

    fault = chaos.stress.pods("app=web", namespace=web, cpu=2, memory="64Mi", duration="5m")

    assert fault.details["cpu_millicores"] == 500
    assert fault.details["memory_bytes"] == 64 * MiB
    assert fault.details["limited_by"] == {
        "cpu": f"the CPU limit of container web of pod {fault.targets[0]} (500m; 2000m asked)"
    }
    assert fault.details["oom_expected"] is False
    assert fault.details["effect"] == API_ONLY
    tag = fault.records[0].payload["tag"]
    container = ephemeral(web_pod(kube, web))[f"chaos-stress-{tag}"]
    assert container["targetContainerName"] == "web"  # shares its PID namespace
    commands = [
        [
            "stress-ng", "--cpu", "1", "--cpu-load", "50",
            "--timeout", "300s", "--temp-path", "/tmp", "--metrics-brief",
        ],
        ["pytest-chaos-hold", str(64 * MiB), "300"],
    ]  # fmt: skip
    assert container["command"] == scripts.stress_command(tag, commands)
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }

    fault.revert()

    after = web_pod(kube, web)
    stop = ephemeral(after)[f"chaos-undo-{tag}"]
    assert stop["command"] == ["sh", "-c", scripts.stress_undo_script(tag)]
    assert stop["targetContainerName"] == "web"
    assert identity(after) == identity(before)
    assert records_in(kube, web) == []


def test_memory_up_to_the_limit_says_an_oom_is_expected(kube: Kube, chaos: Chaos, web: str) -> None:
    with chaos.stress.pods("app=web", namespace=web, memory="limit") as fault:
        assert fault.details["memory_bytes"] == 128 * MiB
        assert fault.details["oom_expected"] is True
        assert fault.details["cpu_millicores"] == 0


def test_stress_runs_unprivileged_so_a_restricted_namespace_admits_it(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    label: Any = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    kube.core.patch_namespace(chaos_namespace, label)
    kube.apps.create_namespaced_deployment(
        chaos_namespace, web_deployment(limits=None, restricted=True)
    )
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)

    with chaos.stress.pods("app=web", namespace=chaos_namespace, cpu="250m") as fault:
        assert fault.details["cpu_millicores"] == 250
    names = list(ephemeral(web_pod(kube, chaos_namespace)))
    assert sorted(n.split("-")[1] for n in names) == ["stress", "undo"]


def test_cpu_limit_without_a_limit_is_refused_before_anything(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    kube.apps.create_namespaced_deployment(chaos_namespace, web_deployment(limits=None))
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)
    with pytest.raises(ChaosConfigError, match=r"cpu='limit': container web of pod .* no CPU"):
        chaos.stress.pods("app=web", namespace=chaos_namespace, cpu="limit")
    with pytest.raises(ChaosConfigError, match="say how much stress"):
        chaos.stress.pods("app=web", namespace=chaos_namespace)
    with pytest.raises(ChaosConfigError, match="memory='lots'"):
        chaos.stress.pods("app=web", namespace=chaos_namespace, memory="lots")
    with pytest.raises(TargetingError, match="no pods match selector 'app=wbe'"):
        chaos.stress.pods("app=wbe", namespace=chaos_namespace, cpu=1)
    with pytest.raises(ChaosConfigError, match=r"container='sidecar'.*it has: web"):
        chaos.stress.pods("app=web", namespace=chaos_namespace, cpu=1, container="sidecar")
    assert ephemeral(web_pod(kube, chaos_namespace)) == {}
    assert records_in(kube, chaos_namespace) == []


def with_sidecar(deployment: dict[str, Any], limits: dict[str, str] | None) -> dict[str, Any]:
    sidecar: dict[str, Any] = {"name": "proxy", "image": "example/proxy:1.0"}
    if limits:
        sidecar["resources"] = {"limits": limits}
    deployment["spec"]["template"]["spec"]["containers"].append(sidecar)
    return deployment


def test_memory_limit_means_the_pods_budget_the_containers_limits_together(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    """The stress container counts against the pod's memory cgroup: every container's limit."""
    kube.apps.create_namespaced_deployment(
        chaos_namespace,
        with_sidecar(web_deployment(limits={"memory": "128Mi"}), limits={"memory": "64Mi"}),
    )
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)

    with chaos.stress.pods("app=web", namespace=chaos_namespace, memory="limit") as fault:
        assert fault.details["memory_bytes"] == 192 * MiB
        assert fault.details["oom_expected"] is True
        (note,) = fault.details["notes"]
        assert note.startswith(
            f"holding 192Mi reaches the memory limit of pod {fault.targets[0]} (its containers' "
            "limits together) (192Mi)"
        )
    with chaos.stress.pods("app=web", namespace=chaos_namespace, memory="128Mi") as fault:
        assert fault.details["oom_expected"] is False  # the web container's limit, not the pod's


def test_memory_limit_of_a_pod_with_an_unlimited_container_is_refused_before_anything(
    kube: Kube, chaos: Chaos, steady: Steady, chaos_namespace: str
) -> None:
    kube.apps.create_namespaced_deployment(
        chaos_namespace, with_sidecar(web_deployment(limits={"memory": "128Mi"}), limits=None)
    )
    steady.deployment("web", namespace=chaos_namespace).assert_available(within=30)

    with pytest.raises(ChaosConfigError, match=r"container\(s\) proxy have none"):
        chaos.stress.pods("app=web", namespace=chaos_namespace, memory="limit")
    assert ephemeral(web_pod(kube, chaos_namespace)) == {}
    assert records_in(kube, chaos_namespace) == []


def stress_pods(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    found = kube.core.list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/managed-by=pytest-chaos"
    ).items
    return {str(p.metadata.name): kube.serialize(p) for p in found}


def test_stress_nodes_pins_one_pod_per_chosen_node_and_revert_deletes_them(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    fault = chaos.stress.nodes(
        selector="type=kwok", cpu="2", memory="1Gi", count=2, namespace=chaos_namespace
    )

    pods = stress_pods(kube, chaos_namespace)
    assert len(pods) == 2
    nodes = {p["spec"]["nodeName"] for p in pods.values()}
    assert nodes == set(fault.details["nodes"])
    assert len(nodes) == 2  # distinct nodes
    for name, pod in pods.items():
        assert name.startswith("pytest-chaos-stress-")
        assert pod["spec"]["tolerations"] == [{"operator": "Exists"}]
        assert pod["spec"]["activeDeadlineSeconds"] == 600
        command = pod["spec"]["containers"][0]["command"]
        assert command[:2] == ["sh", "-c"]
        assert command[-1] == f"pytest-chaos-stress-{pod['metadata']['labels'][FAULT_LABEL]}"
        assert "stress-ng --cpu 2 --cpu-load 100 --timeout 600s" in command[2]
        assert f"pytest-chaos-hold {2**30} 600 &" in command[2]
        assert pod["status"]["phase"] == "Running"
    assert fault.details["cpu_millicores"] == 2000
    assert fault.details["effect"] == API_ONLY
    assert len(records_in(kube, chaos_namespace)) == 2

    fault.revert()

    assert stress_pods(kube, chaos_namespace) == {}
    assert records_in(kube, chaos_namespace) == []
    assert undo.revert(kube, fault.records[0]) == "already reverted"


def test_stress_nodes_caps_cpu_at_what_the_node_can_give(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    with chaos.stress.nodes(name="kwok-node-0", cpu=64, namespace=chaos_namespace) as fault:
        node = kube.core.read_node("kwok-node-0")
        cpu = str(node.status.allocatable["cpu"])
        limit = int(cpu[:-1]) if cpu.endswith("m") else int(cpu) * 1000
        assert fault.details["cpu_millicores"] == limit
        assert "node kwok-node-0 (allocatable)" in fault.details["limited_by"]["cpu"]


def test_stress_nodes_that_do_not_exist_says_which_do(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    with pytest.raises(TargetingError, match=r"(?s)no nodes match selector 'zone=z'.*kwok-node-0"):
        chaos.stress.nodes(selector="zone=z", cpu=1, namespace=chaos_namespace)
    with pytest.raises(TargetingError, match="count=9 needs 9 distinct nodes but only"):
        chaos.stress.nodes(selector="type=kwok", cpu=1, count=9, namespace=chaos_namespace)
    with pytest.raises(ChaosConfigError, match="duration='0s'"):
        chaos.stress.nodes(selector="type=kwok", cpu=1, duration="0s", namespace=chaos_namespace)
    assert stress_pods(kube, chaos_namespace) == {}


def test_a_dry_run_plans_the_stress_and_touches_nothing(
    kube: Kube, chaos_session: ChaosSession, web: str
) -> None:
    settings = replace(chaos_session.settings, dry_run=True)
    session = ChaosSession(kube, settings, run_id="dry-run", seed=1)
    session.safety.allow_throwaway(web)
    dry = Chaos(session, "test_dry_stress", Timeline("test_dry_stress"))
    with pytest.raises(pytest.skip.Exception) as skipped:
        dry.stress.pods("app=web", namespace=web, cpu=2)
    assert str(skipped.value).startswith(
        f"chaos dry run: would stress 1 of 1 pod(s) matching 'app=web' in {web} with 500m CPU "
        "for 10m: "
    )
    with pytest.raises(pytest.skip.Exception, match="would stress 1 of 3 node"):
        dry.stress.nodes(selector="type=kwok", memory="1Gi", namespace=web)
    assert ephemeral(web_pod(kube, web)) == {}
    assert stress_pods(kube, web) == {}
    assert records_in(kube, web) == []


def test_a_stress_pod_deleted_by_someone_else_is_already_reverted(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    fault = chaos.stress.nodes(name="kwok-node-2", cpu="100m", namespace=chaos_namespace)
    (name,) = stress_pods(kube, chaos_namespace)
    kube.core.delete_namespaced_pod(name, chaos_namespace, grace_period_seconds=0)
    kube.wait(
        functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
        lambda pods: not pods,
        within=30,
        what="the stress pod to be gone",
        field_selector=f"metadata.name={name}",
    )
    fault.revert()
    assert records_in(kube, chaos_namespace) == []


def test_on_a_real_node_stress_must_run_and_its_undo_must_stop_it(
    kube: Kube, chaos: Chaos, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ephemeral_module, "node_is_fake", lambda kube, name: False)

    def outcome(name: str, names: list[str]) -> dict[str, Any]:
        if name.startswith("chaos-undo-"):
            return exited(0, "stress stopped")
        if any(n.startswith("chaos-undo-") for n in names):
            return exited(143, "stress ended (exit 143)")
        return {"running": {"startedAt": "2026-01-01T00:00:00Z"}}

    with PlayedKubelet(kube, web, outcome):
        fault = chaos.stress.pods("app=web", namespace=web, cpu="250m")
        assert fault.details["effect"] == "stress-ng running"
        assert list(fault.details["states"].values()) == ["running"]
        assert undo.revert(kube, fault.records[0]) == "reverted"
        fault.revert()
    assert records_in(kube, web) == []


def test_on_a_real_node_memory_past_the_limit_may_end_the_stress_at_once_with_an_oom_kill(
    kube: Kube, chaos: Chaos, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OOM kill is the fault's effect, not a failure to inject; revert has nothing to do."""
    monkeypatch.setattr(ephemeral_module, "node_is_fake", lambda kube, name: False)

    def outcome(name: str, names: list[str]) -> dict[str, Any]:
        assert not name.startswith("chaos-undo-"), "no undo container: nothing is left to stop"
        ended = exited(137, "pytest-chaos: stress ...")
        ended["terminated"]["reason"] = "OOMKilled"
        return ended

    with PlayedKubelet(kube, web, outcome):
        fault = chaos.stress.pods("app=web", namespace=web, memory="limit")
        assert fault.details["oom_expected"] is True
        assert fault.details["ended_by_oom"] == [fault.targets[0]]
        outcome_of_revert = undo.revert(kube, fault.records[0])
        assert outcome_of_revert.startswith(
            "already ended by itself: terminated (exit 137) OOMKilled"
        )
        fault.revert()
    assert [n for n in ephemeral(web_pod(kube, web)) if n.startswith("chaos-undo-")] == []
    assert records_in(kube, web) == []


def test_on_a_real_node_stress_that_dies_at_once_is_an_inject_error(
    kube: Kube, chaos: Chaos, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ephemeral_module, "node_is_fake", lambda kube, name: False)

    def outcome(name: str, names: list[str]) -> dict[str, Any]:
        if name.startswith("chaos-undo-"):
            return exited(0, "nothing running")
        return exited(127, "sh: 1: stress-ng: not found")

    with (
        PlayedKubelet(kube, web, outcome),
        pytest.raises(InjectError, match="did not keep running: terminated \\(exit 127\\)"),
    ):
        chaos.stress.pods("app=web", namespace=web, cpu="250m")
    assert records_in(kube, web) == []
