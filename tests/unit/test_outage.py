"""A revert retries while the API server refuses it, up to --chaos-revert-timeout (pure logic)."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import NewConnectionError

from pytest_chaos.errors import DriftError, RevertError
from pytest_chaos.faults.outage import refused_by_api, through_outage


def refused_connection() -> Exception:
    return NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")


def leader_changed() -> ApiException:
    return ApiException(status=500, reason="etcdserver: leader changed")


def test_refusals_and_answers_are_told_apart() -> None:
    assert refused_by_api(refused_connection())
    assert refused_by_api(leader_changed())
    assert refused_by_api(ApiException(status=503))
    assert refused_by_api(TimeoutError())
    assert not refused_by_api(ApiException(status=404))
    assert not refused_by_api(ApiException(status=409))
    assert not refused_by_api(DriftError("someone else scaled it"))
    wrapped = RevertError("revert failed")
    wrapped.__cause__ = leader_changed()
    assert refused_by_api(wrapped)  # an undo that wrapped a refusal


def test_a_refused_revert_is_retried_until_the_api_answers() -> None:
    answers: list[Exception | str] = [refused_connection(), leader_changed(), "reverted"]
    said: list[str] = []
    pauses: list[float] = []

    def attempt() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    outcome = through_outage(
        attempt,
        timeout=60,
        what="deployments.scale: Deployment shop/web",
        say=said.append,
        pause=pauses.append,
    )

    assert outcome == "reverted"
    assert pauses == [0.1, 0.2]  # backoff
    assert len(said) == 2
    assert said[0].startswith("deployments.scale: Deployment shop/web: the API server refuses (")
    assert said[1].startswith(
        "deployments.scale: Deployment shop/web: the API server answers again"
    )


def test_an_answer_that_is_not_a_refusal_is_raised_at_once() -> None:
    pauses: list[float] = []

    def attempt() -> str:
        raise DriftError("Deployment shop/web was scaled to 7 by someone else")

    with pytest.raises(DriftError):
        through_outage(attempt, timeout=60, what="x", say=lambda _: None, pause=pauses.append)
    assert pauses == []


def test_past_the_timeout_the_record_is_left_for_cleanup() -> None:
    def attempt() -> str:
        raise refused_connection()

    with pytest.raises(RevertError) as info:
        through_outage(attempt, timeout=0.05, what="nodes.cordon: Node n1", say=lambda _: None)
    message = str(info.value)
    assert message.startswith("nodes.cordon: Node n1: the API server refused the revert for ")
    assert "(--chaos-revert-timeout=0.05s; last: " in message
    assert message.endswith("run `pytest-chaos cleanup` once the API is back")
    assert isinstance(info.value.__cause__, NewConnectionError)
