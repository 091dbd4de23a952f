"""chaos.load.http: HTTP load from a pod inside the cluster (the book's denial-of-service test).

The book ran ``siege`` in a throw-away pod against go-demo-8; this runs ``pytest-chaos-load``
(a static Go program in the toolbox image, ``tools/images/load``) in a pod of ours, pinned to a
node that runs containers, in the namespace given (so a Service's short name resolves as it
does for the app's own clients). The pod is recorded in the ledger before it is created, like
the node stress pods of :mod:`pytest_chaos.faults.stress`, whose undo it shares: revert deletes
it (uid-checked) and waits until it is gone, and ``pytest-chaos cleanup`` removes the pod of a
run killed with ``kill -9``. It also ends by itself (``activeDeadlineSeconds``).

The program ends with one JSON line, on stdout and in its termination message (the pod's
status carries it, so neither ``exec`` nor log access is needed): requests, ok (status below
400), statuses, errors by kind (timeout, connect, dns, other), achieved rate and latency
percentiles. It prints it on SIGTERM too, so a load reverted mid-run still reports what it got
so far (:attr:`LoadFault.summary`), or says why nothing could be read
(:attr:`LoadFault.no_summary`). On kwok's fake nodes nothing runs, so a cluster with only fake
nodes is refused up front.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from pytest_chaos.durations import Duration, as_seconds
from pytest_chaos.errors import ChaosConfigError, InjectError, TargetingError, WaitTimeout
from pytest_chaos.faults import Fault, FaultContext, injecting
from pytest_chaos.faults.ephemeral import IMAGE_FAILURES, START_FAILURES, is_fake_node
from pytest_chaos.faults.load_plan import (
    LOAD_COMMAND,
    MARGIN,
    LoadArgs,
    LoadSummary,
    check_load_http,
    parse_summary,
)
from pytest_chaos.faults.node_rules import existing_lines, is_schedulable, node_name, pick_nodes
from pytest_chaos.faults.pinned_pod import create_pinned_pod, pinned_pod
from pytest_chaos.faults.stress import NODE_POD_UNDO
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import UndoRecord

KIND = "load.http"
#: The pod's container.
CONTAINER = "load"
#: The pod's grace period: SIGTERM, then the program cancels what is in flight and reports.
GRACE_SECONDS = 10

__all__ = [
    "KIND",
    "LoadArgs",
    "LoadFault",
    "LoadFaults",
    "LoadSummary",
    "check_load_http",
    "parse_summary",
]


# --- the pod ----------------------------------------------------------------------------------


def load_pod(name: str, tag: str, *, node: str, image: str, args: LoadArgs) -> dict[str, Any]:
    """The pod that sends the load: pinned to node, unprivileged, bounded in time."""
    return pinned_pod(
        name,
        tag,
        node=node,
        image=image,
        container=CONTAINER,
        command=args.argv(),
        lifetime=args.lifetime,
        grace=GRACE_SECONDS,
    )


def container_status(pod: Mapping[str, Any] | None) -> dict[str, Any]:
    """The load container's state (``{"running": ...}``, ``{"terminated": ...}``...), or {}."""
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            state: dict[str, Any] = status.get("state") or {}
            return state
    return {}


