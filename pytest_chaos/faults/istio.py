"""chaos.istio: HTTP aborts and delays on Istio VirtualService routes.

``chaos.istio.abort(host, namespace=...)`` and ``chaos.istio.delay(host, namespace=..., delay=)``
put Istio's client-side fault injection (``spec.http[].fault``) on every VirtualService route in
``namespace`` that carries traffic for ``host``: the routes of VirtualServices whose ``hosts``
name it, and the routes with a ``destination.host`` on it (with or without a ``subset``). The
short name and the FQDN forms of a Service are one host (``web`` = ``web.shop.svc.cluster.local``
in namespace ``shop``). When no VirtualService routes to the host but a Service of that name
exists, a VirtualService of our own is created (``pytest-chaos-<host>-<tag>``, labelled
``app.kubernetes.io/managed-by=pytest-chaos``) and deleted on revert. Otherwise the error lists
the Services and VirtualService hosts that do exist.

How the fault is set, and undone exactly:

* Without ``header``: ``fault.abort`` (or ``fault.delay``) is added next to whatever fault the
  route has; an existing delay stays when an abort is added, and the other way round. A route
  that already has a fault of the same kind is refused (it is someone else's; overwriting it would
  make an exact restore depend on luck). Revert removes only the key the fault added, and only
  while it still holds the value set: removing a delay never removes an abort.
* With ``header="x-chaos"`` (any value) or ``"x-chaos=on"``: only test requests carrying the
  header are hit. A copy of each route is inserted right before it, named
  ``pytest-chaos-<tag>``, matching the route's own conditions AND the header, carrying the fault;
  the original route is untouched. Revert removes exactly the routes of that name. Safe on a
  shared cluster.
* Every write is a JSON patch carrying the resourceVersion read (409 when the object changed:
  re-read, re-decide). The undo record (ledger) is written before the patch and holds each
  touched route's position, identity and previous fault, so ``pytest-chaos cleanup`` restores it
  after a SIGKILL.
* Someone else changed the fault meanwhile (a colleague, or a GitOps or progressive-delivery
  controller such as Argo CD or Flagger, which overwrite VirtualServices): DriftError naming the
  VirtualService, the route and the change; nothing is clobbered. A VirtualService deleted
  meanwhile took the fault with it: "nothing to restore". One replaced by another object (new
  uid) is left alone, and reported as drift if it still carries the fault.
* After the patch the VirtualService is read back: a fault the schema pruned is an
  InconclusiveError, one the API server rejects is an InjectError with the server's message.

Caveats Istio users must know:

* **A fault on a route disables that route's retries and timeout** (Istio's ``HTTPRoute.fault``
  documentation; istio/istio#13705). A test of "our retries absorb the errors" must fault the
  *callee's* route and keep the retries on the *caller's* VirtualService, as the book does with
  go-demo-8 and the repeater. Faulted routes that have retries or a timeout are named in the
  test's timeline and in ``fault.details["disabled"]``.
* A VirtualService acts only where it is bound: its ``gateways`` (``mesh`` by default). A fault
  on a VirtualService bound to a gateway only is not seen by mesh traffic, and the other way
  round (chaostoolkit-istio#17); ``fault.details["gateways"]`` shows the bindings.
* Only VirtualServices in ``namespace`` are considered; the created VirtualService routes to the
  Service without subsets.

``version=None`` uses the version of ``networking.istio.io`` the API server prefers (v1 on Istio
1.22+); ``"v1"``, ``"v1beta1"`` or ``"v1alpha3"`` pins one. Without Istio's CRDs the test is
skipped with the reason.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, NoReturn

from pytest_chaos.durations import Duration
from pytest_chaos.errors import (
    DriftError,
    InconclusiveError,
    InjectError,
    RevertError,
)
from pytest_chaos.faults import Fault, FaultContext, injecting
from pytest_chaos.faults.undo import FAULT_LABEL, reverter
from pytest_chaos.faults.virtualservice import (
    GROUP,
    NOT_SERVED,
    PLURAL,
    FaultSpec,
    JsonPatch,
    abort_spec,
    choose_version,
    claiming,
    delay_spec,
    drift_error,
    effective,
    inject_patch,
    managed_manifest,
    managed_name,
    nothing_to_fault,
    overridden_policies,
    revert_patch,
    route_name,
    service_name,
    targeted_routes,
    unchanged_since,
    unknown_host,
)
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import call, describe
from pytest_chaos.ledger import MANAGED_BY, MANAGED_BY_LABEL, UndoRecord

JSON_PATCH = "application/json-patch+json"
#: Undo kinds: a fault patched into a VirtualService, and a VirtualService we created.
UNDO_FAULT = "istio.fault"
UNDO_MANAGED = "istio.managed"
_ATTEMPTS = 5


class IstioFaults:
    """``chaos.istio``: HTTP aborts and delays on VirtualService routes (see the module doc)."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx
        self._versions: dict[str | None, str] = {}

    def abort(
        self,
        host: str,
        *,
        namespace: str,
        status: int = 503,
        percent: float = 100,
        header: str | tuple[str, str] | None = None,
        version: str | None = None,
    ) -> Fault:
        """Answer percent of the requests to host with HTTP status instead of forwarding them.

        Args:
            host: the destination host: a Service's name (``"go-demo-8"``) or its FQDN.
            namespace: where the VirtualServices (and the Service) are.
            status: the HTTP status returned (200-599).
            percent: the share of requests aborted, 0-100.
            header: only requests carrying this header: ``"x-chaos"`` (any value),
                ``"x-chaos=on"`` or ``("x-chaos", "on")``; None for every request.
            version: networking.istio.io version; None for the one the server prefers.
        """
        spec = abort_spec(
            host,
            namespace=namespace,
            status=status,
            percent=percent,
            header=header,
            version=version,
        )
        return self._inject(spec)

    def delay(
        self,
        host: str,
        *,
        namespace: str,
        delay: Duration,
        percent: float = 100,
        header: str | tuple[str, str] | None = None,
        version: str | None = None,
    ) -> Fault:
        """Hold percent of the requests to host for delay before forwarding them.

        Args:
            host: the destination host: a Service's name (``"go-demo-8"``) or its FQDN.
            namespace: where the VirtualServices (and the Service) are.
            delay: how long, e.g. ``"15s"``, ``"250ms"`` or ``2.5`` (whole milliseconds, >= 1ms).
            percent: the share of requests delayed, 0-100.
            header: only requests carrying this header (see :meth:`abort`).
            version: networking.istio.io version; None for the one the server prefers.
        """
        spec = delay_spec(
            host,
            namespace=namespace,
            delay=delay,
            percent=percent,
            header=header,
            version=version,
        )
        return self._inject(spec)

    def _version(self, wanted: str | None) -> str:
        """The networking.istio.io version to use; skip the test when Istio's API is absent."""
        if wanted not in self._versions:
            kube = self._ctx.kube
            groups = kube.serialize(call(kube.apis.get_api_versions)).get("groups") or []
            version = choose_version(groups, wanted)
            if version is None:
                _skip(NOT_SERVED)
            self._versions[wanted] = version
        return self._versions[wanted]

    def _list(self, version: str, namespace: str) -> list[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        try:
            listing: Any = call(
                self._ctx.kube.custom.list_namespaced_custom_object,
                GROUP,
                version,
                namespace,
                PLURAL,
            )
        except ApiException as exc:
            if exc.status == 404:  # the group is served, VirtualServices are not
                _skip(NOT_SERVED)
            raise
        items: list[dict[str, Any]] = listing.get("items") or []
        return items

    def _inject(self, spec: FaultSpec) -> Fault:
        ctx = self._ctx
        ctx.safety.check_namespace(spec.namespace)
        version = self._version(spec.version)
        virtual_services = self._list(version, spec.namespace)
        tag = secrets.token_hex(4)
        kind = f"istio.{spec.key}"
        patches: list[tuple[dict[str, Any], JsonPatch, dict[str, Any]]] = []
        for vs in virtual_services:
            indices = targeted_routes(vs, spec.host, spec.namespace)
            if indices:
                patch, payload = inject_patch(vs, indices, spec, tag)
                payload["disabled"] = overridden_policies(vs, indices)
                patches.append((vs, patch, payload))
        if patches:
            return self._patch_routes(spec, kind, version, patches)
        serving = claiming(virtual_services, spec.host, spec.namespace)
        if serving:
            raise nothing_to_fault(spec, serving)
        service = self._service_for(spec, virtual_services)
        return self._create_managed(spec, kind, version, service, tag)

    def _patch_routes(
        self,
        spec: FaultSpec,
        kind: str,
        version: str,
        patches: list[tuple[dict[str, Any], JsonPatch, dict[str, Any]]],
    ) -> Fault:
        ctx = self._ctx
        where = [
            f"{vs['metadata']['name']} http{[r['index'] for r in payload['routes']]}"
            for vs, _patch, payload in patches
        ]
        ctx.plan("istio", f"{spec.describe()} on VirtualService(s) {', '.join(where)}")
        disabled = [d for _vs, _patch, payload in patches for d in payload["disabled"]]
        targets = tuple(f"{spec.namespace}/{vs['metadata']['name']}" for vs, _p, _d in patches)
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            for vs, patch, payload in patches:
                record = ctx.record(
                    kind,
                    kind="VirtualService",
                    namespace=spec.namespace,
                    name=vs["metadata"]["name"],
                    uid=vs["metadata"]["uid"],
                    undo=UNDO_FAULT,
                    payload={"version": version, **payload},
                )
                records.append(record)
                self._send(record, patch, spec)
            ctx.timeline.add(
                "inject", f"{kind}: {spec.describe()} on {', '.join(where)}", targets=list(targets)
            )
        for text in disabled:
            ctx.timeline.add(
                "note",
                f"{kind}: Istio ignores the retries/timeout of a faulted route: {text}",
            )
        details = _details(spec, version, managed=False, disabled=disabled)
        details["routes"] = {t: r.payload["routes"] for t, r in zip(targets, records, strict=True)}
        details["gateways"] = {
            f"{spec.namespace}/{vs['metadata']['name']}": (vs.get("spec") or {}).get("gateways")
            or ["mesh"]
            for vs, _p, _d in patches
        }
        fault = ctx.done(Fault(ctx, kind, targets, records, details=details))
        self._verify(fault, version)
        route = route_name(records[0].payload["tag"]) if spec.header is not None else None
        self._data_plane(fault, spec, route)
        return fault

    def _data_plane(self, fault: Fault, spec: FaultSpec, route: str | None) -> None:
        """Wait until a proxy serving the VirtualServices has the fault (and, on revert, not).

        Where no published proxy serves them the API read-back above is the check; either way
        ``fault.details["verified_by"]`` and the timeline say which was used.
        """
        from pytest_chaos.faults.istio_effect import wait_in_data_plane

        ctx = self._ctx
        targets = [(r.namespace or "", r.name) for r in fault.records]
        proxy, waited, arrived = wait_in_data_plane(
            ctx.kube, targets, spec.key, spec.value, route, present=True
        )
        if proxy is None:
            fault.details["verified_by"] = "api read-back"
            ctx.timeline.add(
                "note",
                f"{fault.kind}: verified by reading the VirtualService back (no proxy of this "
                "cluster's published data plane serves it)",
            )
            return
        fault.details["verified_by"] = f"envoy config_dump of {proxy}"
        fault.details["data_plane_seconds"] = round(waited, 3)
        if not arrived:
            raise InconclusiveError(
                f"{fault.kind} did not take effect: {proxy}'s Envoy did not carry the fault "
                f"{waited:.0f}s after the VirtualService was patched (is istiod running?)"
            )
        ctx.timeline.add(
            "verify", f"{fault.kind}: in {proxy}'s Envoy config after {waited * 1000:.0f} ms"
        )

        def gone() -> None:
            _proxy, left, cleared = wait_in_data_plane(
                ctx.kube, targets, spec.key, spec.value, route, present=False
            )
            fault.details["revert_data_plane_seconds"] = round(left, 3)
            if cleared:
                ctx.timeline.add(
                    "verify",
                    f"{fault.kind}: gone from {proxy}'s Envoy config after {left * 1000:.0f} ms",
                )
            else:
                ctx.timeline.add(
                    "note",
                    f"{fault.kind}: still in {proxy}'s Envoy config {left:.0f}s after the revert",
                )

        fault.after_revert = gone

    def _send(self, record: UndoRecord, patch: JsonPatch, spec: FaultSpec) -> None:
        """Apply an injecting patch, re-reading and re-deciding on 409."""
        payload = record.payload

        def again(current: dict[str, Any]) -> JsonPatch:
            if not effective(current, payload):
                return []  # our own write, whose answer was lost
            if not unchanged_since(current, payload):
                raise InjectError(
                    f"{record.target} changed while the fault was being injected (its routes "
                    "for the host moved or got another fault); nothing was injected there"
                )
            indices = [r["index"] for r in payload["routes"]]
            return inject_patch(current, indices, spec, payload["tag"])[0]

        try:
            _apply(self._ctx.kube, record, patch, again)
        except _RejectedError as exc:
            raise InjectError(
                f"the API server rejected the {spec.key} fault on {record.target}: {exc}"
            ) from None

    def _verify(self, fault: Fault, version: str) -> None:
        for record in fault.records:
            current = _read(self._ctx.kube, version, record.namespace or "", record.name)
            missing = (
                ["the VirtualService"] if current is None else effective(current, record.payload)
            )
            if missing:
                raise InconclusiveError(
                    f"{fault.kind} did not take effect: {record.target} does not carry "
                    f"{'; '.join(missing)} after the patch (pruned by its schema, or changed by "
                    "a controller at once?)"
                )
        self._ctx.timeline.add(
            "verify", f"{fault.kind}: the fault is in {', '.join(fault.targets)}"
        )

    def _service_for(self, spec: FaultSpec, virtual_services: list[dict[str, Any]]) -> str:
        """The Service a managed VirtualService routes to; else say what exists."""
        listing = self._ctx.kube.list_raw(
            self._ctx.kube.core.list_namespaced_service, spec.namespace
        )
        services = [s["metadata"]["name"] for s in listing.get("items") or []]
        name = service_name(spec.host, spec.namespace)
        if name is None or name not in services:
            raise unknown_host(spec, services, virtual_services)
        return name

    def _create_managed(
        self, spec: FaultSpec, kind: str, version: str, service: str, tag: str
    ) -> Fault:
        from kubernetes.client.exceptions import ApiException

        ctx = self._ctx
        name = managed_name(service, tag)
        labels = {MANAGED_BY_LABEL: MANAGED_BY, FAULT_LABEL: tag}
        manifest = managed_manifest(spec, service, name, tag, version, labels)
        target = f"{spec.namespace}/{name}"
        ctx.plan(
            "istio",
            f"{spec.describe()}: no VirtualService routes to it, create VirtualService {target}",
        )
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            records.append(
                ctx.record(
                    kind,
                    kind="VirtualService",
                    namespace=spec.namespace,
                    name=name,
                    uid=None,
                    undo=UNDO_MANAGED,
                    payload={"version": version, "tag": tag, "manifest": manifest},
                )
            )
            try:
                call(
                    ctx.kube.custom.create_namespaced_custom_object,
                    GROUP,
                    version,
                    spec.namespace,
                    PLURAL,
                    manifest,
                )
            except ApiException as exc:
                # 409: a retried create whose first attempt was applied but not answered.
                if exc.status == 422:
                    raise InjectError(
                        f"the API server rejected VirtualService {target}: {describe(exc)}"
                    ) from None
                if exc.status != 409:
                    raise
            ctx.timeline.add(
                "inject",
                f"{kind}: {spec.describe()} through a new VirtualService {target}",
                targets=[target],
            )
        details = _details(spec, version, managed=True, disabled=[])
        details["gateways"] = {target: ["mesh"]}
        fault = ctx.done(Fault(ctx, kind, (target,), records, details=details))
        current = _read(ctx.kube, version, spec.namespace, name)
        wanted = manifest["spec"]["http"][0]["fault"]
        if (
            current is None
            or (current.get("spec") or {}).get("http", [{}])[0].get("fault") != wanted
        ):
            raise InconclusiveError(
                f"{kind} did not take effect: VirtualService {target} does not carry the fault "
                "after it was created"
            )
        ctx.timeline.add("verify", f"{kind}: the fault is in {target}")
        return fault


def _details(
    spec: FaultSpec, version: str, *, managed: bool, disabled: list[str]
) -> dict[str, Any]:
    """What ``fault.details`` says: the fault's values, where it is, what it disables."""
    return {
        "host": spec.host,
        "key": spec.key,
        **spec.value,
        "header": spec.header,
        "version": version,
        "managed": managed,
        "disabled": disabled,
    }


class _RejectedError(Exception):
    """The API server refused a patch as invalid (422); the message is the server's."""


def _skip(reason: str) -> NoReturn:
    import pytest

    pytest.skip(reason)


def _read(kube: Kube, version: str, namespace: str, name: str) -> dict[str, Any] | None:
    return kube.read(
        kube.custom.get_namespaced_custom_object, GROUP, version, namespace, PLURAL, name
    )


def _apply(
    kube: Kube,
    record: UndoRecord,
    patch: JsonPatch,
    again: Callable[[dict[str, Any]], JsonPatch],
) -> None:
    """Send patch; on 409 re-read the VirtualService and send what again() decides (if any)."""
    from kubernetes.client.exceptions import ApiException

    version = record.payload["version"]
    namespace = record.namespace or ""
    for _attempt in range(_ATTEMPTS):
        if len(patch) <= 1:  # only the resourceVersion: nothing to change
            return
        try:
            call(
                kube.custom.patch_namespaced_custom_object,
                GROUP,
                version,
                namespace,
                PLURAL,
                record.name,
                patch,
                _content_type=JSON_PATCH,
            )
            return
        except ApiException as exc:
            if exc.status == 422:
                raise _RejectedError(describe(exc)) from None
            if exc.status != 409:
                raise
        current = _read(kube, version, namespace, record.name)
        if current is None:
            raise InjectError(f"{record.target} was deleted while the fault was being injected")
        patch = again(current)
    raise InjectError(f"{record.target} kept changing; could not patch it")


@reverter(UNDO_FAULT)
def revert_fault(kube: Kube, record: UndoRecord) -> str:
    """Undo a fault patched into a VirtualService: exactly what it set, unless changed since."""
    from kubernetes.client.exceptions import ApiException

    version = record.payload["version"]
    namespace = record.namespace or ""
    for _attempt in range(_ATTEMPTS):
        current = _read(kube, version, namespace, record.name)
        if current is None:
            return "VirtualService deleted meanwhile, nothing to restore"
        plan = revert_patch(current, record.payload)
        if record.uid and current["metadata"].get("uid") != record.uid:
            if len(plan.patch) > 1 or plan.drift:
                raise DriftError(
                    f"{record.target} was replaced by another object that still carries the "
                    f"fault (record {record.id}); left as it is"
                )
            return "VirtualService replaced meanwhile, nothing to restore"
        if len(plan.patch) > 1:
            try:
                call(
                    kube.custom.patch_namespaced_custom_object,
                    GROUP,
                    version,
                    namespace,
                    PLURAL,
                    record.name,
                    plan.patch,
                    _content_type=JSON_PATCH,
                )
            except ApiException as exc:
                if exc.status == 409:
                    continue  # changed between our read and our write: look again
                raise
        if plan.drift:
            raise drift_error(f"{namespace}/{record.name}", plan.drift, record.id)
        return plan.outcome
    raise RevertError(f"{record.target}: kept changing while reverting (record {record.id})")


@reverter(UNDO_MANAGED)
def revert_managed(kube: Kube, record: UndoRecord) -> str:
    """Delete a VirtualService pytest-chaos created for a fault (only if it is still ours)."""
    version = record.payload["version"]
    namespace = record.namespace or ""
    current = _read(kube, version, namespace, record.name)
    if current is None:
        return "already reverted"
    labels = current["metadata"].get("labels") or {}
    if labels.get(FAULT_LABEL) != record.payload["tag"]:
        raise DriftError(
            f"{record.target} is not the VirtualService the fault created (its "
            f"{FAULT_LABEL} label is {labels.get(FAULT_LABEL)!r}); left as it is "
            f"(record {record.id})"
        )
    uid = current["metadata"]["uid"]
    delete = kube.custom.delete_namespaced_custom_object
    if not kube.delete(delete, GROUP, version, namespace, PLURAL, record.name, uid=uid):
        return "already reverted"  # gone already, or replaced by another object
    return "reverted"
