"""The ``steady_state`` marker's hypotheses, resolved when the test runs.

Each hypothesis (a workload available, pods ready, an HTTP endpoint healthy) is checked before the
faults (not steady: ERROR), and after their revert, waiting up to ``within`` for recovery (not
recovered: FAIL). With ``during=True`` each one is also monitored from the moment it held before
the faults until their revert: any dip in between fails the test as "deviated during chaos",
saying when, for how long and what was seen. ``within`` measures recovery; ``during`` allows no
outage at all.

Marker values are fixed when the test module is imported; the few that are only known at run time
are given as deferred values resolved here: ``TEST_NAMESPACE`` (the test's ``chaos_namespace``)
and :func:`service_url` (a Service's ClusterIP and port, looked up by name).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_chaos.durations import as_seconds
from pytest_chaos.errors import ChaosConfigError

if TYPE_CHECKING:
    from pytest_chaos.kube import Kube
    from pytest_chaos.steady import Steady

#: The keys an HTTP hypothesis may have: HttpProbe's arguments, and the monitor's interval.
HTTP_KEYS = ("url", "expect", "body", "method", "headers", "timeout", "every")
#: The keys a workload hypothesis may have.
WORKLOAD_KEYS = ("name", "min_ready")


@dataclass(frozen=True, slots=True)
class ServiceURL:
    """A URL to a Service, resolved when the test runs (see :func:`service_url`)."""

    name: str
    port: int | str | None = None
    path: str = "/"
    namespace: str | None = None
    scheme: str = "http"

    def __str__(self) -> str:
        where = f".{self.namespace}" if isinstance(self.namespace, str) else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://<Service {self.name}{where}{port}>{self.path}"

    def resolve(self, kube: Kube, namespace: str) -> str:
        """``scheme://<ClusterIP>:<port><path>`` of the Service, read now.

        Raises:
            ChaosConfigError: the Service does not exist, has no ClusterIP, or no such port.
        """
        service = kube.read(kube.core.read_namespaced_service, self.name, namespace)
        if service is None:
            raise ChaosConfigError(
                f"service_url({self.name!r}): there is no Service {namespace}/{self.name}; "
                "create it before the test runs (a fixture), or fix the name"
            )
        spec = service.get("spec", {})
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            raise ChaosConfigError(
                f"service_url({self.name!r}): Service {namespace}/{self.name} is headless "
                "(no ClusterIP); probe a pod or give the URL itself"
            )
        ports = list(spec.get("ports") or [])
        chosen = _pick_port(ports, self.port)
        if chosen is None:
            have = ", ".join(f"{p.get('name') or '-'}:{p['port']}" for p in ports) or "none"
            raise ChaosConfigError(
                f"service_url({self.name!r}, port={self.port!r}): Service "
                f"{namespace}/{self.name} has no such port (it has {have}); name one of them"
            )
        host = f"[{ip}]" if ":" in ip else ip
        return f"{self.scheme}://{host}:{chosen}{self.path}"


def _pick_port(ports: Sequence[Mapping[str, Any]], wanted: int | str | None) -> int | None:
    if wanted is None:
        return int(ports[0]["port"]) if len(ports) == 1 else None
    for port in ports:
        if wanted in (port.get("name"), port["port"]):
            return int(port["port"])
    return None


def service_url(
    name: str,
    *,
    port: int | str | None = None,
    path: str = "/",
    namespace: str | None = None,
    scheme: str = "http",
) -> ServiceURL:
    """A Service's URL for a marker, looked up when the test runs: ``http://<ClusterIP>:<port>/``.

    Args:
        name: the Service's name.
        port: its port, by name or number (None: its only port).
        path: the path to request, starting with ``/``.
        namespace: its namespace (None: the marker's ``namespace``; ``TEST_NAMESPACE`` works).
        scheme: ``http`` or ``https``.

    Raises:
        ChaosConfigError: an argument is invalid.
    """
    if not isinstance(name, str) or not name:
        raise ChaosConfigError(f"service_url(name={name!r}): give the Service's name")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int | str) or not port):
        raise ChaosConfigError(
            f"service_url({name!r}, port={port!r}): give a port name ('http') or number (8080)"
        )
    if not isinstance(path, str) or not path.startswith("/"):
        raise ChaosConfigError(f"service_url({name!r}, path={path!r}): the path starts with '/'")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        raise ChaosConfigError(f"service_url({name!r}, namespace={namespace!r}): a name or None")
    if scheme not in ("http", "https"):
        raise ChaosConfigError(f"service_url({name!r}, scheme={scheme!r}): 'http' or 'https'")
    return ServiceURL(name, port, path, namespace, scheme)


# --- the marker's arguments -------------------------------------------------------------------


def check_workloads(argument: str, entries: object) -> None:
    """``deployments=`` / ``statefulsets=``: names, or ``{"name": ..., "min_ready": n}``."""
    for entry in _entries(argument, entries, "'backend'"):
        if isinstance(entry, str) and entry:
            continue
        if isinstance(entry, Mapping):
            _known_keys(argument, entry, WORKLOAD_KEYS)
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                raise ChaosConfigError(f"{argument}: {entry!r} needs a 'name'")
            if "min_ready" in entry:
                _min_ready(argument, entry["min_ready"])
            continue
        raise ChaosConfigError(
            f"{argument}: {entry!r} must be a name or a dict like {{'name': 'web', 'min_ready': 2}}"
        )


def check_pods(entries: object) -> None:
    """``pods=``: label selectors."""
    from pytest_chaos.targeting import parse_label_selector

    for entry in _entries("pods", entries, "'app=web'"):
        if not isinstance(entry, str) or not entry:
            raise ChaosConfigError(f"pods: {entry!r} must be a label selector such as 'app=web'")
        parse_label_selector(entry, name="pods")


def check_http(entries: object) -> None:
    """``http=``: URLs, ``service_url(...)``, or dicts of HttpProbe's arguments with ``url``."""
    for entry in _entries("http", entries, "'http://web.shop/health'"):
        spec = entry if isinstance(entry, Mapping) else {"url": entry}
        _known_keys("http", spec, HTTP_KEYS)
        url = spec.get("url")
        if isinstance(url, ServiceURL):
            pass
        elif not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ChaosConfigError(
                f"http: {entry!r}: the url must be an http:// or https:// URL, or "
                "pytest_chaos.service_url('name', port='http')"
            )
        for key in ("timeout", "every"):
            if key in spec and as_seconds(spec[key], name=f"http {key}") <= 0:
                raise ChaosConfigError(f"http: {entry!r}: {key} must be positive")


def _entries(argument: str, entries: object, example: str) -> list[Any]:
    if isinstance(entries, str | bytes | Mapping) or not isinstance(entries, Iterable):
        raise ChaosConfigError(
            f"{argument}={entries!r} must be a list (e.g. {argument}=[{example}])"
        )
    return list(entries)


def _known_keys(argument: str, spec: Mapping[Any, Any], known: Sequence[str]) -> None:
    unknown = sorted(str(k) for k in spec if k not in known)
    if unknown:
        raise ChaosConfigError(
            f"{argument}: {dict(spec)!r} has unknown key(s) {', '.join(unknown)}; "
            f"the keys are {', '.join(known)}"
        )


def _min_ready(argument: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ChaosConfigError(f"{argument}: min_ready={value!r} must be a whole number >= 0")
    return value


# --- at run time ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deviation:
    """A time a hypothesis did not hold while it was monitored."""

    what: str
    start: float
    duration: float
    ended: bool
    seen: str

    def describe(self, origin: float) -> str:
        """``Deployment shop/web: below 2 ready at +1.20s for 3.10s (seen: ...)``."""
        lasted = f"for {self.duration:.2f}s" if self.ended else f"for {self.duration:.2f}s, unended"
        return f"{self.what} at +{self.start - origin:.2f}s {lasted}: {self.seen}"


@dataclass
class _Hypothesis:
    what: str
    check: Callable[[float], None]
    monitor: Callable[[], Any]
    deviations: Callable[[Any, float], list[Deviation]]


@dataclass
class Hypotheses:
    """The hypotheses of one test's ``steady_state`` marker."""

    items: list[_Hypothesis]
    within: float
    during: bool
    _monitors: list[tuple[_Hypothesis, Any]] = field(default_factory=list)
    _stack: contextlib.ExitStack | None = None

    def check(self) -> None:
        """Assert every hypothesis, each waiting up to ``within`` (NotSteadyError)."""
        for hypothesis in self.items:
            hypothesis.check(self.within)

    def start_monitors(self) -> None:
        """Start one monitor per hypothesis (``during=True``); they run until ``stop_monitors``."""
        if not self.during or self._stack is not None:
            return
        stack = contextlib.ExitStack()
        try:
            for hypothesis in self.items:
                self._monitors.append((hypothesis, stack.enter_context(hypothesis.monitor())))
        except BaseException:
            stack.close()
            raise
        self._stack = stack

    def stop_monitors(self) -> list[Deviation]:
        """Stop the monitors (idempotent); every deviation they saw, oldest first."""
        if self._stack is None:
            return []
        stack, self._stack = self._stack, None
        stack.close()
        until = time.monotonic()
        found = [d for hypothesis, m in self._monitors for d in hypothesis.deviations(m, until)]
        return sorted(found, key=lambda d: d.start)

    @property
    def monitors(self) -> list[Any]:
        """The monitors started for ``during=True`` (for the report)."""
        return [m for _, m in self._monitors]


def build(
    steady: Steady,
    kube: Callable[[], Kube],
    kwargs: Mapping[str, Any],
    namespace: str,
    resolve_namespace: Callable[[Any], Any],
) -> Hypotheses:
    """The hypotheses of a ``steady_state`` marker's (validated) kwargs, values resolved now."""
    within = as_seconds(kwargs.get("within", "30s"), name="within")
    items: list[_Hypothesis] = []
    for kind, argument in (("Deployment", "deployments"), ("StatefulSet", "statefulsets")):
        for entry in kwargs.get(argument, ()):
            spec = entry if isinstance(entry, Mapping) else {"name": entry}
            items.append(_workload(steady, kind, spec["name"], namespace, spec.get("min_ready")))
    items += [_pods(steady, selector, namespace) for selector in kwargs.get("pods", ())]
    for entry in kwargs.get("http", ()):
        spec = dict(entry) if isinstance(entry, Mapping) else {"url": entry}
        url = spec.pop("url")
        if isinstance(url, ServiceURL):
            where = resolve_namespace(url.namespace) if url.namespace is not None else namespace
            url = url.resolve(kube(), where)
        items.append(_http(steady, url, spec))
    return Hypotheses(items, within, bool(kwargs.get("during", False)))


def _workload(
    steady: Steady, kind: str, name: str, namespace: str, min_ready: int | None
) -> _Hypothesis:
    probe = (steady.deployment if kind == "Deployment" else steady.statefulset)(
        name, namespace=namespace
    )
    what = f"{kind} {namespace}/{name}"

    def check(within: float) -> None:
        # Before and after the faults: fully available. ``min_ready`` relaxes only ``during``.
        probe.assert_available(within=within)

    def deviations(monitor: Any, until: float) -> list[Deviation]:
        # The hypothesis is the state that held before the faults: a fault that lowers the
        # wanted count (a scale-down) is a dip too, unless min_ready allows it.
        readings = list(monitor.readings)
        minimum = min_ready
        if minimum is None:
            minimum = next((r.wanted for r in readings if r.wanted is not None), 1)
        return _below(what, readings, minimum, until)

    return _Hypothesis(what, check, probe.monitor, deviations)


def _pods(steady: Steady, selector: str, namespace: str) -> _Hypothesis:
    probe = steady.pods(selector, namespace=namespace)
    what = probe.ref

    def check(within: float) -> None:
        probe.assert_ready(within=within)

    return _Hypothesis(what, check, probe.monitor, lambda m, _until: _intervals(what, m))


def _http(steady: Steady, url: str, spec: dict[str, Any]) -> _Hypothesis:
    every = spec.pop("every", 0.2)
    probe = steady.http(url, **spec)
    what = f"{probe.method} {probe.url}"

    def check(within: float) -> None:
        probe.assert_ok(within=within)

    def deviations(monitor: Any, _until: float) -> list[Deviation]:
        found = []
        for outage in monitor.outages:
            kinds = ", ".join(f"{k} {n}" for k, n in outage.kinds.items())
            found.append(
                Deviation(
                    what,
                    outage.start,
                    outage.duration,
                    outage.end is not None,
                    f"{outage.samples} failed request(s) ({kinds}), expected {probe.expectation}",
                )
            )
        return found

    return _Hypothesis(what, check, lambda: probe.monitor(every=every), deviations)


def _intervals(what: str, monitor: Any) -> list[Deviation]:
    return [
        Deviation(what, d.start, d.duration, d.end is not None, d.seen) for d in monitor.intervals
    ]


def _below(what: str, readings: Sequence[Any], minimum: int, until: float) -> list[Deviation]:
    """The maximal runs of readings with fewer than minimum ready, as deviations.

    A run that had not ended lasts until ``until`` (when the monitor stopped).
    """
    found: list[Deviation] = []
    run: list[Any] = []
    for reading in [*readings, None]:
        if reading is not None and (reading.ready or 0) < minimum:
            run.append(reading)
            continue
        if run:
            worst = min(run, key=lambda r: r.ready or 0)
            end = reading.at if reading is not None else until
            found.append(
                Deviation(
                    f"{what} (at least {minimum} ready)",
                    run[0].at,
                    max(end - run[0].at, 0.0),
                    reading is not None,
                    worst.seen,
                )
            )
            run = []
    return found


def deviated_message(deviations: Sequence[Deviation], origin: float) -> str:
    """The FAIL message of ``during=True`` (times relative to the test's timeline)."""
    lines = [f"deviated during chaos: {len(deviations)} time(s) a hypothesis did not hold"]
    lines += [f"  {d.describe(origin)}" for d in deviations]
    return "\n".join(lines)