def terminated(pod: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The load container's terminated state (exitCode, reason, message), or None."""
    state = container_status(pod).get("terminated")
    return dict(state) if state is not None else None


def start_failure(pod: Mapping[str, Any] | None) -> str | None:
    """Why the load container will not start by itself (a missing image...), or None."""
    waiting = container_status(pod).get("waiting") or {}
    if waiting.get("reason") in START_FAILURES:
        return f"{waiting['reason']}: {waiting.get('message', '')}".strip()
    return None


def choose_node(
    nodes: list[dict[str, Any]], wanted: str | None, rng: Any
) -> tuple[str, dict[str, Any]]:
    """A node that runs containers: wanted if given, else a schedulable real one (seeded)."""
    by_name = {node_name(n): n for n in nodes}
    if wanted is not None:
        if wanted not in by_name:
            raise TargetingError(
                f"node={wanted!r}: no such node. Nodes:\n{existing_lines(list(by_name.values()))}"
            )
        if is_fake_node(by_name[wanted]):
            raise ChaosConfigError(
                f"node={wanted!r} is a kwok fake node: nothing runs there, so it cannot send "
                "load; name a real node or leave node=None"
            )
        return wanted, by_name[wanted]
    real = [n for n in nodes if not is_fake_node(n)]
    if not real:
        raise TargetingError(
            f"{KIND} needs a node that runs containers, and every node of this cluster is a "
            f"kwok fake node ({', '.join(sorted(by_name)) or 'none'}). Use a cluster with real "
            "nodes (the local cluster starts one where the host allows: chaos_local_real_node)"
        )
    ready = [n for n in real if is_schedulable(n)]
    if not ready:
        raise TargetingError(
            f"{KIND}: no real node is Ready and schedulable: "
            + ", ".join(sorted(node_name(n) for n in real))
        )
    chosen = pick_nodes(sorted(node_name(n) for n in ready), 1, rng)[0]
    return chosen, by_name[chosen]


# --- the fault --------------------------------------------------------------------------------


class LoadFault(Fault):
    """A running load: :meth:`wait` for it to end, read :attr:`summary`, or revert to stop it.

    Reverting (or the test's teardown) before the load ended stops it: the pod gets SIGTERM,
    the program reports what it got so far, and the pod is deleted.
    """

    def __init__(
        self,
        ctx: FaultContext,
        records: list[UndoRecord],
        *,
        args: LoadArgs,
        pod: str,
        uid: str,
        details: dict[str, Any],
    ) -> None:
        """Wrap the load pod just created (use ``chaos.load.http`` instead)."""
        super().__init__(ctx, KIND, (f"{args.namespace}/{pod}",), records, details=details)
        self.args = args
        self.pod = pod
        self.uid = uid
        self._summary: LoadSummary | None = None
        self._no_summary: str | None = None

    @property
    def summary(self) -> LoadSummary | None:
        """What the load got, once it ended (or was stopped); None before, or if unreadable."""
        return self._summary

    @property
    def no_summary(self) -> str | None:
        """Why there is no summary, when the load ended without one; else None."""
        return self._no_summary

    @property
    def _kube(self) -> Kube:
        return self._ctx.kube

    def wait(self, within: Duration | None = None) -> LoadSummary:
        """Block until the load ends (watching its pod), then delete the pod; the summary.

        Args:
            within: how long to wait at most (default: the rest of the duration, the request
                timeout and a margin).

        Raises:
            InjectError: the load did not end in time, or ended without a summary.
        """
        if self._summary is None and self._no_summary is None:
            limit = (
                self.args.duration + self.args.timeout + MARGIN
                if within is None
                else as_seconds(within, name="within")
            )
            try:
                pods = self._watch(lambda pod: pod is None or terminated(pod) is not None, limit)
            except WaitTimeout as exc:
                raise InjectError(f"{KIND}: the load did not end: {exc}") from None
            self._collect(pods[0] if pods else None, "it ended")
        self.revert()
        if self._summary is None:
            raise InjectError(f"{KIND}: {self._no_summary}")
        return self._summary

    def revert(self) -> None:
        """Stop the load if it still runs (reading its partial summary), then delete its pod."""
        if self.active and self._summary is None and self._no_summary is None:
            self._stop_and_collect()
        super().revert()

    def _stop_and_collect(self) -> None:
        namespace = self.args.namespace
        pod = self._kube.read(self._kube.core.read_namespaced_pod, self.pod, namespace)
        if pod is None or pod["metadata"].get("uid") != self.uid or terminated(pod) is not None:
            ours = pod is not None and pod["metadata"].get("uid") == self.uid
            self._collect(pod if ours else None, "it ended")
            return
        self._kube.delete(self._kube.core.delete_namespaced_pod, self.pod, namespace, uid=self.uid)
        try:
            pods = self._watch(
                lambda seen: seen is None or terminated(seen) is not None, GRACE_SECONDS + 20
            )
        except WaitTimeout as exc:
            self._no_summary = f"the load pod did not stop in time: {exc}"
            self._ctx.timeline.add("verify", f"{KIND}: no summary: {self._no_summary}")
            return
        self._collect(pods[0] if pods else None, "it was stopped")

    def _watch(
        self, done: Callable[[dict[str, Any] | None], bool], within: float
    ) -> list[dict[str, Any]]:
        """Watch the pod until done(pod or None when gone); the pods last seen (ours only)."""
        from pytest_chaos.kube.watching import wait_until

        last: list[dict[str, Any]] = []

        def check(pods: list[Any]) -> bool:
            ours = [p for p in map(self._kube.serialize, pods) if p["metadata"]["uid"] == self.uid]
            last[:] = ours
            return done(ours[0] if ours else None)

        wait_until(
            functools.partial(self._kube.core.list_namespaced_pod, self.args.namespace),
            check,
            within=within,
            what=f"load pod {self.args.namespace}/{self.pod} to end",
            describe=lambda _pods: str(container_status(last[0]) if last else "gone"),
            field_selector=f"metadata.name={self.pod}",
        )
        return last

    def _collect(self, pod: Mapping[str, Any] | None, how: str) -> None:
        """Read the summary from the pod's terminated state; say on the timeline what it was."""
        state = terminated(pod)
        if state is None:
            self._no_summary = (
                "the load pod was gone before the kubelet reported how it ended"
                if pod is None
                else f"the load container had not ended ({container_status(pod) or 'no status'})"
            )
        else:
            try:
                self._summary = parse_summary(str(state.get("message") or ""))
            except ValueError as exc:
                self._no_summary = (
                    f"the load program exited with {state.get('exitCode')} "
                    f"({state.get('reason') or 'no reason'}) without a summary: {exc}"
                )
                if state.get("reason") == "StartError":
                    image = self.details.get("image")
                    self._no_summary += (
                        f". Does the image {image!r} have {LOAD_COMMAND} on its PATH? (set the "
                        "toolbox image with --chaos-toolbox-image)"
                    )
        if self._summary is not None:
            self.details["summary"] = self._summary.raw
            self._ctx.timeline.add(
                "verify", f"{KIND}: {self._summary.describe()}", summary=self._summary.raw
            )
        else:
            self.details["summary"] = None
            self._ctx.timeline.add("verify", f"{KIND}: no summary: {self._no_summary}")
        self.details["ended"] = how


# --- the verb ---------------------------------------------------------------------------------


class LoadFaults:
    """``chaos.load``: see the module docstring."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx

    def http(
        self,
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
    ) -> LoadFault:
        """Send HTTP load to url from a pod in namespace; returns once the load has started.

        Args:
            url: what to load, as a pod in namespace sees it (``http://web/``, a Service's
                short name, works).
            namespace: where the load pod runs (allow-listed like any fault's namespace).
            rate: requests per second; None: as fast as concurrency allows.
            concurrency: requests in flight at most.
            duration: how long to send requests.
            method: the HTTP method.
            headers: request headers (``{"Host": "web.example"}`` sets the Host).
            timeout: per-request timeout; a slower request counts as a ``timeout`` error.
            node: the node the pod runs on (default: a Ready real node, chosen seeded).
            image: the toolbox image (default: ``--chaos-toolbox-image``).
            within: how long the pod may take to start.

        The returned :class:`LoadFault`'s :meth:`~LoadFault.wait` blocks until the load ends
        and returns its :class:`LoadSummary`; revert stops it early (partial summary).
        """
        ctx = self._ctx
        args = check_load_http(
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
        ctx.safety.check_namespace(namespace)
        listing = ctx.kube.list_raw(ctx.kube.core.list_node)
        chosen, _node = choose_node(listing.get("items", []), args.node, ctx.rng)
        tag = ctx.ledger.new_id()
        name = f"pytest-chaos-load-{tag}"
        manifest = load_pod(name, tag, node=chosen, image=image or ctx.toolbox_image, args=args)
        plan = f"send {args.describe()} from pod {namespace}/{name} on node {chosen}"
        ctx.plan(KIND, plan)
        records: list[UndoRecord] = []
        with injecting(ctx, KIND, records):
            records.append(
                ctx.record(
                    KIND,
                    kind="Pod",
                    namespace=namespace,
                    name=name,
                    uid=None,
                    undo=NODE_POD_UNDO,
                    payload={"tag": tag, "node": chosen},
                )
            )
            create_pinned_pod(ctx.kube, namespace, manifest)
            ctx.timeline.add("inject", f"{KIND}: {plan}", targets=[f"{namespace}/{name}"])
            uid = _await_start(ctx.kube, namespace, name, args.within)
        details = {
            "url": args.url,
            "method": args.method,
            "rate": args.rate,
            "concurrency": args.concurrency,
            "duration_seconds": args.duration,
            "node": chosen,
            "pod": name,
            "image": manifest["spec"]["containers"][0]["image"],
            "summary": None,
        }
        fault = LoadFault(ctx, records, args=args, pod=name, uid=uid, details=details)
        ctx.done(fault)
        return fault


def _await_start(kube: Kube, namespace: str, name: str, within: float) -> str:
    """Wait until the load container runs (or already ended); its pod's uid."""
    from pytest_chaos.kube.watching import wait_until

    seen: list[dict[str, Any]] = []

    def check(pods: list[Any]) -> bool:
        seen[:] = [kube.serialize(p) for p in pods]
        if not seen:
            return False
        pod = seen[0]
        phase = (pod.get("status") or {}).get("phase")
        state = container_status(pod)
        return bool(
            "running" in state or "terminated" in state or start_failure(pod) or phase == "Failed"
        )

    try:
        wait_until(
            functools.partial(kube.core.list_namespaced_pod, namespace),
            check,
            within=within,
            what=f"load pod {namespace}/{name} to start",
            describe=lambda _pods: str(container_status(seen[0]) if seen else "not seen"),
            field_selector=f"metadata.name={name}",
        )
    except WaitTimeout as exc:
        raise InjectError(f"{KIND}: {exc}") from None
    pod = seen[0]
    failure = start_failure(pod)
    if failure is not None:
        reason = container_status(pod).get("waiting", {}).get("reason")
        hint = (
            f". Is the toolbox image {pod['spec']['containers'][0]['image']!r} (with "
            f"{LOAD_COMMAND}) on node {pod['spec']['nodeName']}? (set it with "
            "--chaos-toolbox-image)"
            if reason in IMAGE_FAILURES
            else ""
        )
        raise InjectError(f"{KIND}: the load pod {namespace}/{name} cannot start: {failure}{hint}")
    if not container_status(pod) and (pod.get("status") or {}).get("phase") == "Failed":
        status = pod.get("status") or {}
        raise InjectError(
            f"{KIND}: the load pod {namespace}/{name} failed: {status.get('reason')} "
            f"{status.get('message', '')}".rstrip()
        )
    return str(pod["metadata"]["uid"])
