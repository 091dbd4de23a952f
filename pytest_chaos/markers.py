"""Markers: one signature function per marker, and collection-time validation.

Each ``chaos_<family>_<verb>`` marker has a fixture twin ``chaos.<family>.<verb>`` taking the same
arguments. Markers are checked when tests are collected: every problem of every test is reported
at once, in one usage error (exit code 4), before anything touches the cluster.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import ChaosConfigError


class _TestNamespace(str):
    """The namespace ``chaos_namespace`` made for the test, for markers.

    A marker's arguments are fixed at import time; this one is resolved when the test runs.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "pytest_chaos.TEST_NAMESPACE"


#: Use as a marker's ``namespace=``: the test's ``chaos_namespace``, known only once it runs.
TEST_NAMESPACE = _TestNamespace("<the test's chaos_namespace>")


def resolve_namespaces(value: Any, item: pytest.Item) -> Any:
    """Replace TEST_NAMESPACE in a marker's namespace argument by the test's namespace."""
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})

    def one(name: Any) -> Any:
        if isinstance(name, _TestNamespace):
            return funcargs["chaos_namespace"]
        return name

    if isinstance(value, str):
        return one(value)
    return [one(v) for v in value]


def chaos_pod_kill(
    selector: str | None = None,
    *,
    namespace: str | Sequence[str],
    mode: str = "one",
    value: float | None = None,
    grace_period: int | None = None,
    field_selector: str | None = None,
    node: str | None = None,
    phase: str | None = None,
    within: Duration = 60,
) -> None:
    """Kill pods matching selector in namespace while the test runs (``chaos.pods.kill``)."""
    from pytest_chaos.faults.pods import check_grace_period, namespaces_of
    from pytest_chaos.targeting import PodFilter, parse_label_selector, validate_mode

    parse_label_selector(selector, name="selector")
    PodFilter(label_selector=selector, node=node, phase=phase)
    validate_mode(mode, value)
    namespaces_of(namespace)
    if field_selector is not None:
        _name_of("field_selector", field_selector)
    as_seconds(within, name="within")
    check_grace_period(grace_period)


def chaos_random_pods(
    *,
    namespace: str,
    every: Duration,
    for_: Duration,
    selector: str | None = None,
    exclude: str | None = None,
    max_in_flight: int = 1,
    kube_monkey: bool = False,
) -> None:
    """Kill random pods of namespace on a schedule during the test (``chaos.random.pods``)."""
    from pytest_chaos.faults.monkey_plan import check_random_pods

    check_random_pods(
        namespace=namespace,
        every=every,
        for_=for_,
        selector=selector,
        exclude=exclude,
        max_in_flight=max_in_flight,
        kube_monkey=kube_monkey,
    )


def chaos_deployment_delete(name: str, *, namespace: str, within: Duration = 60) -> None:
    """Delete a Deployment during the test, re-create it after (``chaos.deployments.delete``)."""
    _name_of("name", name)
    _name_of("namespace", namespace)
    as_seconds(within, name="within")


def chaos_deployment_scale(name: str, *, namespace: str, replicas: int) -> None:
    """Scale a Deployment during the test, back after (``chaos.deployments.scale``)."""
    _name_of("name", name)
    _name_of("namespace", namespace)
    _replicas(replicas)


def chaos_deployment_restart(name: str, *, namespace: str) -> None:
    """Roll every pod of a Deployment, as ``kubectl rollout restart`` does."""
    _name_of("name", name)
    _name_of("namespace", namespace)


def chaos_statefulset_delete(name: str, *, namespace: str, within: Duration = 60) -> None:
    """Delete a StatefulSet during the test, re-create it after (``chaos.statefulsets.delete``)."""
    chaos_deployment_delete(name, namespace=namespace, within=within)


def chaos_statefulset_scale(name: str, *, namespace: str, replicas: int) -> None:
    """Scale a StatefulSet during the test, back after (``chaos.statefulsets.scale``)."""
    chaos_deployment_scale(name, namespace=namespace, replicas=replicas)


def chaos_statefulset_restart(name: str, *, namespace: str) -> None:
    """Roll every pod of a StatefulSet (``chaos.statefulsets.restart``)."""
    chaos_deployment_restart(name, namespace=namespace)


