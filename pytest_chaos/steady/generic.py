"""``steady.object(api_version, kind, name, namespace=)``: a hypothesis about any one object.

The kind is resolved through the API's discovery (so custom resources such as an Istio
VirtualService work as well as ConfigMaps); the object is read by watch. ``assert_that`` waits
until a value of it (a path, see ``paths``, or a callable of the object's JSON) is tolerated
(see ``tolerance``); ``monitor`` records whether it stays so.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_chaos.durations import Duration
from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.kube import Kube
from pytest_chaos.steady.counting import Count
from pytest_chaos.steady.object_monitor import ObjectMonitor, Source
from pytest_chaos.steady.objects import _Probe
from pytest_chaos.steady.paths import parse_path, read_path, render
from pytest_chaos.steady.tolerance import UNSET, Tolerance, tolerance

if TYPE_CHECKING:
    from pytest_chaos.report.timeline import Timeline

PathOrCallable = str | Callable[[dict[str, Any]], Any]

_SEEN_LIMIT = 120


class ObjectProbe(_Probe):
    """One object of any kind: ``assert_that(path, expected, within=)``, ``monitor(path, ...)``.

    Args:
        kube: the cluster.
        api_version: ``"v1"``, ``"apps/v1"``, ``"networking.istio.io/v1"``...
        kind: ``"ConfigMap"``, ``"Deployment"``, ``"VirtualService"``...
        name: the object's name.
        namespace: its namespace (None for a cluster-scoped kind).
    """

    def __init__(
        self,
        kube: Kube,
        api_version: str,
        kind: str,
        name: str,
        *,
        namespace: str | None = None,
        timeline: Timeline | None = None,
        monitors: list[ObjectMonitor] | None = None,
    ) -> None:
        """Probe the object; the kind is resolved (and checked) when first needed."""
        super().__init__(kube, namespace, timeline=timeline, monitors=monitors)
        for arg, value in (("api_version", api_version), ("kind", kind), ("name", name)):
            if not isinstance(value, str) or not value:
                raise ChaosConfigError(f"{arg}={value!r} must be a non-empty string")
        self.api_version = api_version
        self.kind = kind
        self.name = name

    @property
    def ref(self) -> str:
        """``VirtualService shop/web`` (``Node n1`` when cluster-scoped)."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @functools.cached_property
    def _list_fn(self) -> Callable[..., Any]:
        group, _, version = self.api_version.rpartition("/")
        resource = self._resource(group, version)
        namespaced = bool(resource["namespaced"])
        if namespaced and not self.namespace:
            raise ChaosConfigError(
                f"{self.kind} ({self.api_version}) is namespaced; pass namespace= to steady.object"
            )
        if not namespaced and self.namespace:
            raise ChaosConfigError(
                f"{self.kind} ({self.api_version}) is cluster-scoped; drop namespace="
                f"{self.namespace!r}"
            )
        plural = str(resource["name"])
        if not group:
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", self.kind).lower()
            if namespaced:
                return functools.partial(
                    getattr(self._kube.core, f"list_namespaced_{snake}"), self.namespace
                )
            fn: Callable[..., Any] = getattr(self._kube.core, f"list_{snake}")
            return fn
        if namespaced:
            return functools.partial(
                self._kube.custom.list_namespaced_custom_object,
                group,
                version,
                str(self.namespace),
                plural,
            )
        return functools.partial(
            self._kube.custom.list_cluster_custom_object, group, version, plural
        )

    def _resource(self, group: str, version: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        from pytest_chaos.kube.retry import call

        try:
            if group:
                served = call(self._kube.custom.get_api_resources, group, version)
            else:
                served = call(self._kube.core.get_api_resources)
        except ApiException as exc:
            if exc.status == 404:
                raise ChaosConfigError(
                    f"api_version={self.api_version!r} is not served by this cluster (is its "
                    "CRD installed? `kubectl api-versions` lists what is)"
                ) from None
            raise
        resources = [r for r in self._kube.serialize(served)["resources"] if "/" not in r["name"]]
        for resource in resources:
            if resource["kind"] == self.kind:
                return dict(resource)
        kinds = ", ".join(sorted({r["kind"] for r in resources})) or "none"
        raise ChaosConfigError(
            f"kind={self.kind!r} is not served by {self.api_version} (it serves: {kinds})"
        )

    def _source(self) -> list[Source]:
        return [(self._list_fn, {"field_selector": f"metadata.name={self.name}"})]

    def get(self) -> dict[str, Any] | None:
        """The object now, as the API's JSON (None when it does not exist)."""
        items = self._kube.list_raw(self._list_fn, **self._source()[0][1]).get("items") or []
        return dict(items[0]) if items else None

    def _judge(
        self, path_or_callable: PathOrCallable, check: Tolerance
    ) -> tuple[str, Callable[[list[list[dict[str, Any]]]], Count]]:
        value_of: Callable[[dict[str, Any]], Any]
        if isinstance(path_or_callable, str):
            steps = parse_path(path_or_callable, name="path")
            label = render(steps)
            value_of = functools.partial(read_path, steps=steps)
        elif callable(path_or_callable):
            label = getattr(path_or_callable, "__qualname__", None) or repr(path_or_callable)
            value_of = path_or_callable
        else:
            raise ChaosConfigError(
                f"path={path_or_callable!r} is neither a path ('status.readyReplicas') nor a "
                "callable taking the object's JSON"
            )

        def judge(lists: list[list[dict[str, Any]]]) -> Count:
            objects = lists[0]
            if not objects:
                return Count(None, None, False, f"{self.ref} does not exist")
            try:
                value = value_of(objects[0])
            except Exception as exc:
                return Count(None, None, False, f"{label} raised {type(exc).__name__}: {exc}")
            seen = f"{label} = {_short(value)}"
            return Count(None, None, check.judge(value), seen)

        return label, judge

    def assert_that(
        self,
        path_or_callable: PathOrCallable,
        expected: Any = UNSET,
        *,
        predicate: Callable[[Any], bool] | None = None,
        within: Duration = 0,
    ) -> Any:
        """Until the value at the path (or of the callable) is tolerated; return it.

        Args:
            path_or_callable: e.g. ``"status.conditions[?type=='Ready'].status"``, or a
                callable taking the object's JSON.
            expected: an exact value, ``range(a, b)``, ``(low, high)``, or a compiled regex.
            predicate: instead of expected, a callable taking the value and returning True.
            within: how long to wait (by watching) for it.

        Raises:
            NotSteadyError: it was not tolerated within ``within``; says the path, the
                expectation and the value seen.
        """
        check = tolerance(expected, predicate)
        label, judge = self._judge(path_or_callable, check)
        [objects] = self._hold(self.ref, f"{label} {check.text}", self._source(), judge, within)
        if isinstance(path_or_callable, str):
            return read_path(objects[0], parse_path(path_or_callable))
        return path_or_callable(objects[0])

    def monitor(
        self,
        path_or_callable: PathOrCallable,
        expected: Any = UNSET,
        *,
        predicate: Callable[[Any], bool] | None = None,
    ) -> ObjectMonitor:
        """Record over time whether the value stays tolerated: an ObjectMonitor."""
        check = tolerance(expected, predicate)
        label, judge = self._judge(path_or_callable, check)
        self._list_fn  # noqa: B018 - resolve the kind now: a typo fails here, not in a thread
        return self._register(
            ObjectMonitor(
                self.ref,
                f"{label} {check.text}",
                self._source(),
                judge,
                timeline=self._timeline,
                diagnosis=lambda: self._diagnosis(None),
            )
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SEEN_LIMIT else text[: _SEEN_LIMIT - 3] + "..."
