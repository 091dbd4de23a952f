"""The few words a diagnosis uses for a pod that is not ready."""

from __future__ import annotations

from pytest_chaos.steady.diagnosis import pod_problem


def test_a_restarted_container_says_how_its_last_run_ended() -> None:
    pod = {
        "metadata": {"name": "web-1"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "web",
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                }
            ],
        },
    }
    assert pod_problem(pod) == "Running (CrashLoopBackOff, 2 restart(s), last ended: OOMKilled)"


def test_a_running_pod_that_is_not_ready_says_so() -> None:
    pod = {"status": {"phase": "Running", "containerStatuses": [{"name": "web", "state": {}}]}}
    assert pod_problem(pod) == "Running (not Ready)"