def _replicas(replicas: object) -> None:
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ChaosConfigError(f"replicas={replicas!r} must be a whole number >= 0")


def chaos_istio_abort(
    host: str,
    *,
    namespace: str,
    status: int = 503,
    percent: float = 100,
    header: str | tuple[str, str] | None = None,
    version: str | None = None,
) -> None:
    """Abort requests to host with status on its VirtualService routes (``chaos.istio.abort``)."""
    from pytest_chaos.faults.virtualservice import abort_spec

    abort_spec(
        host, namespace=namespace, status=status, percent=percent, header=header, version=version
    )


def chaos_istio_delay(
    host: str,
    *,
    namespace: str,
    delay: Duration,
    percent: float = 100,
    header: str | tuple[str, str] | None = None,
    version: str | None = None,
) -> None:
    """Delay requests to host on its VirtualService routes (``chaos.istio.delay``)."""
    from pytest_chaos.faults.virtualservice import delay_spec

    delay_spec(
        host, namespace=namespace, delay=delay, percent=percent, header=header, version=version
    )


def chaos_node_drain(
    name: str | Sequence[str] | None = None,
    *,
    selector: str | None = None,
    hosting: str | None = None,
    namespace: str | None = None,
    count: int = 1,
    timeout: Duration = "120s",
    delete_emptydir_data: bool = False,
    concurrency: int = 10,
) -> None:
    """Drain nodes (cordon, evict honouring budgets) during the test (``chaos.nodes.drain``)."""
    from pytest_chaos.faults.node_rules import check_drain_arguments

    check_drain_arguments(
        name,
        selector=selector,
        hosting=hosting,
        namespace=namespace,
        count=count,
        timeout=timeout,
        delete_emptydir_data=delete_emptydir_data,
        concurrency=concurrency,
    )


def chaos_node_taint(
    key: str,
    *,
    name: str | Sequence[str] | None = None,
    selector: str | None = None,
    hosting: str | None = None,
    namespace: str | None = None,
    value: str | None = None,
    effect: str = "NoSchedule",
    count: int = 1,
) -> None:
    """Taint nodes during the test; exactly that taint is removed after (``chaos.nodes.taint``)."""
    from pytest_chaos.faults.node_rules import check_taint_arguments

    check_taint_arguments(
        key,
        name=name,
        selector=selector,
        hosting=hosting,
        namespace=namespace,
        value=value,
        effect=effect,
        count=count,
    )


def chaos_node_cordon(
    name: str | Sequence[str] | None = None,
    *,
    selector: str | None = None,
    hosting: str | None = None,
    namespace: str | None = None,
    count: int = 1,
) -> None:
    """Cordon nodes during the test; uncordon after (``chaos.nodes.cordon``)."""
    from pytest_chaos.faults.node_rules import check_cordon_arguments

    check_cordon_arguments(
        name, selector=selector, hosting=hosting, namespace=namespace, count=count
    )


def chaos_node_delete(
    name: str | Sequence[str] | None = None,
    *,
    selector: str | None = None,
    hosting: str | None = None,
    namespace: str | None = None,
    count: int = 1,
) -> None:
    """Delete Node objects during the test; re-create them after (``chaos.nodes.delete``)."""
    chaos_node_cordon(name, selector=selector, hosting=hosting, namespace=namespace, count=count)


def chaos_node_stop(
    name: str | Sequence[str] | None = None,
    *,
    selector: str | None = None,
    count: int = 1,
    timeout: Duration = "60s",
) -> None:
    """Stop real nodes during the test; start them again after (``chaos.nodes.stop``)."""
    from pytest_chaos.durations import as_seconds

    chaos_node_cordon(name, selector=selector, count=count)
    as_seconds(timeout, name="timeout")


def chaos_node_zone_outage(zone: str, *, how: str = "drain", timeout: Duration = "120s") -> None:
    """Take every node of a zone out during the test (``chaos.nodes.zone_outage``)."""
    from pytest_chaos.faults.node_rules import check_zone_outage_arguments

    check_zone_outage_arguments(zone, how=how, timeout=timeout)


