"""How much stress is really applied, and the stress-ng command and pods that apply it (pure)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError, TargetingError
from pytest_chaos.faults import stress

MiB = 2**20
WHERE = "container web of pod shop/web-1"


def plan(cpu: object = None, memory: object = None, **limits: int | None) -> stress.StressPlan:
    checked_cpu, checked_memory = stress.check_amounts(cpu, memory)
    return stress.plan_stress(
        checked_cpu,
        checked_memory,
        cpu_limit=limits.get("cpu_limit"),
        memory_limit=limits.get("memory_limit"),
        where=WHERE,
    )


def test_two_cpus_asked_of_a_500m_container_burn_500m_and_say_why() -> None:
    applied = plan(cpu=2, cpu_limit=500)
    assert (applied.cpu_millicores, applied.cpu_workers, applied.cpu_load) == (500, 1, 50)
    assert applied.details()["limited_by"] == {
        "cpu": f"the CPU limit of {WHERE} (500m; 2000m asked)"
    }


@pytest.mark.parametrize(
    ("cpu", "workers", "load", "total"),
    [
        ("500m", 1, 50, 500),
        (1, 1, 100, 1000),
        ("1500m", 2, 75, 1500),
        ("2", 2, 100, 2000),
        ("333m", 1, 33, 330),
        (0.25, 1, 25, 250),
    ],
)
def test_cpu_is_spread_over_whole_workers_at_a_load(
    cpu: object, workers: int, load: int, total: int
) -> None:
    applied = plan(cpu=cpu)
    assert (applied.cpu_workers, applied.cpu_load, applied.cpu_millicores) == (
        workers,
        load,
        total,
    )
    assert applied.limited_by == {}


def test_cpu_limit_means_the_containers_limit() -> None:
    assert plan(cpu="limit", cpu_limit=750).cpu_millicores == 750
    with pytest.raises(ChaosConfigError, match=f"cpu='limit': {WHERE} has no CPU limit"):
        plan(cpu="limit")


def test_memory_is_held_as_asked_and_reaching_the_limit_means_oom() -> None:
    below = plan(memory="64Mi", memory_limit=128 * MiB)
    assert (below.memory_bytes, below.oom_expected, below.cpu_workers) == (64 * MiB, False, 0)
    above = plan(memory="256Mi", memory_limit=128 * MiB)
    assert above.memory_bytes == 256 * MiB
    assert above.oom_expected
    assert above.notes == (
        f"holding 256Mi reaches the memory limit of {WHERE} (128Mi): expect an OOM kill "
        "(usually of the app, which then restarts with reason OOMKilled)",
    )
    assert plan(memory="limit", memory_limit=128 * MiB).oom_expected
    with pytest.raises(ChaosConfigError, match=r"memory='limit'.*no memory limit"):
        plan(memory="limit")


@pytest.mark.parametrize(
    ("cpu", "memory", "message"),
    [
        (None, None, "say how much stress: cpu="),
        ("lots", None, "cpu='lots' must be a CPU amount"),
        ("1Gi", None, "cpu='1Gi' must be a CPU amount"),
        (None, "256m", "'m' is milli; did you mean 'Mi'"),
        (None, -5, "memory=-5 must be a memory amount"),
        ("limits", None, "cpu='limits'"),
    ],
)
def test_bad_amounts_are_refused(cpu: object, memory: object, message: str) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        stress.check_amounts(cpu, memory)


def test_cpu_goes_to_stress_ng_and_memory_to_the_holder() -> None:
    applied = plan(cpu="1500m", memory="256Mi")
    assert applied.commands(600) == [
        [
            "stress-ng", "--cpu", "2", "--cpu-load", "75",
            "--timeout", "600s", "--temp-path", "/tmp", "--metrics-brief",
        ],
        ["pytest-chaos-hold", str(256 * MiB), "600"],
    ]  # fmt: skip
    assert plan(memory="1Mi").commands(5) == [["pytest-chaos-hold", str(MiB), "5"]]
    assert plan(cpu="250m").commands(5)[0][:5] == ["stress-ng", "--cpu", "1", "--cpu-load", "25"]


def test_durations_are_whole_seconds_of_at_least_one() -> None:
    assert stress.check_timeout("10m") == 600
    assert stress.check_timeout(1.2) == 2
    with pytest.raises(ChaosConfigError, match="duration='0s' must be at least 1s"):
        stress.check_timeout("0s")
    with pytest.raises(ChaosConfigError, match="duration='soon'"):
        stress.check_timeout("soon")


def test_limits_are_read_from_the_container_and_the_node() -> None:
    container = {"resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}
    assert stress.container_limits(container) == (500, 128 * MiB)
    assert stress.container_limits({"resources": {"requests": {"cpu": "1"}}}) == (None, None)
    node = {"status": {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"}}}
    assert stress.node_capacity(node) == (4000, 16 * 2**30)


def node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


NODES = [node("a", zone="1"), node("b", zone="1"), node("c", zone="2")]


def test_nodes_are_chosen_distinct_and_reproducibly() -> None:
    first, matching = stress.choose_nodes(
        NODES, names=None, selector="zone=1", count=2, rng=random.Random(7)
    )
    assert matching == 2
    assert [n["metadata"]["name"] for n in first] == ["a", "b"]
    picks = {
        stress.choose_nodes(NODES, names=None, selector=None, count=1, rng=random.Random(seed))[0][
            0
        ]["metadata"]["name"]
        for seed in range(20)
    }
    assert picks == {"a", "b", "c"}
    again = stress.choose_nodes(NODES, names=["c"], selector=None, count=1, rng=random.Random(1))
    assert [n["metadata"]["name"] for n in again[0]] == ["c"]


def test_choosing_nodes_that_do_not_exist_says_what_does() -> None:
    with pytest.raises(TargetingError, match=r"(?s)no nodes match selector 'zone=9'.*a \(zone=1\)"):
        stress.choose_nodes(NODES, names=None, selector="zone=9", count=1, rng=random.Random(1))
    with pytest.raises(TargetingError, match="count=3 needs 3 distinct nodes but only 2 match"):
        stress.choose_nodes(NODES, names=None, selector="zone=1", count=3, rng=random.Random(1))
    with pytest.raises(ChaosConfigError, match="name=\\[\\] must be a node name"):
        stress.node_names([])


def test_the_node_stress_pod_is_pinned_tolerant_unprivileged_and_bounded() -> None:
    pod = stress.node_stress_pod(
        "pytest-chaos-stress-abc", "abc", node="a", image="toolbox:1",
        args=["stress-ng", "--cpu", "1"], timeout_seconds=60,
    )  # fmt: skip
    spec = pod["spec"]
    assert spec["nodeName"] == "a"
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 60
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["command"] == ["stress-ng", "--cpu", "1"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "resources" not in container  # BestEffort: it takes what is idle
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "pytest-chaos",
        "chaos.pytest.dev/fault": "abc",
    }


def test_marker_checks_refuse_what_the_verbs_refuse() -> None:
    stress.check_stress_pods("app=web", namespace="shop", cpu="limit")
    stress.check_stress_nodes(selector="zone=1", memory="1Gi", count=2)
    with pytest.raises(ChaosConfigError, match="say how much stress"):
        stress.check_stress_pods("app=web", namespace="shop")
    with pytest.raises(ChaosConfigError, match="count=0"):
        stress.check_stress_nodes(selector="zone=1", cpu=1, count=0)
    with pytest.raises(ChaosConfigError, match="selector="):
        stress.check_stress_nodes(selector="zone==", cpu=1)


def pod_with(*limits: str | None, init: tuple[str | None, ...] = ()) -> dict[str, Any]:
    def container(name: str, limit: str | None) -> dict[str, Any]:
        return {"name": name, "resources": {"limits": {"memory": limit}} if limit else {}}

    return {
        "metadata": {"name": "web-1", "namespace": "shop"},
        "spec": {
            "containers": [container(f"c{i}", limit) for i, limit in enumerate(limits)],
            "initContainers": [container(f"i{i}", limit) for i, limit in enumerate(init)],
        },
    }


def test_a_pods_memory_budget_is_the_sum_of_its_containers_limits() -> None:
    assert stress.pod_memory_budget(pod_with("64Mi")) == (64 * MiB, [])
    assert stress.pod_memory_budget(pod_with("64Mi", "1Gi")) == (64 * MiB + 2**30, [])
    # An init container that may use more than the others together sets the budget.
    assert stress.pod_memory_budget(pod_with("64Mi", init=("256Mi",))) == (256 * MiB, [])


def test_a_container_without_a_memory_limit_leaves_the_pod_unbounded() -> None:
    assert stress.pod_memory_budget(pod_with("64Mi", None)) == (None, ["c1"])
