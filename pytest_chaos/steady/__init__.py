"""Steady-state probes: the ``steady`` fixture's object and ``eventually``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_chaos.kube import Kube
    from pytest_chaos.report.timeline import Timeline
    from pytest_chaos.steady.generic import ObjectProbe
    from pytest_chaos.steady.http import HttpProbe, Monitor
    from pytest_chaos.steady.object_monitor import ObjectMonitor
    from pytest_chaos.steady.objects import NamespaceProbe, NodeProbe, PodsProbe, WorkloadProbe


class Steady:
    """Probes of the steady state; each ``assert_*(within=...)`` waits by watching."""

    def __init__(
        self,
        kube: Callable[[], Kube],
        timeline: Timeline | None = None,
        *,
        proxy_services: Callable[[], bool] | None = None,
    ) -> None:
        """Probe the cluster that kube() returns (resolved only when a probe needs it).

        ``proxy_services()`` true: the test process cannot reach the pod network (kind), so
        HTTP probes send Service URLs (``<svc>.<ns>.svc[.cluster.local]``) through the API
        server's service proxy (``pytest_chaos.kube.service_proxy``).
        """
        self._kube = kube
        self._timeline = timeline
        self._proxy_services = proxy_services or (lambda: False)
        self.monitors: list[Monitor] = []
        #: Every object monitor made here (``.monitor()`` of deployment, pods, object...).
        self.object_monitors: list[ObjectMonitor] = []
        self._probes: list[HttpProbe] = []

    def kube(self) -> Kube:
        """The cluster the probes read (resolved on first use)."""
        return self._kube()

    def deployment(self, name: str, *, namespace: str) -> WorkloadProbe:
        """A Deployment: ``assert_available``, ``assert_ready``, ``assert_count``, ``monitor``."""
        from pytest_chaos.steady.objects import WorkloadProbe

        return WorkloadProbe(
            self._kube(),
            "Deployment",
            name,
            namespace,
            timeline=self._timeline,
            monitors=self.object_monitors,
        )

    def statefulset(self, name: str, *, namespace: str) -> WorkloadProbe:
        """A StatefulSet: ``assert_available``, ``assert_ready``, ``assert_count``, ``monitor``."""
        from pytest_chaos.steady.objects import WorkloadProbe

        return WorkloadProbe(
            self._kube(),
            "StatefulSet",
            name,
            namespace,
            timeline=self._timeline,
            monitors=self.object_monitors,
        )

    def pods(self, selector: str | None, *, namespace: str) -> PodsProbe:
        """Pods by label selector: ``assert_ready``, ``assert_count``, ``restarts``...

        Also ``assert_no_restarts`` and ``assert_restarted`` (e.g. ``"OOMKilled"``).
        """
        from pytest_chaos.steady.objects import PodsProbe
        from pytest_chaos.targeting import parse_label_selector

        parse_label_selector(selector)
        return PodsProbe(
            self._kube(),
            selector,
            namespace,
            timeline=self._timeline,
            monitors=self.object_monitors,
        )

    def node(self, name: str) -> NodeProbe:
        """A node: ``assert_ready`` (Ready and not cordoned)."""
        from pytest_chaos.steady.objects import NodeProbe

        return NodeProbe(self._kube(), name, timeline=self._timeline)

    def namespace(self, name: str) -> NamespaceProbe:
        """Every workload of a namespace: ``assert_ready`` names each one that is not."""
        from pytest_chaos.steady.objects import NamespaceProbe

        return NamespaceProbe(
            self._kube(), name, timeline=self._timeline, monitors=self.object_monitors
        )

    def object(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> ObjectProbe:
        """Any object, a custom resource too: ``assert_that(path, expected)``, ``monitor``.

        Example: ``steady.object("apps/v1", "Deployment", "web", namespace="shop")
        .assert_that("status.readyReplicas", 3, within=30)``.
        """
        from pytest_chaos.steady.generic import ObjectProbe

        return ObjectProbe(
            self._kube(),
            api_version,
            kind,
            name,
            namespace=namespace,
            timeline=self._timeline,
            monitors=self.object_monitors,
        )

    def http(self, url: str, **options: Any) -> HttpProbe:
        """An HTTP endpoint: ``check``, ``assert_ok``, ``monitor`` (see HttpProbe).

        A failed ``assert_ok`` of a URL naming a Service (or its ClusterIP) also shows the
        Service's EndpointSlices, pods and events; each ``assert_ok`` is a timeline event.
        """
        import httpx

        from pytest_chaos.durations import Duration
        from pytest_chaos.steady.http import HttpProbe, Sample

        steady = self
        timeline = self._timeline

        class TrackedHttpProbe(HttpProbe):
            def _session_transport(self, limits: httpx.Limits) -> httpx.BaseTransport | None:
                # A Service's DNS name works from the test process: through its ClusterIP,
                # or the API server's proxy where the pod network is out of reach (kind).
                from pytest_chaos.kube.service_proxy import ServiceTransport, proxy_path

                if self._transport is not None or proxy_path(httpx.URL(self.url)) is None:
                    return self._transport
                return ServiceTransport(
                    steady.kube(), through_api_server=steady._proxy_services(), limits=limits
                )

            # Monitors are reported with the test (junit properties, summary).
            def monitor(
                self, *, every: Duration = 0.2, max_in_flight: int | None = None
            ) -> Monitor:
                monitor = super().monitor(every=every, max_in_flight=max_in_flight)
                steady.monitors.append(monitor)
                return monitor

            def _asserted(
                self, held: bool, samples: list[Sample], *, within: float, consecutive: int
            ) -> None:
                if timeline is None:
                    return
                n = len(samples)
                attempts = f"{n} attempt" + ("" if n == 1 else "s")
                if held:
                    outcome = f"held after {attempts}"
                else:
                    ok = sum(s.ok for s in samples)
                    outcome = f"NOT held within {within:g}s ({attempts}, {ok} ok)"
                wanted = f", {consecutive} in a row" if consecutive > 1 else ""
                timeline.add(
                    "steady",
                    f"{self.method} {self.url}: {self.expectation}{wanted} {outcome}",
                    url=self.url,
                    expectation=self.expectation,
                    held=held,
                    attempts=n,
                    within=within,
                )

        options.setdefault("kube", self._kube)
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