def chaos_network_partition(
    selector: str | None,
    *,
    namespace: str,
    peers: str | dict[str, str] | None = None,
    direction: str = "both",
) -> None:
    """Isolate pods with a NetworkPolicy during the test (``chaos.network.partition``)."""
    from pytest_chaos.faults.network import check_partition

    check_partition(selector, namespace=namespace, peers=peers, direction=direction)


def chaos_network_cut(
    selector: str | None,
    *,
    namespace: str,
    to: str,
    port: int | str | None = None,
    mode: str = "one",
    value: float | None = None,
    container: str | None = None,
    image: str | None = None,
    within: Duration = 60,
) -> None:
    """Cut pods off a Service or IP during the test (``chaos.network.cut``)."""
    from pytest_chaos.faults.network import check_cut

    check_cut(
        selector, namespace=namespace, to=to, port=port, mode=mode, value=value, within=within
    )
    _optional_name("container", container)
    _optional_name("image", image)


def chaos_network_loss(
    selector: str | None,
    *,
    namespace: str,
    percent: float,
    to: str | None = None,
    port: int | str | None = None,
    mode: str = "one",
    value: float | None = None,
    container: str | None = None,
    image: str | None = None,
    within: Duration = 60,
) -> None:
    """Drop a share of pods' packets during the test (``chaos.network.loss``)."""
    from pytest_chaos.faults.network import check_loss_percent, check_port, check_to
    from pytest_chaos.targeting import parse_label_selector, validate_mode

    parse_label_selector(selector, name="selector")
    _name_of("namespace", namespace)
    check_loss_percent(percent)
    if to is not None:
        check_to(to)
    if check_port(port) is not None and to is None:
        raise ChaosConfigError(f"port={port!r} needs to= (the Service or IP it belongs to)")
    validate_mode(mode, value)
    _optional_name("container", container)
    _optional_name("image", image)
    as_seconds(within, name="within")


def chaos_network_latency(
    selector: str | None,
    *,
    namespace: str,
    delay: Duration,
    jitter: Duration = 0,
    mode: str = "one",
    value: float | None = None,
    container: str | None = None,
    image: str | None = None,
    within: Duration = 60,
) -> None:
    """Delay pods' packets during the test (``chaos.network.latency``)."""
    from pytest_chaos.faults.network import check_delay
    from pytest_chaos.targeting import parse_label_selector, validate_mode

    parse_label_selector(selector, name="selector")
    _name_of("namespace", namespace)
    check_delay(delay, jitter)
    validate_mode(mode, value)
    _optional_name("container", container)
    _optional_name("image", image)
    as_seconds(within, name="within")


def chaos_stress_pods(
    selector: str | None,
    *,
    namespace: str,
    cpu: str | float | None = None,
    memory: str | int | None = None,
    mode: str = "one",
    value: float | None = None,
    duration: Duration = "10m",
    image: str | None = None,
    container: str | None = None,
    within: Duration = 60,
) -> None:
    """Burn CPU and hold memory inside pods during the test (``chaos.stress.pods``)."""
    from pytest_chaos.faults.stress import check_stress_pods

    check_stress_pods(
        selector,
        namespace=namespace,
        cpu=cpu,
        memory=memory,
        mode=mode,
        value=value,
        duration=duration,
        image=image,
        container=container,
    )
    as_seconds(within, name="within")


def chaos_stress_nodes(
    *,
    selector: str | None = None,
    name: str | Sequence[str] | None = None,
    cpu: str | float | None = None,
    memory: str | int | None = None,
    count: int = 1,
    namespace: str = "default",
    duration: Duration = "10m",
    image: str | None = None,
    within: Duration = 60,
) -> None:
    """Burn CPU and hold memory on nodes with a pinned pod (``chaos.stress.nodes``)."""
    from pytest_chaos.faults.stress import check_stress_nodes

    check_stress_nodes(
        selector=selector,
        name=name,
        cpu=cpu,
        memory=memory,
        count=count,
        namespace=namespace,
        duration=duration,
        image=image,
    )
    as_seconds(within, name="within")


