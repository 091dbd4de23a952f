"""Markers: one signature function per marker, and collection-time validation.

Each ``chaos_<family>_<verb>`` marker has a fixture twin ``chaos.<family>.<verb>`` taking the same
arguments. Markers are checked when tests are collected: every problem of every test is reported
at once, in one usage error (exit code 4), before anything touches the cluster.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.faults.checks import check_name


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

    check_name("namespace", namespace)
    check_workloads("deployments", deployments)
    check_workloads("statefulsets", statefulsets)
    check_pods(pods)
    check_http(http)
    as_seconds(within, name="within")
    if not isinstance(during, bool):
        raise ChaosConfigError(f"during={during!r} must be True or False")


@dataclass(frozen=True, slots=True)
class FaultMarker:
    """A fault marker, the fixture verb it calls and the argument check the two share.

    The check (``module:function``) takes exactly the verb's arguments (a unit test holds them
    equal); it is imported when a test uses the marker, so collecting other tests costs nothing.
    """

    name: str
    family: str
    verb: str
    check: str
    summary: str

    @property
    def signature(self) -> Callable[..., object]:
        """The verb's argument check: called with the marker's arguments at collection."""
        module, _, function = self.check.partition(":")
        found: Callable[..., object] = getattr(importlib.import_module(module), function)
        return found

    @property
    def help(self) -> str:
        """One line for ``pytest --markers``."""
        return f"{self.summary} (``chaos.{self.family}.{self.verb}``)."


_F = "pytest_chaos.faults."
FAULT_MARKERS: dict[str, FaultMarker] = {
    m.name: m
    for m in (
        FaultMarker(
            "chaos_pod_kill", "pods", "kill", _F + "pods:check_kill",
            "Kill pods matching selector in namespace while the test runs",
        ),
        FaultMarker(
            "chaos_random_pods", "random", "pods", _F + "monkey_plan:check_random_pods",
            "Kill random pods of namespace on a schedule during the test",
        ),
        FaultMarker(
            "chaos_deployment_delete", "deployments", "delete", _F + "deployments:check_delete",
            "Delete a Deployment during the test, re-create it after",
        ),
        FaultMarker(
            "chaos_deployment_scale", "deployments", "scale", _F + "deployments:check_scale",
            "Scale a Deployment during the test, back after",
        ),
        FaultMarker(
            "chaos_deployment_restart", "deployments", "restart", _F + "deployments:check_restart",
            "Roll every pod of a Deployment, as ``kubectl rollout restart`` does",
        ),
        FaultMarker(
            "chaos_statefulset_delete", "statefulsets", "delete", _F + "deployments:check_delete",
            "Delete a StatefulSet during the test, re-create it after",
        ),
        FaultMarker(
            "chaos_statefulset_scale", "statefulsets", "scale", _F + "deployments:check_scale",
            "Scale a StatefulSet during the test, back after",
        ),
        FaultMarker(
            "chaos_statefulset_restart", "statefulsets", "restart",
            _F + "deployments:check_restart", "Roll every pod of a StatefulSet",
        ),
        FaultMarker(
            "chaos_istio_abort", "istio", "abort", _F + "virtualservice:abort_spec",
            "Abort requests to host with status on its VirtualService routes",
        ),
        FaultMarker(
            "chaos_istio_delay", "istio", "delay", _F + "virtualservice:delay_spec",
            "Delay requests to host on its VirtualService routes",
        ),
        FaultMarker(
            "chaos_node_cordon", "nodes", "cordon", _F + "node_rules:check_cordon_arguments",
            "Cordon nodes during the test; uncordon after",
        ),
        FaultMarker(
            "chaos_node_drain", "nodes", "drain", _F + "node_rules:check_drain_arguments",
            "Drain nodes (cordon, evict honouring budgets) during the test",
        ),
        FaultMarker(
            "chaos_node_taint", "nodes", "taint", _F + "node_rules:check_taint_arguments",
            "Taint nodes during the test; exactly that taint is removed after",
        ),
        FaultMarker(
            "chaos_node_delete", "nodes", "delete", _F + "node_rules:check_cordon_arguments",
            "Delete Node objects during the test; re-create them after",
        ),
        FaultMarker(
            "chaos_node_stop", "nodes", "stop", _F + "node_rules:check_stop_arguments",
            "Stop real nodes during the test; start them again after",
        ),
        FaultMarker(
            "chaos_node_zone_outage", "nodes", "zone_outage",
            _F + "node_rules:check_zone_outage_arguments",
            "Take every node of a zone out during the test",
        ),
        FaultMarker(
            "chaos_network_partition", "network", "partition", _F + "network:check_partition",
            "Isolate pods with a NetworkPolicy during the test",
        ),
        FaultMarker(
            "chaos_network_cut", "network", "cut", _F + "network:check_cut",
            "Cut pods off a Service or IP during the test",
        ),
        FaultMarker(
            "chaos_network_loss", "network", "loss", _F + "network:check_loss",
            "Drop a share of pods' packets during the test",
        ),
        FaultMarker(
            "chaos_network_latency", "network", "latency", _F + "network:check_latency",
            "Delay pods' packets during the test",
        ),
        FaultMarker(
            "chaos_stress_pods", "stress", "pods", _F + "stress:check_stress_pods",
            "Burn CPU and hold memory inside pods during the test",
        ),
        FaultMarker(
            "chaos_stress_nodes", "stress", "nodes", _F + "stress:check_stress_nodes",
            "Burn CPU and hold memory on nodes with a pinned pod",
        ),
        FaultMarker(
            "chaos_load_http", "load", "http", _F + "load_plan:check_load_http",
            "Send HTTP load from a pod in the cluster while the test runs",
        ),
    )
}  # fmt: skip
#: Arguments a check takes that its marker does not (the command line's names in messages).
CHECK_ONLY = ("names",)


def _check_of(name: str) -> Callable[..., object] | None:
    if name in FAULT_MARKERS:
        return FAULT_MARKERS[name].signature
    return steady_state if name == "steady_state" else None


def _as_called(function: Callable[..., object]) -> str:
    """``(selector, *, namespace, mode='one', ...)``: as users write it, no annotations."""
    full = inspect.signature(function)
    return str(
        full.replace(
            parameters=[
                p.replace(annotation=inspect.Parameter.empty)
                for p in full.parameters.values()
                if p.name not in CHECK_ONLY
            ],
            return_annotation=inspect.Signature.empty,
        )
    )


def marker_lines(*, signatures: bool = True) -> list[str]:
    """The ``markers`` ini lines: each marker with its help (and its arguments: ``signatures``).

    The arguments come from the checks, which are imported for them: ``pytest --markers`` asks
    for them; other runs only register the names.
    """
    lines = [
        "chaos: a resilience (chaos) test; selected with `pytest -m chaos` (added "
        "automatically to tests that use chaos fixtures or chaos_* markers)"
    ]
    for marker in FAULT_MARKERS.values():
        arguments = _as_called(marker.signature) if signatures else "(...)"
        lines.append(f"{marker.name}{arguments}: {marker.help}")
    summary = (steady_state.__doc__ or "").strip().splitlines()[0]
    lines.append(f"steady_state{_as_called(steady_state)}: {summary}")
    return lines


def _explain(name: str, function: Callable[..., object], exc: TypeError) -> str:
    message = str(exc).replace(f"{function.__name__}()", f"{name}()")
    if "unexpected keyword argument" in message:
        bad = message.rsplit("'", 2)[-2]
        params = [p for p in inspect.signature(function).parameters if p not in CHECK_ONLY]
        close = difflib.get_close_matches(bad, params, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def problems_of(item: pytest.Item) -> Iterable[str]:
    """Every problem with the chaos markers of one test, as messages naming the test."""
    known = [*FAULT_MARKERS, "steady_state"]
    for mark in item.iter_markers():
        if mark.name.startswith("chaos_") and mark.name not in known:
            close = difflib.get_close_matches(mark.name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield f"{item.nodeid}: unknown marker {mark.name!r}{hint}"
            continue
        function = _check_of(mark.name)
        if function is None:
            continue
        for extra in set(CHECK_ONLY) & set(mark.kwargs):
            yield f"{item.nodeid}: {mark.name}() got an unexpected keyword argument {extra!r}"
        try:
            function(*mark.args, **{k: v for k, v in mark.kwargs.items() if k not in CHECK_ONLY})
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
        if mark.name in FAULT_MARKERS or mark.name == "steady_state":
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
    return any(m.name in FAULT_MARKERS or m.name == "steady_state" for m in item.iter_markers())
