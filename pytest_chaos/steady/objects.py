"""Steady-state probes of Kubernetes objects, all waiting by watch.

Which pods count (the same in every probe and monitor, see ``counting``): a pod is present only
when it is not terminating, and ready only when it is present, Running and Ready. Workload and
namespace readiness come from the pods their selectors match and the controllers' observed
generation, never from the status counts alone (they lag an eviction). A failed check raises
NotSteadyError (an AssertionError) with a diagnosis: what was expected, what was last seen, the
pods that are not ready and why, and the namespace's recent events. ``monitor()`` records the
same hypothesis over time (see ``object_monitor``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import ChaosConfigError, NotSteadyError, WaitTimeout
from pytest_chaos.kube import Kube
from pytest_chaos.steady.counting import (
    Count,
    judge_namespace,
    judge_pods,
    judge_workload,
    present,
    ready_count,
    requirements,
    selected,
    selector_text,
    wanted_of,
)
from pytest_chaos.steady.diagnosis import (
    describe_pods,
    node_ready,
    pod_ready,
    read_field,
    recent_events,
)
from pytest_chaos.steady.object_monitor import Judge, ObjectMonitor, Source
from pytest_chaos.steady.restarts import Restart, describe, matching, new_restarts, restarts_of
from pytest_chaos.targeting import matching_text

if TYPE_CHECKING:
    from pytest_chaos.report.timeline import Timeline

_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def _within(value: Duration) -> float:
    return as_seconds(value, name="within")


def _min_ready(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ChaosConfigError(
            f"min_ready={value!r} is not a count of pods; use an int >= 0 (or None: all wanted)"
        )
    return value


class _Probe:
    def __init__(
        self,
        kube: Kube,
        namespace: str | None,
        *,
        timeline: Timeline | None = None,
        monitors: list[ObjectMonitor] | None = None,
    ) -> None:
        self._kube = kube
        self.namespace = namespace
        self._timeline = timeline
        self._monitors = monitors

    def _fail(
        self, expected: str, last_seen: str, pod_selector: str | None = None, extra: str = ""
    ) -> NotSteadyError:
        self._record(expected, held=False)
        lines = [f"expected: {expected}", f"last seen: {last_seen}"]
        diagnosis = self._diagnosis(pod_selector)
        if extra:
            lines.append(extra)
        if diagnosis:
            lines.append(diagnosis)
        return NotSteadyError("\n".join(lines))

    def _diagnosis(self, pod_selector: str | None) -> str:
        lines = []
        if self.namespace is not None and pod_selector is not None:
            pods = self._kube.list_raw(
                self._kube.core.list_namespaced_pod,
                self.namespace,
                label_selector=pod_selector or None,
            )
            lines.append("pods:\n" + describe_pods(pods.get("items", [])))
        if self.namespace is not None:
            lines.append("recent events:\n" + recent_events(self._kube, self.namespace))
        return "\n".join(lines)

    def _record(self, expected: str, *, held: bool, took: float | None = None) -> None:
        """A ``steady`` timeline event: what was asserted and the outcome."""
        if self._timeline is None:
            return
        if held:
            self._timeline.add("steady", f"{expected}: held after {took or 0.0:.1f}s")
        else:
            self._timeline.add("steady", f"{expected}: NOT held")

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

    def _hold(
        self,
        what: str,
        expected: str,
        sources: Sequence[Source],
        judge: Judge,
        within: Duration,
        pod_selector: str | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Watch sources until judge says ok (or fail at within); the objects it judged ok.

        With ``within=0`` the sources are listed once and judged, without a watch.
        """
        seconds = _within(within)
        started = time.monotonic()
        held: list[list[list[dict[str, Any]]]] = []

        def keep(lists: list[list[dict[str, Any]]]) -> Count:
            count = judge(lists)
            if count.ok and not held:
                held.append(lists)
            return count

        if seconds <= 0:
            lists = [list(self._kube.list_raw(fn, **kw).get("items") or []) for fn, kw in sources]
            last_seen = keep(lists).seen
        else:
            monitor = ObjectMonitor(what, expected, sources, keep, settle=False)
            with monitor:
                monitor.wait_for(lambda r: r.ok, seconds)
            readings = monitor.readings
            last_seen = readings[-1].seen if readings else "nothing"
        if held:
            self._record(f"{what}: {expected}", held=True, took=time.monotonic() - started)
            return held[0]
        raise self._fail(f"{what}: {expected} within {within}", last_seen, pod_selector)

    def _register(self, monitor: ObjectMonitor) -> ObjectMonitor:
        if self._monitors is not None:
            self._monitors.append(monitor)
        return monitor