def chaos_load_http(
    url: str,
    *,
    namespace: str,
    rate: float | None = None,
    concurrency: int = 10,
    duration: Duration = "30s",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: Duration = "2s",
    node: str | None = None,
    image: str | None = None,
    within: Duration = 60,
) -> None:
    """Send HTTP load from a pod in the cluster while the test runs (``chaos.load.http``)."""
    from pytest_chaos.faults.load_plan import check_load_http

    check_load_http(
        url,
        namespace=namespace,
        rate=rate,
        concurrency=concurrency,
        duration=duration,
        method=method,
        headers=headers,
        timeout=timeout,
        node=node,
        image=image,
        within=within,
    )


def steady_state(
    *,
    namespace: str,
    deployments: Sequence[str | Mapping[str, Any]] = (),
    statefulsets: Sequence[str | Mapping[str, Any]] = (),
    pods: Sequence[str] = (),
    http: Sequence[str | Mapping[str, Any] | Any] = (),
    within: Duration = "30s",
    during: bool = False,
) -> None:
    """Check before the faults (ERROR), after their revert (FAIL); ``during``: no dip allowed.

    Args:
        namespace: where the workloads, pods and Services are (``TEST_NAMESPACE`` works).
        deployments: names, or ``{"name": "web", "min_ready": 2}`` (``min_ready``: the fewest
            ready pods allowed during the faults with ``during=True``; default all replicas).
        statefulsets: the same for StatefulSets.
        pods: label selectors: every matching pod ready (Terminating pods never count).
        http: URLs, ``pytest_chaos.service_url("web", port="http", path="/health")`` (resolved
            when the test runs), or dicts of ``steady.http``'s arguments with ``url`` (``expect``,
            ``body``, ``method``, ``headers``, ``timeout``) and ``every`` (monitor interval).
        within: how long each check may wait, before and after (recovery).
        during: also monitor every hypothesis from before the faults until their revert; any dip
            fails the test as "deviated during chaos".
    """
    from pytest_chaos.hypotheses import check_http, check_pods, check_workloads

    _name_of("namespace", namespace)
    check_workloads("deployments", deployments)
    check_workloads("statefulsets", statefulsets)
    check_pods(pods)
    check_http(http)
    as_seconds(within, name="within")
    if not isinstance(during, bool):
        raise ChaosConfigError(f"during={during!r} must be True or False")


