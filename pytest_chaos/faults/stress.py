"""chaos.stress: CPU and memory pressure in pods and on nodes (``stress-ng``, a memory holder).

* ``pods``: an ephemeral container (see :mod:`pytest_chaos.faults.ephemeral`) joins each chosen
  pod, targeting one container so it shares that container's PID namespace. ``stress-ng`` burns
  the CPU; ``pytest-chaos-hold`` (the toolbox's own static binary) holds the memory. The pod is
  not restarted by the fault itself. A CPU amount above the container's CPU limit is capped at
  the limit (more could not be used), and ``"limit"`` means exactly the limit. What was
  actually applied is in ``fault.details``.
  The ephemeral container has no limits of its own: it runs in the pod's cgroup, so it competes
  with the pod's containers for the pod's budget (the sum of their limits), which is the point.
  Memory is held the way a leak holds it: charged to the pod's memory cgroup, but not in the
  holder's resident set, and without raising its oom_score_adj (stress-ng's ``--vm`` workers
  raise theirs to the maximum, so they, not the app, would always be the OOM killer's victim).
  When the pod's usage reaches its limit, the kernel kills the process with the highest
  ``oom_score`` (resident memory + oom_score_adj x limit / 1000): normally the app, whose
  container then restarts with reason ``OOMKilled``. The holder dies with it (it lived in that
  container's PID namespace), its memory is freed, and the restarted container starts clean:
  one OOMKilled restart, then the steady state can come back. If the app's resident memory is
  smaller than the holder's (about 2 MiB) the holder may be the victim instead: the memory is
  freed and nothing restarts. Either way the fault has ended; revert says so.
  It runs as an unprivileged user with every capability dropped (PodSecurity ``restricted``
  admits it). Undo is a second ephemeral container that stops the stress processes, found by a
  marker in their command line (``pytest-chaos-stress-<tag>``); the duration also ends them by
  themselves, even if nobody undoes the fault.
* ``nodes``: a pod per chosen node (``pytest-chaos-stress-<tag>``, pinned with ``nodeName``,
  tolerating every taint, ``restartPolicy: Never``, ``activeDeadlineSeconds`` = duration) runs
  ``stress-ng`` and the holder; undo deletes the pod (only if it is still ours) and waits until
  it is gone. The pod has no resources set (BestEffort): it takes what the node has idle and
  is the first to be evicted under memory pressure. CPU is capped at the node's allocatable CPU.

On kwok's fake nodes nothing runs: the containers and pods exist in the API only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_chaos.durations import Duration, as_seconds, format_seconds
from pytest_chaos.errors import (
    ChaosConfigError,
    DriftError,
    InjectError,
    RevertError,
    TargetingError,
    WaitTimeout,
)
from pytest_chaos.faults import Fault, FaultContext, injecting, scripts
from pytest_chaos.faults.checks import (
    check_count,
    check_name,
    check_names,
    cpu_millicores,
    memory_bytes,
)
from pytest_chaos.faults.ephemeral import (
    API_ONLY,
    NOBODY,
    START_FAILURES,
    ContainerState,
    Injection,
    await_all,
    choose_pods,
    first_container,
    inject_all,
    is_fake_node,
    new_injection,
    outcomes,
    started,
)
from pytest_chaos.faults.pinned_pod import create_pinned_pod, pinned_pod
from pytest_chaos.faults.undo import FAULT_LABEL, reverter
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import MANAGED_BY, MANAGED_BY_LABEL, UndoRecord
from pytest_chaos.targeting import (
    matching_text,
    nothing_matched,
    parse_label_selector,
    validate_mode,
)

#: Undo kind of a node stress pod.
NODE_POD_UNDO = "stress-node-pod"
#: The word for "as much as the limit allows".
LIMIT = "limit"
#: How long a node stress pod may take to go away on revert.
DELETE_WITHIN = 60.0

Amount = str | float | int | None
#: Checked arguments: CPU (millicores or "limit"), memory (bytes or "limit"), duration and wait (s).
Checked = tuple[int | str | None, int | str | None, int, float]


# --- the plan (pure) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StressPlan:
    """What stress-ng will be asked to do, after honouring the limits.

    Attributes:
        cpu_millicores: CPU actually burnt (workers x load), 0 for none.
        memory_bytes: memory actually held, 0 for none.
        cpu_workers: stress-ng ``--cpu`` workers.
        cpu_load: their ``--cpu-load`` percent.
        limited_by: why an amount was lowered, e.g. ``{"cpu": "the CPU limit of ..."}``.
        oom_expected: the memory held reaches the memory limit.
        notes: anything else worth knowing.
    """

    cpu_millicores: int
    memory_bytes: int
    cpu_workers: int
    cpu_load: int
    limited_by: dict[str, str] = field(default_factory=dict)
    oom_expected: bool = False
    notes: tuple[str, ...] = ()

    def commands(self, timeout_seconds: int) -> list[list[str]]:
        """The argvs of this plan: stress-ng for CPU, the holder for memory.

        Each ends by itself after timeout_seconds.
        """
        commands = []
        if self.cpu_workers:
            commands.append(
                scripts.stress_ng_args(
                    cpu_workers=self.cpu_workers,
                    cpu_load=self.cpu_load,
                    timeout_seconds=timeout_seconds,
                )
            )
        if self.memory_bytes:
            commands.append(
                scripts.hold_args(memory_bytes=self.memory_bytes, timeout_seconds=timeout_seconds)
            )
        return commands

    def details(self) -> dict[str, Any]:
        """The plan as the fault's details report it."""
        return {
            "cpu_millicores": self.cpu_millicores,
            "memory_bytes": self.memory_bytes,
            "limited_by": dict(self.limited_by),
            "oom_expected": self.oom_expected,
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        """``500m CPU and 256Mi memory``."""
        parts = []
        if self.cpu_millicores:
            parts.append(f"{self.cpu_millicores}m CPU")
        if self.memory_bytes:
            parts.append(f"{_mebibytes(self.memory_bytes)} memory")
        return " and ".join(parts)


def _mebibytes(amount: int) -> str:
    return f"{amount / 2**20:g}Mi"


def check_amounts(cpu: Amount, memory: Amount) -> tuple[int | str | None, int | str | None]:
    """At least one of cpu and memory; each an amount or ``"limit"`` (millicores, bytes)."""
    if cpu is None and memory is None:
        raise ChaosConfigError(
            "say how much stress: cpu= (e.g. '500m', 2 or 'limit') and/or memory= "
            "(e.g. '256Mi' or 'limit')"
        )
    checked_cpu: int | str | None = cpu if cpu == LIMIT else None
    if cpu is not None and cpu != LIMIT:
        checked_cpu = cpu_millicores(cpu)
    checked_memory: int | str | None = memory if memory == LIMIT else None
    if memory is not None and memory != LIMIT:
        checked_memory = memory_bytes(memory)
    return checked_cpu, checked_memory


def check_timeout(duration: object) -> int:
    """The stress duration in whole seconds (at least 1)."""
    seconds = as_seconds(duration, name="duration")
    if seconds < 1:
        raise ChaosConfigError(f"duration={duration!r} must be at least 1s (e.g. '10m')")
    return math.ceil(seconds)


def plan_stress(
    cpu: int | str | None,
    memory: int | str | None,
    *,
    cpu_limit: int | None,
    memory_limit: int | None,
    where: str,
    memory_where: str | None = None,
) -> StressPlan:
    """Honour the limits: how much CPU and memory stress-ng will really use.

    Args:
        cpu: millicores, ``"limit"`` or None (checked by :func:`check_amounts`).
        memory: bytes, ``"limit"`` or None.
        cpu_limit: the target's CPU limit in millicores (None: unlimited).
        memory_limit: the memory limit the held memory counts against, in bytes (None:
            unlimited): for a pod, its memory budget (:func:`pod_memory_budget`).
        where: the target in words (``container web of pod shop/web-1``), for messages.
        memory_where: what memory_limit is the limit of, in words (default: where).
    """
    memory_where = memory_where or where
    limited: dict[str, str] = {}
    notes: list[str] = []
    cpu_amount = 0
    if cpu == LIMIT:
        if cpu_limit is None:
            raise ChaosConfigError(
                f"cpu='limit': {where} has no CPU limit; give an amount instead (e.g. cpu='500m')"
            )
        cpu_amount = cpu_limit
    elif isinstance(cpu, int):
        cpu_amount = cpu
        if cpu_limit is not None and cpu > cpu_limit:
            cpu_amount = cpu_limit
            limited["cpu"] = f"the CPU limit of {where} ({cpu_limit}m; {cpu}m asked)"
    workers = math.ceil(cpu_amount / 1000) if cpu_amount else 0
    load = min(100, max(1, round(cpu_amount / workers / 10))) if workers else 0
    memory_amount = 0
    oom = False
    if memory == LIMIT:
        if memory_limit is None:
            raise ChaosConfigError(
                f"memory='limit': {memory_where} has no memory limit; give an amount instead "
                "(e.g. memory='256Mi')"
            )
        memory_amount = memory_limit
    elif isinstance(memory, int):
        memory_amount = memory
    if memory_amount and memory_limit is not None and memory_amount >= memory_limit:
        oom = True
        notes.append(
            f"holding {_mebibytes(memory_amount)} reaches the memory limit of {memory_where} "
            f"({_mebibytes(memory_limit)}): expect an OOM kill (usually of the app, which "
            "then restarts with reason OOMKilled)"
        )
    return StressPlan(
        cpu_millicores=workers * load * 10,
        memory_bytes=memory_amount,
        cpu_workers=workers,
        cpu_load=load,
        limited_by=limited,
        oom_expected=oom,
        notes=tuple(notes),
    )


def _quantity(value: object, parse: Any) -> int | None:
    if value is None:
        return None
    try:
        amount: int = parse(value)
    except ChaosConfigError:
        return None  # a form we do not parse (e.g. 1e3): treated as no limit
    return amount


def container_limits(container: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """A container's CPU (millicores) and memory (bytes) limits; None where unlimited."""
    limits = (container.get("resources") or {}).get("limits") or {}
    return _quantity(limits.get("cpu"), cpu_millicores), _quantity(
        limits.get("memory"), memory_bytes
    )


def pod_memory_budget(pod: Mapping[str, Any]) -> tuple[int | None, list[str]]:
    """What the pod's memory cgroup may hold, and the containers that have no memory limit.

    The kubelet limits a pod's memory cgroup to the sum of its containers' memory limits (or
    an init container's, if larger), and only when every container has one; ephemeral
    containers, like the stress container, count against it without adding to it. None (and
    the names) when some container is unlimited: then nothing bounds the pod's memory.
    """
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    limits = [container_limits(c)[1] for c in containers]
    unlimited = [
        str(c.get("name")) for c, limit in zip(containers, limits, strict=True) if limit is None
    ]
    if unlimited or not containers:
        return None, unlimited
    init = [container_limits(c)[1] for c in spec.get("initContainers") or []]
    return max([sum(limit or 0 for limit in limits), *(i for i in init if i is not None)]), []


def node_capacity(node: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """A node's allocatable CPU (millicores) and memory (bytes)."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    return _quantity(allocatable.get("cpu"), cpu_millicores), _quantity(
        allocatable.get("memory"), memory_bytes
    )


def check_stress_pods(
    selector: object,
    *,
    namespace: object,
    cpu: object = None,
    memory: object = None,
    mode: object = "one",
    value: object = None,
    duration: object = "10m",
    image: object = None,
    container: object = None,
    within: object = 60,
) -> Checked:
    """Check ``chaos.stress.pods``'s arguments (the ``chaos_stress_pods`` marker's)."""
    parse_label_selector(selector, name="selector")
    validate_mode(mode, value)
    if container is not None:
        check_name("container", container)
    return _check_stress(cpu, memory, namespace, duration, image, within)


def check_stress_nodes(
    *,
    selector: object = None,
    name: object = None,
    cpu: object = None,
    memory: object = None,
    count: object = 1,
    namespace: object = "default",
    duration: object = "10m",
    image: object = None,
    within: object = 60,
) -> Checked:
    """Check ``chaos.stress.nodes``'s arguments (the ``chaos_stress_nodes`` marker's)."""
    parse_label_selector(selector, name="selector")
    node_names(name)
    check_count(count)
    return _check_stress(cpu, memory, namespace, duration, image, within)


def _check_stress(
    cpu: object, memory: object, namespace: object, duration: object, image: object, within: object
) -> Checked:
    amounts = check_amounts(cpu, memory)  # type: ignore[arg-type]
    check_name("namespace", namespace)
    timeout = check_timeout(duration)
    if image is not None:
        check_name("image", image)
    return (*amounts, timeout, as_seconds(within, name="within"))


def node_names(name: object) -> list[str] | None:
    """None, one node name or a non-empty list of them."""
    return None if name is None else check_names("name", name, "node name")


def choose_nodes(
    nodes: Sequence[Mapping[str, Any]],
    *,
    names: Sequence[str] | None,
    selector: str | None,
    count: int,
    rng: Any,
) -> tuple[list[Mapping[str, Any]], int]:
    """Pick count distinct nodes among those matching (seeded); also say how many matched.

    ``nodes`` is every node of the cluster (already filtered by selector server-side or not:
    the selector is applied here too). Nothing matching, or fewer than count, is a
    TargetingError listing the nodes that exist.
    """
    from pytest_chaos.targeting import matches

    requirements = parse_label_selector(selector, name="selector")
    matching = [
        n
        for n in nodes
        if matches(requirements, (n.get("metadata") or {}).get("labels") or {})
        and (names is None or n["metadata"]["name"] in names)
    ]
    existing = {n["metadata"]["name"]: (n.get("metadata") or {}).get("labels") or {} for n in nodes}
    if not matching:
        asked = f"name={names!r}" if names else ""
        message = nothing_matched("nodes", selector, None, existing)
        raise TargetingError(f"{asked + ': ' if asked else ''}{message}")
    from pytest_chaos.faults.node_rules import pick_nodes

    by_name = {str(n["metadata"]["name"]): n for n in matching}
    return [by_name[name] for name in pick_nodes(by_name, count, rng)], len(matching)


def node_stress_pod(
    name: str, tag: str, *, node: str, image: str, args: Sequence[str], timeout_seconds: int
) -> dict[str, Any]:
    """The pod that stresses one node: pinned, tolerating everything, unprivileged, bounded."""
    return pinned_pod(
        name,
        tag,
        node=node,
        image=image,
        container="stress",
        command=args,
        lifetime=timeout_seconds,
        grace=5,
    )


# --- the verbs --------------------------------------------------------------------------------


class StressFaults:
    """``chaos.stress``: see the module docstring."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx

    def pods(
        self,
        selector: str | None,
        *,
        namespace: str,
        cpu: Amount = None,
        memory: Amount = None,
        mode: str = "one",
        value: float | None = None,
        duration: Duration = "10m",
        image: str | None = None,
        container: str | None = None,
        within: Duration = 60,
    ) -> Fault:
        """Burn CPU and hold memory inside the chosen pods, next to one of their containers.

        Args:
            selector: the pods, e.g. ``"app=web"``.
            namespace: where they are.
            cpu: CPU to burn: ``"500m"``, ``1``, ``"2"``, or ``"limit"`` (the container's CPU
                limit); capped at the container's CPU limit.
            memory: memory to hold: ``"256Mi"``, bytes, or ``"limit"``: the pod's memory budget
                (the sum of its containers' memory limits; for a pod of one container, its
                limit), which means an OOM kill: usually an OOMKilled restart of the app.
            mode: how many of the matching pods (``one``, ``all``, ``fixed``...).
            value: the number or percent for the modes that need one.
            duration: stress-ng stops by itself after this long, even if never reverted.
            image: the toolbox image (default: ``--chaos-toolbox-image``).
            container: the container to stress next to (default: the pod's first).
            within: how long the stress may take to start on a real node.

        ``fault.details`` says what was applied: ``cpu_millicores``, ``memory_bytes``,
        ``limited_by`` and ``oom_expected`` (of the first pod; ``pods`` has each pod's), and
        ``ended_by_oom``: the pods where an OOM kill had already ended the stress when this
        returned (with memory past the limit that takes about a second).
        """
        ctx = self._ctx
        cpu_amount, memory_amount, timeout, wait = check_stress_pods(
            selector,
            namespace=namespace,
            cpu=cpu,
            memory=memory,
            mode=mode,
            value=value,
            duration=duration,
            image=image,
            container=container,
            within=within,
        )
        toolbox = image or ctx.toolbox_image
        ctx.safety.check_namespace(namespace)
        chosen, matching = choose_pods(ctx, selector, namespace, mode, value)
        plans = {}
        for pod in chosen:
            target = first_container(pod, container)
            ref = f"{namespace}/{pod['metadata']['name']}"
            where = f"container {target['name']} of pod {ref}"
            cpu_limit, _ = container_limits(target)
            budget, unlimited = pod_memory_budget(pod)
            if memory_amount == LIMIT and budget is None:
                raise ChaosConfigError(
                    f"memory='limit': pod {ref} has no memory limit (container(s) "
                    f"{', '.join(unlimited)} have none, so nothing bounds its memory); give an "
                    "amount instead (e.g. memory='256Mi')"
                )
            several = len((pod.get("spec") or {}).get("containers") or []) > 1
            plans[pod["metadata"]["name"]] = plan_stress(
                cpu_amount,
                memory_amount,
                cpu_limit=cpu_limit,
                memory_limit=budget,
                where=where,
                memory_where=f"pod {ref} (its containers' limits together)" if several else None,
            )
        injections = [
            new_injection(
                ctx,
                pod,
                kind="stress.pods",
                effect="stress",
                script_for=functools.partial(
                    _stress_argv, plans[pod["metadata"]["name"]].commands(timeout)
                ),
                container=container,
                image=toolbox,
                capabilities=(),
                run_as_user=NOBODY,
                extra={"plan": plans[pod["metadata"]["name"]].details(), "timeout": timeout},
            )
            for pod in chosen
        ]
        first = plans[chosen[0]["metadata"]["name"]]
        plan = (
            f"stress {len(chosen)} of {matching} pod(s) {matching_text(selector)} in {namespace} "
            f"with {first.describe()} for {format_seconds(timeout)}: "
            f"{', '.join(i.ref for i in injections)}"
        )
        ctx.plan("stress.pods", plan)
        kind = "stress.pods"
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            inject_all(ctx, kind, injections, records)
            ctx.timeline.add("inject", f"{kind}: {plan}", targets=[i.ref for i in injections])
            await_all(ctx, kind, injections, done=started, within=wait)
            for each in injections:
                _check_started(kind, each, plans[each.pod["metadata"]["name"]])
        details = {
            **first.details(),
            "duration_seconds": timeout,
            "pods": {i.ref: plans[i.pod["metadata"]["name"]].details() for i in injections},
            "containers": {i.ref: i.inject_container for i in injections},
            "states": outcomes(injections),
            "ended_by_oom": sorted(i.ref for i in injections if ended_by_oom(i.state)),
            "effect": API_ONLY if all(i.fake_node for i in injections) else "stress-ng running",
        }
        for note in [*first.notes, *first.limited_by.values()]:
            ctx.timeline.add("inject", f"{kind}: {note}")
        for ref in details["ended_by_oom"]:
            ctx.timeline.add(
                "inject", f"{kind}: an OOM kill in pod {ref} already ended the stress there"
            )
        fault = Fault(ctx, kind, tuple(i.ref for i in injections), records, details=details)
        return ctx.done(fault)

    def nodes(
        self,
        *,
        selector: str | None = None,
        name: str | Sequence[str] | None = None,
        cpu: Amount = None,
        memory: Amount = None,
        count: int = 1,
        namespace: str = "default",
        duration: Duration = "10m",
        image: str | None = None,
        within: Duration = 60,
    ) -> Fault:
        """Burn CPU and hold memory on count distinct nodes, with one pinned pod per node.

        Args:
            selector: a node label selector (None: every node).
            name: a node name or a list of them (with selector, both must hold).
            cpu: CPU to burn (``"2"``, ``"500m"``, ``"limit"`` = the node's allocatable CPU);
                capped at the node's allocatable CPU.
            memory: memory to hold (``"1Gi"``; ``"limit"`` = the node's allocatable memory).
            count: how many distinct nodes (chosen at random, seeded).
            namespace: where the stress pods are created.
            duration: the pods end by themselves after this long (activeDeadlineSeconds and
                stress-ng's timeout).
            image: the toolbox image (default: ``--chaos-toolbox-image``).
            within: how long the pods may take to start running.
        """
        ctx = self._ctx
        cpu_amount, memory_amount, timeout, wait = check_stress_nodes(
            selector=selector,
            name=name,
            cpu=cpu,
            memory=memory,
            count=count,
            namespace=namespace,
            duration=duration,
            image=image,
            within=within,
        )
        toolbox = image or ctx.toolbox_image
        ctx.safety.check_namespace(namespace)
        listing = ctx.kube.list_raw(ctx.kube.core.list_node)
        chosen, matching = choose_nodes(
            listing.get("items", []),
            names=node_names(name),
            selector=selector,
            count=count,
            rng=ctx.rng,
        )
        what = f"nodes matching {selector!r}" if selector else "nodes"
        ctx.safety.check_blast_radius(len(chosen), matching, what)
        pods = []
        for node in chosen:
            node_name = str(node["metadata"]["name"])
            cpu_limit, memory_limit = node_capacity(node)
            stress = plan_stress(
                cpu_amount,
                memory_amount,
                cpu_limit=cpu_limit,
                memory_limit=memory_limit,
                where=f"node {node_name} (allocatable)",
            )
            tag = ctx.ledger.new_id()
            pod_name = f"pytest-chaos-stress-{tag}"
            manifest = node_stress_pod(
                pod_name,
                tag,
                node=node_name,
                image=toolbox,
                args=scripts.stress_command(tag, stress.commands(timeout)),
                timeout_seconds=timeout,
            )
            pods.append((node, stress, tag, manifest))
        plan = (
            f"stress {len(chosen)} of {matching} node(s) with {pods[0][1].describe()} for "
            f"{format_seconds(timeout)}: "
            + ", ".join(
                f"{n['metadata']['name']} (pod {namespace}/{m['metadata']['name']})"
                for n, _, _, m in pods
            )
        )
        ctx.plan("stress.nodes", plan)
        kind = "stress.nodes"
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            for node, _plan, tag, manifest in pods:
                records.append(
                    ctx.record(
                        kind,
                        kind="Pod",
                        namespace=namespace,
                        name=manifest["metadata"]["name"],
                        uid=None,
                        undo=NODE_POD_UNDO,
                        payload={"tag": tag, "node": node["metadata"]["name"]},
                    )
                )
                create_pinned_pod(ctx.kube, namespace, manifest)
            targets = tuple(f"{namespace}/{m['metadata']['name']}" for _, _, _, m in pods)
            ctx.timeline.add("inject", f"{kind}: {plan}", targets=list(targets))
            _await_running(ctx.kube, namespace, [m for _, _, _, m in pods], wait)
        details = {
            **pods[0][1].details(),
            "duration_seconds": timeout,
            "nodes": {
                str(n["metadata"]["name"]): {"pod": m["metadata"]["name"], **s.details()}
                for n, s, _, m in pods
            },
            "effect": API_ONLY if all(is_fake_node(n) for n in chosen) else "stress-ng running",
        }
        return ctx.done(Fault(ctx, kind, targets, records, details=details))


def _stress_argv(commands: list[list[str]], tag: str) -> list[str]:
    return scripts.stress_command(tag, commands)


#: What the kubelet reports for a container ended by an OOM kill in its pod.
OOM_EXIT = 137


def ended_by_oom(state: ContainerState | None) -> bool:
    """The stressing container ended because of an OOM kill in its pod (its own or the app's)."""
    return (
        state is not None
        and state.state == "terminated"
        and (state.reason == "OOMKilled" or state.exit_code == OOM_EXIT)
    )


def _check_started(kind: str, injection: Injection, plan: StressPlan) -> None:
    """The stress runs, or it already ended with an OOM kill that the memory it held caused."""
    state = injection.state
    if state is None or state.state == "running":
        return
    if plan.memory_bytes and ended_by_oom(state):
        return  # the fault's effect: it is over already, and revert will say so
    raise InjectError(
        f"{kind}: stress container {injection.inject_container} in pod {injection.ref} did not "
        f"keep running: {state}"
    )


def _pod_started(pod: Mapping[str, Any]) -> bool | None:
    """True when running, False when it cannot run, None while it gets there."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Running":
        return True
    if phase in ("Failed", "Succeeded"):
        return False
    for container in status.get("containerStatuses") or []:
        reason = ((container.get("state") or {}).get("waiting") or {}).get("reason")
        if reason in START_FAILURES:
            return False
    return None


def _await_running(
    kube: Kube, namespace: str, manifests: Sequence[Mapping[str, Any]], within: float
) -> None:
    from pytest_chaos.kube.watching import wait_until

    names = {m["metadata"]["name"] for m in manifests}
    seen: dict[str, dict[str, Any]] = {}

    def check(pods: list[Any]) -> bool:
        seen.clear()
        seen.update(
            {
                p["metadata"]["name"]: p
                for p in map(kube.serialize, pods)
                if p["metadata"]["name"] in names
            }
        )
        states = [_pod_started(seen[n]) if n in seen else None for n in names]
        return all(s is not None for s in states)

    try:
        wait_until(
            functools.partial(kube.core.list_namespaced_pod, namespace),
            check,
            within=within,
            what=f"stress pods {', '.join(sorted(names))} to run",
            label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}",
        )
    except WaitTimeout as exc:
        raise InjectError(f"stress.nodes: {exc}") from None
    failed = sorted(n for n in names if n in seen and _pod_started(seen[n]) is False)
    if failed:
        raise InjectError(
            f"stress.nodes: pod(s) {', '.join(failed)} cannot run: "
            + "; ".join(str((seen[n].get("status") or {}).get("containerStatuses")) for n in failed)
        )


@reverter(NODE_POD_UNDO)
def delete_stress_pod(kube: Kube, record: UndoRecord) -> str:
    """Delete a node stress pod if it is still ours (uid-checked), and wait until it is gone."""
    from pytest_chaos.kube.watching import wait_until

    namespace = str(record.namespace)
    found = kube.read(kube.core.read_namespaced_pod, record.name, namespace)
    if found is None:
        return "already reverted"
    meta = found["metadata"]
    if (meta.get("labels") or {}).get(FAULT_LABEL) != record.payload.get("tag"):
        raise DriftError(
            f"{record.target} is not the stress pod this fault created (another object took its "
            f"name); left as it is (record {record.id})"
        )
    uid = meta["uid"]
    kube.delete(kube.core.delete_namespaced_pod, record.name, namespace, uid=uid)
    try:
        wait_until(
            functools.partial(kube.core.list_namespaced_pod, namespace),
            lambda pods: all(p.metadata.uid != uid for p in pods),
            within=DELETE_WITHIN,
            what=f"stress pod {record.target} to be gone",
            field_selector=f"metadata.name={record.name}",
        )
    except WaitTimeout as exc:
        raise RevertError(f"{record.target}: {exc} (record {record.id})") from None
    return "reverted"