class WorkloadProbe(_Probe):
    """``steady.deployment(name, namespace=)`` / ``steady.statefulset(...)``."""

    def __init__(
        self,
        kube: Kube,
        kind: str,
        name: str,
        namespace: str,
        *,
        timeline: Timeline | None = None,
        monitors: list[ObjectMonitor] | None = None,
    ) -> None:
        """Probe the workload of kind called name in namespace."""
        super().__init__(kube, namespace, timeline=timeline, monitors=monitors)
        self.kind = kind
        self.name = name
        self._list = functools.partial(kube.workload_api(kind, "list"), namespace)

    @property
    def ref(self) -> str:
        """``Deployment shop/backend``."""
        return f"{self.kind} {self._name}"

    @property
    def _name(self) -> str:
        return f"{self.namespace}/{self.name}"

    def _sources(self) -> tuple[list[Source], str, dict[str, Any] | None]:
        """The sources (the workload, its pods), the pods' selector, and the workload now.

        The pods are listed by the workload's selector when it exists now, else all of the
        namespace's (each judgement selects its own by the selector it then has).
        """
        namespace = str(self.namespace)
        obj = self._kube.read(self._kube.workload_api(self.kind, "read"), self.name, namespace)
        selector = selector_text(requirements((obj or {}).get("spec", {}).get("selector")))
        pods: dict[str, Any] = {"label_selector": selector} if selector else {}
        return (
            [
                (self._list, {"field_selector": f"metadata.name={self.name}"}),
                (functools.partial(self._kube.core.list_namespaced_pod, namespace), pods),
            ],
            selector,
            obj,
        )

    def _split(self, lists: list[list[dict[str, Any]]]) -> tuple[dict[str, Any] | None, list[Any]]:
        workloads, pods = lists
        obj = workloads[0] if workloads else None
        if obj is None:
            return None, []
        clauses = requirements(read_field(obj, "spec", "selector"))
        return obj, selected(pods, clauses, str(self.namespace))

    def _check(
        self,
        judge: Callable[[dict[str, Any] | None, list[Any]], Count],
        expected: str,
        within: Duration,
    ) -> None:
        sources, selector, _ = self._sources()
        self._hold(
            self.ref,
            expected,
            sources,
            lambda lists: judge(*self._split(lists)),
            within,
            selector or None,  # no workload, no pods of it to show
        )

    def assert_available(self, *, within: Duration = 0) -> None:
        """Every wanted replica is ready (counted from its pods) and available per its status."""
        self._check(
            lambda obj, pods: judge_workload(self.kind, self._name, obj, pods, available=True),
            "all replicas available",
            within,
        )

    def assert_ready(self, *, within: Duration = 0) -> None:
        """The rollout is complete: exactly the wanted pods, every one updated, ready, available."""

        def ready(obj: dict[str, Any] | None, pods: list[Any]) -> Count:
            count = judge_workload(self.kind, self._name, obj, pods, available=True)
            if obj is None or not count.ok:
                return count
            wanted = wanted_of(self.kind, obj)
            status = obj.get("status") or {}
            updated = status.get("updatedReplicas", status.get("updatedNumberScheduled")) or 0
            total = status.get("replicas", status.get("currentNumberScheduled")) or 0
            alive = len(present(pods))
            done = count.ready == alive == wanted and updated == wanted and total == wanted
            extra = "" if done else f" ({alive} present, {updated} updated, {total} in status)"
            return Count(count.ready, wanted, done, count.seen + extra)

        self._check(ready, "all replicas updated and ready", within)

    def assert_count(self, replicas: int, *, within: Duration = 0) -> None:
        """Exactly replicas of its pods are ready (terminating pods never count)."""

        def exactly(obj: dict[str, Any] | None, pods: list[Any]) -> Count:
            count = judge_workload(self.kind, self._name, obj, pods)  # "3/3 ready": its own
            return Count(
                count.ready, replicas, obj is not None and count.ready == replicas, count.seen
            )

        self._check(exactly, f"exactly {replicas} ready replica(s)", within)

    def monitor(self, *, min_ready: int | None = None) -> ObjectMonitor:
        """Record over time whether its pods stay ready: an ObjectMonitor (a context manager).

        A reading holds when at least the wanted pods are ready and the controller has observed
        the latest spec. Wanted is ``min_ready`` when given, else spec.replicas as it was when
        the monitor was made (so a scale-down by the chaos shows as a deviation).
        """
        _min_ready(min_ready)
        sources, selector, now = self._sources()
        pinned: list[int] = [] if min_ready is None else [min_ready]
        if now is not None and not pinned:
            pinned.append(wanted_of(self.kind, now))

        def judge(lists: list[list[dict[str, Any]]]) -> Count:
            obj, pods = self._split(lists)
            if obj is not None and not pinned:
                pinned.append(wanted_of(self.kind, obj))
            return judge_workload(
                self.kind, self._name, obj, pods, wanted=pinned[0] if pinned else None
            )

        wanted = f"at least {pinned[0]}" if pinned else "its wanted"
        return self._register(
            ObjectMonitor(
                self.ref,
                f"{wanted} replica(s) ready",
                sources,
                judge,
                timeline=self._timeline,
                diagnosis=lambda: self._diagnosis(selector or None),
            )
        )


