"""Reading container restarts from pods (pure): what steady.pods(...).assert_restarted sees."""

from __future__ import annotations

from typing import Any

from pytest_chaos.steady.restarts import Restart, describe, matching, new_restarts, restarts_of


def pod(name: str, *statuses: dict[str, Any], uid: str = "u1") -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": uid}, "status": {"containerStatuses": list(statuses)}}


def oom_killed(name: str, count: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "restartCount": count,
        "state": {"running": {"startedAt": "2026-11-21T18:07:16Z"}},
        "lastState": {
            "terminated": {
                "exitCode": 137,
                "reason": "OOMKilled",
                "finishedAt": "2026-11-21T18:07:15Z",
            }
        },
    }


def fresh(name: str) -> dict[str, Any]:
    return {"name": name, "restartCount": 0, "state": {"running": {}}, "lastState": {}}


def test_an_oom_killed_container_is_a_restart_that_says_so() -> None:
    (restart,) = restarts_of([pod("web-1", fresh("sidecar"), oom_killed("app"))])
    assert restart == Restart(
        pod="web-1",
        pod_uid="u1",
        container="app",
        count=1,
        reason="OOMKilled",
        exit_code=137,
        finished_at="2026-11-21T18:07:15Z",
    )
    assert str(restart) == (
        "web-1/app restarted 1 time(s), last run ended OOMKilled (exit 137) at 2026-11-21T18:07:15Z"
    )


def test_pods_without_restarts_have_none() -> None:
    assert restarts_of([pod("web-1", fresh("app")), {"metadata": {"name": "pending"}}]) == []
    assert describe([]) == "no container restarted"


def test_init_containers_count_too() -> None:
    web = pod("web-1", fresh("app"))
    web["status"]["initContainerStatuses"] = [
        {"name": "migrate", "restartCount": 2, "lastState": {"terminated": {"exitCode": 1}}}
    ]
    (restart,) = restarts_of([web])
    assert (restart.container, restart.count, restart.reason, restart.exit_code) == (
        "migrate",
        2,
        "",
        1,
    )
    assert str(restart) == "web-1/migrate restarted 2 time(s), last run exited with 1"


def test_only_restarts_after_the_baseline_count() -> None:
    baseline = restarts_of([pod("web-1", oom_killed("app", 1))])
    assert new_restarts(restarts_of([pod("web-1", oom_killed("app", 1))]), baseline) == []
    (again,) = new_restarts(restarts_of([pod("web-1", oom_killed("app", 2))]), baseline)
    assert again.count == 2
    # A replaced pod (another uid) starts its own count: its restarts are new.
    replaced = restarts_of([pod("web-1", oom_killed("app", 1), uid="u2")])
    assert new_restarts(replaced, baseline) == replaced
    assert new_restarts(replaced, None) == replaced


def test_restarts_can_be_filtered_by_how_the_last_run_ended() -> None:
    crashed = oom_killed("worker")
    crashed["lastState"]["terminated"].update(reason="Error", exitCode=2)
    found = restarts_of([pod("web-1", oom_killed("app"), crashed)])
    assert [r.container for r in matching(found, "OOMKilled")] == ["app"]
    assert [r.container for r in matching(found, "Error")] == ["worker"]
    assert len(matching(found, None)) == 2


def test_client_models_read_like_dicts() -> None:
    from datetime import UTC, datetime

    from kubernetes.client import (
        V1ContainerState,
        V1ContainerStateTerminated,
        V1ContainerStatus,
        V1ObjectMeta,
        V1Pod,
        V1PodStatus,
    )

    model = V1Pod(
        metadata=V1ObjectMeta(name="web-1", uid="u1"),
        status=V1PodStatus(
            container_statuses=[
                V1ContainerStatus(
                    name="app",
                    image="demo",
                    image_id="",
                    ready=True,
                    restart_count=3,
                    last_state=V1ContainerState(
                        terminated=V1ContainerStateTerminated(
                            exit_code=137,
                            reason="OOMKilled",
                            finished_at=datetime(2026, 11, 21, 18, 7, 15, tzinfo=UTC),
                        )
                    ),
                )
            ]
        ),
    )
    (restart,) = restarts_of([model])
    assert (restart.count, restart.reason, restart.finished_at) == (
        3,
        "OOMKilled",
        "2026-11-21T18:07:15Z",
    )


def test_a_restart_counted_before_its_end_is_reported_says_so() -> None:
    """The kubelet may bump restartCount a moment before it fills lastState.terminated."""
    counted_only = {"name": "app", "restartCount": 1, "state": {"waiting": {}}, "lastState": {}}
    (early,) = restarts_of([pod("web-1", counted_only)])
    (complete,) = restarts_of([pod("web-1", oom_killed("app"))])
    assert (early.reported, complete.reported) == (False, True)
    assert str(early) == "web-1/app restarted 1 time(s)"
