"""Steady-state probes: the ``steady`` fixture's object and ``eventually``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_chaos.kube import Kube
    from pytest_chaos.report.timeline import Timeline
    from pytest_chaos.steady.http import HttpProbe, Monitor
    from pytest_chaos.steady.objects import NamespaceProbe, NodeProbe, PodsProbe, WorkloadProbe


class Steady:
    """Probes of the steady state; each ``assert_*(within=...)`` waits by watching."""

    def __init__(self, kube: Callable[[], Kube], timeline: Timeline | None = None) -> None:
        """Probe the cluster that kube() returns (resolved only when a probe needs it)."""
        self._kube = kube
        self._timeline = timeline
        self.monitors: list[Monitor] = []
        self._probes: list[HttpProbe] = []

    def deployment(self, name: str, *, namespace: str) -> WorkloadProbe:
        """A Deployment: ``assert_available``, ``assert_ready``, ``assert_count``."""
        from pytest_chaos.steady.objects import WorkloadProbe

        return WorkloadProbe(self._kube(), "Deployment", name, namespace)

    def statefulset(self, name: str, *, namespace: str) -> WorkloadProbe:
        """A StatefulSet: ``assert_available``, ``assert_ready``, ``assert_count``."""
        from pytest_chaos.steady.objects import WorkloadProbe

        return WorkloadProbe(self._kube(), "StatefulSet", name, namespace)

    def pods(self, selector: str | None, *, namespace: str) -> PodsProbe:
        """Pods by label selector: ``assert_ready``, ``assert_count``, ``restarts``...

        Also ``assert_no_restarts`` and ``assert_restarted`` (e.g. ``"OOMKilled"``).
        """
        from pytest_chaos.steady.objects import PodsProbe
        from pytest_chaos.targeting import parse_label_selector

        parse_label_selector(selector)
        return PodsProbe(self._kube(), selector, namespace)

    def node(self, name: str) -> NodeProbe:
        """A node: ``assert_ready`` (Ready and not cordoned)."""
        from pytest_chaos.steady.objects import NodeProbe

        return NodeProbe(self._kube(), name)

    def namespace(self, name: str) -> NamespaceProbe:
        """Every workload of a namespace: ``assert_ready`` names each one that is not."""
        from pytest_chaos.steady.objects import NamespaceProbe

        return NamespaceProbe(self._kube(), name)

    def http(self, url: str, **options: Any) -> HttpProbe:
        """An HTTP endpoint: ``check``, ``assert_ok``, ``monitor`` (see HttpProbe)."""
        from pytest_chaos.durations import Duration
        from pytest_chaos.steady.http import HttpProbe

        steady = self

        class TrackedHttpProbe(HttpProbe):
            # Monitors are reported with the test (junit properties, summary).
            def monitor(self, *, every: Duration = 0.2) -> Monitor:
                monitor = super().monitor(every=every)
                steady.monitors.append(monitor)
                return monitor

        probe = TrackedHttpProbe(url, **options)
        self._probes.append(probe)
        return probe

    def close(self) -> None:
        """Close every HTTP probe made here."""
        for probe in self._probes:
            probe.close()


def __getattr__(name: str) -> Any:
    # ``from pytest_chaos.steady import eventually`` without importing tenacity eagerly.
    if name == "eventually":
        from pytest_chaos.steady.eventually import eventually

        return eventually
    raise AttributeError(name)
