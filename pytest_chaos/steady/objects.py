"""Steady-state probes of Kubernetes objects, all waiting by watch.

Health is readiness-based: a pod counts only when it is Running, Ready and not terminating, so a
CrashLooping or Terminating pod is never mistaken for a healthy one. A failed check raises
NotSteadyError (an AssertionError) with a diagnosis: what was expected, what was last seen, the
pods that are not ready and why, and the namespace's recent events.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import NotSteadyError, WaitTimeout
from pytest_chaos.kube import Kube
from pytest_chaos.steady.diagnosis import describe_pods, node_ready, pod_ready, recent_events
from pytest_chaos.steady.restarts import Restart, describe, matching, new_restarts, restarts_of


def _within(value: Duration) -> float:
    return as_seconds(value, name="within")


class _Probe:
    def __init__(self, kube: Kube, namespace: str | None) -> None:
        self._kube = kube
        self.namespace = namespace

    def _fail(
        self, expected: str, last_seen: str, pod_selector: str | None = None, extra: str = ""
    ) -> NotSteadyError:
        lines = [f"expected: {expected}", f"last seen: {last_seen}"]
        if self.namespace is not None and pod_selector is not None:
            pods = self._kube.list_raw(
                self._kube.core.list_namespaced_pod,
                self.namespace,
                label_selector=pod_selector or None,
            )
            lines.append("pods:\n" + describe_pods(pods.get("items", [])))
        if extra:
            lines.append(extra)
        if self.namespace is not None:
            lines.append("recent events:\n" + recent_events(self._kube, self.namespace))
        return NotSteadyError("\n".join(lines))

    def _wait(
        self,
        list_fn: Callable[..., Any],
        condition: Callable[[list[Any]], bool],
        *,
        within: Duration,
        what: str,
        **kwargs: Any,
    ) -> tuple[bool, list[Any]]:
        """(condition held, the objects): on a timeout, the objects last seen by the watch."""
        try:
            objects = self._kube.wait(
                list_fn, condition, within=_within(within), what=what, **kwargs
            )
        except WaitTimeout as exc:
            return False, list(exc.last_seen)
        return True, objects


def _selector_string(match_labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((match_labels or {}).items()))


class WorkloadProbe(_Probe):
    """``steady.deployment(name, namespace=)`` / ``steady.statefulset(...)``."""

    def __init__(self, kube: Kube, kind: str, name: str, namespace: str) -> None:
        """Probe the workload of kind called name in namespace."""
        super().__init__(kube, namespace)
        self.kind = kind
        self.name = name
        self._list = functools.partial(kube.workload_api(kind, "list"), namespace)

    @property
    def ref(self) -> str:
        """``Deployment shop/backend``."""
        return f"{self.kind} {self.namespace}/{self.name}"

    @staticmethod
    def _state(obj: Any) -> tuple[int, int, int, int, bool]:
        wanted = obj.spec.replicas if obj.spec.replicas is not None else 1
        status = obj.status
        ready = status.ready_replicas or 0
        available = status.available_replicas or 0
        updated = status.updated_replicas or 0
        current = (status.observed_generation or 0) >= (obj.metadata.generation or 0)
        return wanted, ready, available, updated, current

    def _check(self, predicate: Callable[[Any], bool], expected: str, within: Duration) -> Any:
        held, objs = self._wait(
            self._list,
            lambda objs: any(predicate(o) for o in objs),
            within=within,
            what=f"{self.ref}: {expected}",
            field_selector=f"metadata.name={self.name}",
        )
        if held:
            return next(o for o in objs if predicate(o))
        if not objs:
            raise self._fail(expected, f"{self.ref} does not exist")
        obj = objs[0]
        wanted, ready, available, updated, current = self._state(obj)
        seen = f"{ready}/{wanted} ready, {available} available, {updated} updated" + (
            "" if current else " (the controller has not seen the latest spec yet)"
        )
        selector = _selector_string(obj.spec.selector.match_labels if obj.spec.selector else None)
        raise self._fail(f"{self.ref} {expected} within {within}", seen, selector)

    def assert_available(self, *, within: Duration = 0) -> None:
        """Every wanted replica is available (Ready for minReadySeconds)."""

        def available(obj: Any) -> bool:
            wanted, _ready, avail, _updated, current = self._state(obj)
            return current and avail >= wanted

        self._check(available, "all replicas available", within)

    def assert_ready(self, *, within: Duration = 0) -> None:
        """The rollout is complete: every replica updated, ready and available."""

        def ready(obj: Any) -> bool:
            wanted, rdy, avail, updated, current = self._state(obj)
            total = obj.status.replicas or 0
            return (
                current
                and rdy == wanted
                and avail == wanted
                and updated == wanted
                and total == wanted
            )

        self._check(ready, "all replicas updated and ready", within)

    def assert_count(self, replicas: int, *, within: Duration = 0) -> None:
        """Exactly replicas are ready."""
        self._check(
            lambda o: (o.status.ready_replicas or 0) == replicas,
            f"exactly {replicas} ready replica(s)",
            within,
        )


class PodsProbe(_Probe):
    """``steady.pods(selector, namespace=)``: pods by label selector, counted when ready."""

    def __init__(self, kube: Kube, selector: str | None, namespace: str) -> None:
        """Probe the pods matching selector in namespace."""
        super().__init__(kube, namespace)
        self.selector = selector
        self._list = functools.partial(kube.core.list_namespaced_pod, namespace)

    def _check(
        self, condition: Callable[[list[Any]], bool], expected: str, within: Duration
    ) -> list[Any]:
        held, pods = self._wait(
            self._list,
            condition,
            within=within,
            what=expected,
            label_selector=self.selector or None,
        )
        if held:
            return [p for p in pods if pod_ready(p)]
        ready = sum(pod_ready(p) for p in pods)
        raise self._fail(
            f"{expected} within {within}",
            f"{ready} ready of {len(pods)} pod(s) matching {self.selector!r}",
            self.selector or "",
        )

    def assert_ready(self, *, within: Duration = 0) -> list[Any]:
        """At least one pod matches and every matching pod is ready; return them."""
        return self._check(
            lambda ps: bool(ps) and all(pod_ready(p) for p in ps),
            f"every pod matching {self.selector!r} in {self.namespace} ready",
            within,
        )

    def assert_count(self, count: int, *, within: Duration = 0) -> list[Any]:
        """Exactly count matching pods are ready; return them."""
        return self._check(
            lambda ps: sum(pod_ready(p) for p in ps) == count,
            f"exactly {count} ready pod(s) matching {self.selector!r} in {self.namespace}",
            within,
        )

    def restarts(self) -> list[Restart]:
        """Every container of the matching pods that has restarted, and how its last run ended.

        Keep it as a baseline for ``since=`` when the pods may have restarted before the test.
        """
        pods = self._kube.list_raw(
            self._kube.core.list_namespaced_pod,
            self.namespace,
            label_selector=self.selector or None,
        )
        return restarts_of(pods.get("items", []))

    def assert_no_restarts(self, *, since: Sequence[Restart] | None = None) -> None:
        """No container of the matching pods has restarted (since the baseline, if given).

        Fails naming each restarted container and how its last run ended, e.g.
        ``web-5d8f/app restarted 1 time(s), last run ended OOMKilled (exit 137)``.
        """
        found = new_restarts(self.restarts(), since)
        if found:
            raise self._fail(
                f"no container of the pods matching {self.selector!r} in {self.namespace} "
                "restarted" + (" since the baseline" if since is not None else ""),
                "\n" + describe(found),
                self.selector or "",
            )

    def assert_restarted(
        self,
        reason: str | None = None,
        *,
        within: Duration = 0,
        since: Sequence[Restart] | None = None,
    ) -> list[Restart]:
        """A container of the matching pods restarted; return those restarts.

        Args:
            reason: how its last run ended, e.g. ``"OOMKilled"`` (None: any way).
            within: how long to wait (by watching) for it.
            since: a baseline from :meth:`restarts`: only restarts after it count.
        """
        expected = (
            f"a container of the pods matching {self.selector!r} in {self.namespace} restarted"
            + (f" after a run that ended {reason}" if reason else "")
            + (" since the baseline" if since is not None else "")
        )
        found: list[Restart] = []

        def restarted(pods: list[Any]) -> bool:
            found[:] = matching(new_restarts(restarts_of(pods), since), reason)
            return bool(found)

        held, pods = self._wait(
            self._list,
            restarted,
            within=within,
            what=expected,
            label_selector=self.selector or None,
        )
        if held:
            return list(found)
        raise self._fail(
            f"{expected} within {within}",
            describe(new_restarts(restarts_of(pods), since)),
            self.selector or "",
        )


class NodeProbe(_Probe):
    """``steady.node(name)``."""

    def __init__(self, kube: Kube, name: str) -> None:
        """Probe the node called name."""
        super().__init__(kube, None)
        self.name = name

    def assert_ready(self, *, within: Duration = 0) -> None:
        """The node reports Ready and accepts pods (not cordoned)."""

        def ready(nodes: list[Any]) -> bool:
            return any(node_ready(n) for n in nodes)

        held, nodes = self._wait(
            self._kube.core.list_node,
            ready,
            within=within,
            what=f"node {self.name} ready",
            field_selector=f"metadata.name={self.name}",
        )
        if not held:
            seen = "no such node"
            if nodes:
                conditions = (nodes[0].status.conditions if nodes[0].status else None) or []
                seen = ", ".join(f"{c.type}={c.status}" for c in conditions)
                if nodes[0].spec and nodes[0].spec.unschedulable:
                    seen += ", cordoned"
            raise self._fail(f"node {self.name} Ready and schedulable within {within}", seen)


class NamespaceProbe(_Probe):
    """``steady.namespace(name)``: every workload in it available, each bad one named."""

    def assert_ready(self, *, within: Duration = 0) -> None:
        """Every Deployment, StatefulSet and DaemonSet of the namespace is fully available."""
        namespace = self.namespace
        assert namespace is not None
        apps = self._kube.apps
        kinds: list[tuple[str, Callable[..., Any], Callable[[Any], tuple[int, int]]]] = [
            (
                "Deployment",
                functools.partial(apps.list_namespaced_deployment, namespace),
                lambda o: (
                    o.spec.replicas if o.spec.replicas is not None else 1,
                    o.status.available_replicas or 0,
                ),
            ),
            (
                "StatefulSet",
                functools.partial(apps.list_namespaced_stateful_set, namespace),
                lambda o: (
                    o.spec.replicas if o.spec.replicas is not None else 1,
                    o.status.available_replicas or 0,
                ),
            ),
            (
                "DaemonSet",
                functools.partial(apps.list_namespaced_daemon_set, namespace),
                lambda o: (o.status.desired_number_scheduled or 0, o.status.number_available or 0),
            ),
        ]
        deadline = time.monotonic() + _within(within)
        bad: list[str] = []
        for kind, list_fn, counts in kinds:

            def all_ok(objs: list[Any], counts: Callable[[Any], tuple[int, int]] = counts) -> bool:
                return all(counts(o)[1] >= counts(o)[0] for o in objs)

            # One deadline for the whole check, shared by the three kinds.
            held, objs = self._wait(
                list_fn,
                all_ok,
                within=max(0.0, deadline - time.monotonic()),
                what=f"every {kind} in {namespace} available",
            )
            if not held:
                bad += [
                    f"{kind} {namespace}/{o.metadata.name}: {counts(o)[1]}/{counts(o)[0]} available"
                    for o in objs
                    if counts(o)[1] < counts(o)[0]
                ]
        if bad:
            raise self._fail(
                f"every workload in namespace {namespace} available within {within}",
                f"{len(bad)} not available:\n  " + "\n  ".join(bad),
                "",
            )