class PodsProbe(_Probe):
    """``steady.pods(selector, namespace=)``: pods by label selector, counted when ready."""

    def __init__(
        self,
        kube: Kube,
        selector: str | None,
        namespace: str,
        *,
        timeline: Timeline | None = None,
        monitors: list[ObjectMonitor] | None = None,
    ) -> None:
        """Probe the pods matching selector in namespace."""
        super().__init__(kube, namespace, timeline=timeline, monitors=monitors)
        self.selector = selector
        self._list = functools.partial(kube.core.list_namespaced_pod, namespace)

    @property
    def ref(self) -> str:
        """``pods matching 'app=web' in shop`` (``pods with any labels (no selector) ...``)."""
        return f"pods {matching_text(self.selector)} in {self.namespace}"

    def _source(self) -> list[Source]:
        return [(self._list, {"label_selector": self.selector} if self.selector else {})]

    def _check(
        self, judge: Callable[[list[Any]], Count], expected: str, within: Duration
    ) -> list[Any]:
        from kubernetes import client

        [pods] = self._hold(
            self.ref,
            expected,
            self._source(),
            lambda lists: judge(lists[0]),
            within,
            self.selector or "",
        )
        return [client.V1Pod.from_dict(p) for p in pods if pod_ready(p)]

    def assert_ready(self, *, within: Duration = 0) -> list[Any]:
        """At least one pod matches and every matching pod is ready; return them.

        Terminating pods are not counted: they are leaving.
        """
        return self._check(
            lambda pods: judge_pods(pods, self.selector, min_ready=None),
            "every pod ready",
            within,
        )

    def assert_count(self, count: int, *, within: Duration = 0) -> list[Any]:
        """Exactly count matching pods are ready (terminating ones never are); return them."""

        def exactly(pods: list[Any]) -> Count:
            ready = ready_count(pods)
            judged = judge_pods(pods, self.selector, min_ready=count)
            return Count(ready, count, ready == count, judged.seen)

        return self._check(exactly, f"exactly {count} ready pod(s)", within)

    def monitor(self, *, min_ready: int | None = None) -> ObjectMonitor:
        """Record over time whether the pods stay ready: an ObjectMonitor (a context manager).

        A reading holds when at least one pod matches and every matching (non-terminating) pod
        is ready, or when at least ``min_ready`` are ready if it is given.
        """
        _min_ready(min_ready)
        hypothesis = (
            "every pod ready" if min_ready is None else f"at least {min_ready} pod(s) ready"
        )
        return self._register(
            ObjectMonitor(
                self.ref,
                hypothesis,
                self._source(),
                lambda lists: judge_pods(lists[0], self.selector, min_ready=min_ready),
                timeline=self._timeline,
                diagnosis=lambda: self._diagnosis(self.selector or ""),
            )
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
        expected = (
            f"no container of the pods {matching_text(self.selector)} in {self.namespace} "
            "restarted" + (" since the baseline" if since is not None else "")
        )
        if found:
            raise self._fail(expected, "\n" + describe(found), self.selector or "")
        self._record(expected, held=True)

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
            f"a container of the pods {matching_text(self.selector)} in {self.namespace} restarted"
            + (f" after a run that ended {reason}" if reason else "")
            + (" since the baseline" if since is not None else "")
        )
        found: list[Restart] = []

        def restarted(pods: list[Any]) -> bool:
            # The kubelet may count a restart before it reports how the last run ended: wait
            # for that too, and settle for the count alone only when the deadline comes.
            found[:] = matching(new_restarts(restarts_of(pods), since), reason)
            return bool(found) and all(r.reported for r in found)

        started = time.monotonic()
        held, pods = self._wait(
            self._list,
            restarted,
            within=within,
            what=expected,
            label_selector=self.selector or None,
        )
        if held or found:
            self._record(expected, held=True, took=time.monotonic() - started)
            return list(found)
        raise self._fail(
            f"{expected} within {within}",
            describe(new_restarts(restarts_of(pods), since)),
            self.selector or "",
        )


