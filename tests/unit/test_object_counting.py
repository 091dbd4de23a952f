"""Which pods count: terminating pods never; workloads judged from pods and observedGeneration."""

from __future__ import annotations

from typing import Any

from pytest_chaos.steady.counting import (
    judge_namespace,
    judge_pods,
    judge_workload,
    requirements,
    selected,
    selector_text,
)
from pytest_chaos.steady.diagnosis import pod_problem

NS = "shop"


def pod(name: str, state: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "labels": labels or {"app": "web"}}
    status: dict[str, Any] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    if state == "terminating":
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    elif state == "pending":
        status = {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        }
    return {"metadata": meta, "status": status}


def deployment(
    replicas: int = 2, *, available: int = 2, generation: int = 1, observed: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": NS, "generation": generation},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "updatedReplicas": replicas,
        },
    }


def test_a_lagging_status_cannot_make_a_drained_deployment_ready() -> None:
    # The moment after a drain: the status still says 2/2 available (it lags the eviction), the
    # pods say one is Terminating and its replacement Pending. The status alone would pass.
    stale = deployment(2, available=2)
    pods = [pod("web-a", "ready"), pod("web-b", "terminating"), pod("web-c", "pending")]
    count = judge_workload("Deployment", "web", stale, pods, available=True)
    assert not count.ok
    assert (count.ready, count.wanted) == (1, 2)
    assert count.seen == "1/2 ready: web-b Terminating, web-c Pending (Unschedulable)"
    whole = judge_namespace([("Deployment", stale)], pods, namespace=NS, available=True)
    assert not whole.ok
    assert whole.seen.startswith("1 of 1 not ok: Deployment web: 1/2 ready")


def test_a_spec_the_controller_has_not_seen_is_not_ready() -> None:
    count = judge_workload(
        "Deployment",
        "web",
        deployment(generation=2, observed=1),
        [
            pod("web-a", "ready"),
            pod("web-b", "ready"),
        ],
    )
    assert not count.ok
    assert "the controller has not seen the latest spec yet" in count.seen


def test_the_status_may_only_confirm_what_the_pods_show() -> None:
    pods = [pod("web-a", "ready"), pod("web-b", "ready")]
    assert judge_workload("Deployment", "web", deployment(available=2), pods, available=True).ok
    lagging = judge_workload("Deployment", "web", deployment(available=1), pods, available=True)
    assert not lagging.ok
    assert "(1 available per its status)" in lagging.seen
    assert judge_workload("Deployment", "web", deployment(available=1), pods).ok  # monitors


def test_a_pinned_wanted_count_shows_a_scale_down() -> None:
    count = judge_workload("Deployment", "web", deployment(1), [pod("web-a", "ready")], wanted=3)
    assert not count.ok
    assert count.seen == "1/3 ready (spec wants 1)"


def test_terminating_pods_are_neither_present_nor_ready_for_pods_probes() -> None:
    pods = [pod("web-a", "ready"), pod("web-b", "terminating")]
    every = judge_pods(pods, "app=web", min_ready=None)
    assert every.ok  # every present pod is ready; the leaving one is not counted
    assert (every.ready, every.wanted) == (1, 1)
    assert not judge_pods([pod("web-b", "terminating")], "app=web", min_ready=None).ok
    assert not judge_pods(pods, "app=web", min_ready=2).ok
    assert judge_pods(pods, "app=web", min_ready=1).ok
    assert judge_pods([], "app=web", min_ready=None).seen == "no pod matching 'app=web'"


def test_a_deleted_workload_fails_a_namespace_monitor() -> None:
    count = judge_namespace([], [], namespace=NS, wanted_by={"Deployment/web": 2})
    assert not count.ok
    assert count.seen == "1 of 1 not ok: Deployment web does not exist (deleted)"
    assert judge_namespace([], [], namespace=NS).ok  # an empty namespace has nothing unready


def test_selectors_from_match_labels_and_expressions() -> None:
    clauses = requirements(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector_text(clauses) == "app=web,tier in (front, edge),!canary"
    pods = [
        pod("a", "ready", {"app": "web", "tier": "front"}),
        pod("b", "ready", {"app": "web", "tier": "back"}),
        pod("c", "ready", {"app": "web", "tier": "edge", "canary": "1"}),
    ]
    assert [p["metadata"]["name"] for p in selected(pods, clauses, NS)] == ["a"]
    assert selected(pods, (), NS) == []  # an empty selector selects nothing
    assert selected(pods, clauses, "other") == []


def test_a_pending_pod_says_why() -> None:
    assert pod_problem(pod("web-c", "pending")) == "Pending (Unschedulable)"
