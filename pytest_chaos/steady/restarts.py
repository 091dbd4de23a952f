"""Container restarts as the kubelet reports them: how many, and how the last run ended.

Pure: reads pods (client models or API dicts alike). An OOM kill shows here as a restart whose
last run ended with reason ``OOMKilled`` (exit code 137); a crash as ``Error`` with the app's
exit code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_chaos.steady.diagnosis import read_field


@dataclass(frozen=True, slots=True)
class Restart:
    """A container that has restarted.

    Attributes:
        pod: the pod's name.
        pod_uid: the pod's uid (a replaced pod is another pod).
        container: the container's name.
        count: the kubelet's restart count.
        reason: how the last run ended (``OOMKilled``, ``Error``, ``Completed``...), or ``""``.
        exit_code: the last run's exit code, if known.
        finished_at: when the last run ended (RFC 3339), or ``""``.
    """

    pod: str
    pod_uid: str
    container: str
    count: int
    reason: str = ""
    exit_code: int | None = None
    finished_at: str = ""

    @property
    def reported(self) -> bool:
        """The kubelet has reported how the last run ended (it may count a restart first)."""
        return self.exit_code is not None or bool(self.reason)

    def __str__(self) -> str:
        text = f"{self.pod}/{self.container} restarted {self.count} time(s)"
        if self.reason:
            text += f", last run ended {self.reason}"
            if self.exit_code is not None:
                text += f" (exit {self.exit_code})"
        elif self.exit_code is not None:
            text += f", last run exited with {self.exit_code}"
        if self.finished_at:
            text += f" at {self.finished_at}"
        return text


def restarts_of(pods: Iterable[object]) -> list[Restart]:
    """Every restarted container of the pods (init and app containers), in pod order."""
    found = []
    for pod in pods:
        name = str(read_field(pod, "metadata", "name") or "")
        uid = str(read_field(pod, "metadata", "uid") or "")
        statuses = [
            *(read_field(pod, "status", "init_container_statuses") or []),
            *(read_field(pod, "status", "container_statuses") or []),
        ]
        for status in statuses:
            count = int(read_field(status, "restart_count") or 0)
            if not count:
                continue
            last = read_field(status, "last_state", "terminated")
            exit_code = read_field(last, "exit_code")
            finished = read_field(last, "finished_at")
            found.append(
                Restart(
                    pod=name,
                    pod_uid=uid,
                    container=str(read_field(status, "name") or ""),
                    count=count,
                    reason=str(read_field(last, "reason") or ""),
                    exit_code=None if exit_code is None else int(exit_code),
                    finished_at=_timestamp(finished),
                )
            )
    return found


def _timestamp(value: object) -> str:
    if value is None:
        return ""
    iso = getattr(value, "isoformat", None)
    return str(iso()).replace("+00:00", "Z") if callable(iso) else str(value)


def new_restarts(now: Sequence[Restart], since: Sequence[Restart] | None) -> list[Restart]:
    """The restarts in now that since did not have yet (same pod uid and container, more)."""
    if since is None:
        return list(now)
    before = {(r.pod_uid, r.container): r.count for r in since}
    return [r for r in now if r.count > before.get((r.pod_uid, r.container), 0)]


def matching(restarts: Sequence[Restart], reason: str | None) -> list[Restart]:
    """The restarts whose last run ended with reason (all of them when reason is None)."""
    return [r for r in restarts if reason is None or r.reason == reason]


def describe(restarts: Sequence[Restart]) -> str:
    """One restart per line, or ``no container restarted``."""
    return "\n".join(f"  {r}" for r in restarts) if restarts else "no container restarted"