class NodeProbe(_Probe):
    """``steady.node(name)``."""

    def __init__(self, kube: Kube, name: str, *, timeline: Timeline | None = None) -> None:
        """Probe the node called name."""
        super().__init__(kube, None, timeline=timeline)
        self.name = name

    def assert_ready(self, *, within: Duration = 0) -> None:
        """The node reports Ready and accepts pods (not cordoned)."""

        def ready(nodes: list[Any]) -> bool:
            return any(node_ready(n) for n in nodes)

        started = time.monotonic()
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
        self._record(
            f"node {self.name} Ready and schedulable", held=True, took=time.monotonic() - started
        )


class NamespaceProbe(_Probe):
    """``steady.namespace(name)``: every workload in it ready, each bad one named."""

    def _sources(self) -> list[Source]:
        namespace = str(self.namespace)
        apps, core = self._kube.apps, self._kube.core
        return [
            (functools.partial(apps.list_namespaced_deployment, namespace), {}),
            (functools.partial(apps.list_namespaced_stateful_set, namespace), {}),
            (functools.partial(apps.list_namespaced_daemon_set, namespace), {}),
            (functools.partial(core.list_namespaced_pod, namespace), {}),
        ]

    @staticmethod
    def _workloads(lists: list[list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        return [
            (kind, obj)
            for kind, objs in zip(_WORKLOAD_KINDS, lists[:3], strict=True)
            for obj in objs
        ]

    @property
    def ref(self) -> str:
        """``namespace shop``."""
        return f"namespace {self.namespace}"

    def assert_ready(self, *, within: Duration = 0) -> None:
        """Every Deployment, StatefulSet and DaemonSet of the namespace is fully available.

        Counted from the pods each one's selector matches (terminating pods never count) and
        its observed generation, and confirmed by its status's available count.
        """
        namespace = str(self.namespace)
        self._hold(
            self.ref,
            "every workload available",
            self._sources(),
            lambda lists: judge_namespace(
                self._workloads(lists), lists[3], namespace=namespace, available=True
            ),
            within,
        )

    def monitor(self) -> ObjectMonitor:
        """Record over time whether every workload stays ready: an ObjectMonitor.

        A reading holds when every Deployment, StatefulSet and DaemonSet has at least its wanted
        pods ready (spec.replicas as it was when first seen; a DaemonSet's desired count) and
        its controller has observed its latest spec; a workload deleted meanwhile does not hold.
        """
        namespace = str(self.namespace)
        pinned: dict[str, int] = {}

        def judge(lists: list[list[dict[str, Any]]]) -> Count:
            workloads = self._workloads(lists)
            for kind, obj in workloads:
                if kind != "DaemonSet":
                    pinned.setdefault(
                        f"{kind}/{read_field(obj, 'metadata', 'name')}", wanted_of(kind, obj)
                    )
            return judge_namespace(workloads, lists[3], namespace=namespace, wanted_by=pinned)

        return self._register(
            ObjectMonitor(
                self.ref,
                "every workload ready",
                self._sources(),
                judge,
                timeline=self._timeline,
                diagnosis=lambda: self._diagnosis(""),
            )
        )