def _name_of(argument: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ChaosConfigError(f"{argument}={value!r} must be a non-empty string")


def _optional_name(argument: str, value: object) -> None:
    if value is not None:
        _name_of(argument, value)


@dataclass(frozen=True, slots=True)
class FaultMarker:
    """A fault marker and the fixture verb it calls."""

    name: str
    signature: Callable[..., None]
    family: str
    verb: str


FAULT_MARKERS: dict[str, FaultMarker] = {
    m.name: m
    for m in (
        FaultMarker("chaos_pod_kill", chaos_pod_kill, "pods", "kill"),
        FaultMarker("chaos_random_pods", chaos_random_pods, "random", "pods"),
        FaultMarker("chaos_deployment_delete", chaos_deployment_delete, "deployments", "delete"),
        FaultMarker("chaos_deployment_scale", chaos_deployment_scale, "deployments", "scale"),
        FaultMarker("chaos_deployment_restart", chaos_deployment_restart, "deployments", "restart"),
        FaultMarker("chaos_statefulset_delete", chaos_statefulset_delete, "statefulsets", "delete"),
        FaultMarker("chaos_statefulset_scale", chaos_statefulset_scale, "statefulsets", "scale"),
        FaultMarker(
            "chaos_statefulset_restart", chaos_statefulset_restart, "statefulsets", "restart"
        ),
        FaultMarker("chaos_istio_abort", chaos_istio_abort, "istio", "abort"),
        FaultMarker("chaos_istio_delay", chaos_istio_delay, "istio", "delay"),
        FaultMarker("chaos_node_cordon", chaos_node_cordon, "nodes", "cordon"),
        FaultMarker("chaos_node_drain", chaos_node_drain, "nodes", "drain"),
        FaultMarker("chaos_node_taint", chaos_node_taint, "nodes", "taint"),
        FaultMarker("chaos_node_delete", chaos_node_delete, "nodes", "delete"),
        FaultMarker("chaos_node_stop", chaos_node_stop, "nodes", "stop"),
        FaultMarker("chaos_node_zone_outage", chaos_node_zone_outage, "nodes", "zone_outage"),
        FaultMarker("chaos_network_partition", chaos_network_partition, "network", "partition"),
        FaultMarker("chaos_network_cut", chaos_network_cut, "network", "cut"),
        FaultMarker("chaos_network_loss", chaos_network_loss, "network", "loss"),
        FaultMarker("chaos_network_latency", chaos_network_latency, "network", "latency"),
        FaultMarker("chaos_stress_pods", chaos_stress_pods, "stress", "pods"),
        FaultMarker("chaos_stress_nodes", chaos_stress_nodes, "stress", "nodes"),
        FaultMarker("chaos_load_http", chaos_load_http, "load", "http"),
    )
}
SIGNATURES: dict[str, Callable[..., None]] = {
    **{name: m.signature for name, m in FAULT_MARKERS.items()},
    "steady_state": steady_state,
}


def marker_lines() -> list[str]:
    """The ``markers`` ini lines: each marker with its full signature and help."""
    lines = [
        "chaos: a resilience (chaos) test; selected with `pytest -m chaos` (added "
        "automatically to tests that use chaos fixtures or chaos_* markers)"
    ]
    for name, function in SIGNATURES.items():
        full = inspect.signature(function)
        # Shown as users call it: chaos_pod_kill(selector, *, namespace, mode='one', ...).
        signature = str(
            full.replace(
                parameters=[
                    p.replace(annotation=inspect.Parameter.empty) for p in full.parameters.values()
                ],
                return_annotation=inspect.Signature.empty,
            )
        )
        summary = (function.__doc__ or "").strip().splitlines()[0]
        lines.append(f"{name}{signature}: {summary}")
    return lines


def _explain(name: str, function: Callable[..., None], exc: TypeError) -> str:
    message = str(exc).replace(f"{function.__name__}()", f"{name}()")
    if "unexpected keyword argument" in message:
        bad = message.rsplit("'", 2)[-2]
        params = list(inspect.signature(function).parameters)
        close = difflib.get_close_matches(bad, params, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def problems_of(item: pytest.Item) -> Iterable[str]:
    """Every problem with the chaos markers of one test, as messages naming the test."""
    for mark in item.iter_markers():
        if mark.name.startswith("chaos_") and mark.name not in SIGNATURES:
            close = difflib.get_close_matches(mark.name, list(SIGNATURES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield f"{item.nodeid}: unknown marker {mark.name!r}{hint}"
            continue
        function = SIGNATURES.get(mark.name)
        if function is None:
            continue
        try:
            function(*mark.args, **mark.kwargs)
        except TypeError as exc:
            yield f"{item.nodeid}: {_explain(mark.name, function, exc)}"
        except ChaosConfigError as exc:
            yield f"{item.nodeid}: {mark.name}(): {exc}"


def fault_markers(item: pytest.Item) -> list[tuple[FaultMarker, tuple[Any, ...], dict[str, Any]]]:
    """The fault markers of a test, closest first reversed: in the order they are written."""
    found = [
        (FAULT_MARKERS[m.name], tuple(m.args), dict(m.kwargs))
        for m in item.iter_markers()
        if m.name in FAULT_MARKERS
    ]
    return list(reversed(found))


def uses_test_namespace(item: pytest.Item) -> bool:
    """True when a chaos marker of the test names TEST_NAMESPACE."""
    for mark in item.iter_markers():
        if mark.name in SIGNATURES:
            value = mark.kwargs.get("namespace")
            values = [value] if isinstance(value, str) else list(value or [])
            if any(isinstance(v, _TestNamespace) for v in values):
                return True
    return False


def uses_chaos(item: pytest.Item) -> bool:
    """True for tests that use a chaos fixture or marker (they get the ``chaos`` marker)."""
    fixtures = set(getattr(item, "fixturenames", ()))
    if fixtures & {"chaos", "module_chaos", "class_chaos"}:
        return True
    return any(m.name in SIGNATURES for m in item.iter_markers())
