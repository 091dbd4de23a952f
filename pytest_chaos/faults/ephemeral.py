"""Ephemeral containers: how network and stress faults reach inside a running pod.

An ephemeral container joins a running pod without restarting it: it shares the pod's network
namespace (so its iptables rules and qdiscs are the pod's). Stress containers also name a
``targetContainerName``, to share that container's PID namespace (so undo sees, and can stop,
processes started there, and they die when that container stops). Network containers do not: the
network namespace is the pod's, and a target that is not running (a crash-looping app, perhaps
because of the very fault) would keep them from starting, so a cut could not be undone. It is
added through the ``pods/ephemeralcontainers`` subresource; no ``exec`` and no log access are
needed, because each container reports its outcome in its termination message.

Ephemeral containers can never be removed, changed or restarted, so:

* every container has a unique name: ``chaos-<kind>-<tag>`` injects, ``chaos-undo-<tag>`` undoes
  (``<tag>`` is the fault's id, stored in its undo record);
* undo is a second container running the undo script, built again from the record's data (the
  record never carries a command);
* adding a container whose name already exists is a no-op when it is the same container, so a
  retried injection or a replayed undo is harmless.

**Fake nodes.** On a kwok node (annotation ``kwok.x-k8s.io/node=fake``) no process runs: kwok
0.7 accepts ephemeral containers in the pod spec and never reports a status for them
(``status.ephemeralContainerStatuses`` stays absent, the pod is not touched otherwise). Waiting
for an exit code there makes no sense: the faults check the API side only and say so
(``api only (fake node)``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_chaos.errors import (
    ChaosConfigError,
    InjectError,
    RevertError,
    TargetingError,
    WaitTimeout,
)
from pytest_chaos.faults import FaultContext, scripts
from pytest_chaos.faults.undo import reverter
from pytest_chaos.kube import Kube
from pytest_chaos.kube.retry import call
from pytest_chaos.ledger import UndoRecord

#: The node annotation kwok manages fake nodes by.
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
#: What a fault or an undo on a fake node could check: the API side only.
API_ONLY = "api only (fake node)"
#: The undo kind of every fault injected with an ephemeral container.
UNDO = "ephemeral-container"
#: Waiting reasons after which a container will not start without someone's help.
#: The waiting reasons that mean the image is not there (or not pullable).
IMAGE_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")
START_FAILURES = (
    *IMAGE_FAILURES,
    "CreateContainerError",
    "CreateContainerConfigError",
    "RunContainerError",
)
#: PodSecurity levels that refuse the capabilities network faults add.
RESTRICTIVE_LEVELS = ("baseline", "restricted")
#: The PodSecurity label that decides what a namespace admits.
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
#: Capabilities PodSecurity ``baseline`` admits (anything else needs ``privileged``).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
#: The unprivileged user stress containers run as (so they pass PodSecurity ``restricted``).
NOBODY = 65534
#: How long an undo container may take to run, on a real node.
UNDO_WITHIN = 60.0


@dataclass(frozen=True, slots=True)
class ContainerState:
    """What the kubelet reports for one container.

    Attributes:
        state: ``waiting``, ``running``, ``terminated``, or ``gone`` (the pod was deleted or
            replaced while we waited).
        exit_code: the exit code once terminated.
        reason: e.g. ``ImagePullBackOff``, ``Completed``, ``Error``.
        message: the termination message (what the script reported), or the waiting message.
    """

    state: str
    exit_code: int | None = None
    reason: str = ""
    message: str = ""

    @property
    def failed_to_start(self) -> bool:
        """The container waits for something that will not come by itself (a missing image)."""
        return self.state == "waiting" and self.reason in START_FAILURES

    @property
    def succeeded(self) -> bool:
        """Terminated with exit code 0."""
        return self.state == "terminated" and self.exit_code == 0

    def __str__(self) -> str:
        text = self.state
        if self.exit_code is not None:
            text += f" (exit {self.exit_code})"
        if self.reason:
            text += f" {self.reason}"
        if self.message:
            text += f": {self.message.strip()}"
        return text


GONE = ContainerState("gone")


def is_fake_node(node: Mapping[str, Any]) -> bool:
    """Whether a node (as the API returns it) is a kwok fake node, where no process runs."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return annotations.get(FAKE_NODE_ANNOTATION) == "fake"


def node_is_fake(kube: Kube, name: str | None) -> bool:
    """Whether the named node is a kwok fake node (False when it does not exist)."""
    node = kube.read(kube.core.read_node, name) if name else None
    return node is not None and is_fake_node(node)


def container_state(pod: Mapping[str, Any], name: str) -> ContainerState | None:
    """The state of the ephemeral container called name in a pod (as the API returns it).

    None when the kubelet has not reported it yet (or never will: fake nodes).
    """
    statuses = (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
    for status in statuses:
        if status.get("name") != name:
            continue
        state = status.get("state") or {}
        if "terminated" in state:
            done = state["terminated"] or {}
            return ContainerState(
                "terminated",
                exit_code=done.get("exitCode"),
                reason=done.get("reason") or "",
                message=done.get("message") or "",
            )
        if "running" in state:
            return ContainerState("running")
        waiting = state.get("waiting") or {}
        return ContainerState(
            "waiting", reason=waiting.get("reason") or "", message=waiting.get("message") or ""
        )
    return None


def ephemeral_names(pod: Mapping[str, Any]) -> list[str]:
    """Names of the pod's ephemeral containers, in spec order."""
    return [c["name"] for c in (pod.get("spec") or {}).get("ephemeralContainers") or []]


def ephemeral_status(kube: Kube, namespace: str, pod: str, name: str) -> ContainerState | None:
    """The state of one ephemeral container (None: not reported; GONE: no such pod)."""
    current = read_pod(kube, namespace, pod)
    if current is None:
        return GONE
    return container_state(current, name)


def read_pod(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    """A pod as the API returns it (JSON), or None when it does not exist."""
    return kube.read(kube.core.read_namespaced_pod, name, namespace)


def container_manifest(
    *,
    name: str,
    image: str,
    command: Sequence[str],
    target_container: str | None,
    capabilities: Sequence[str],
    run_as_user: int | None = 0,
) -> dict[str, Any]:
    """The ephemeral container: no added privilege but the capabilities asked for.

    ``run_as_user=0`` (network faults) runs as root, which iptables and tc need, even when the
    pod says ``runAsNonRoot``. Another user (stress) gets PodSecurity ``restricted`` settings:
    non-root, no privilege escalation, every capability dropped, the runtime's seccomp profile.
    """
    security: dict[str, Any] = {"allowPrivilegeEscalation": False}
    added = {"add": list(capabilities)} if capabilities else {}
    if run_as_user == 0:
        security |= {"runAsUser": 0, "runAsNonRoot": False, "capabilities": added}
    else:
        security |= {
            "runAsNonRoot": True,
            "capabilities": {**added, "drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        if run_as_user is not None:
            security |= {"runAsUser": run_as_user, "runAsGroup": run_as_user}
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(command),
        "securityContext": security,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if target_container:
        container["targetContainerName"] = target_container
    return container


def add_ephemeral_container(
    kube: Kube,
    namespace: str,
    pod: str,
    *,
    name: str,
    image: str,
    command: list[str],
    target_container: str | None,
    capabilities: list[str],
    run_as_user: int | None = 0,
) -> None:
    """Add an ephemeral container to a running pod (the pod is not restarted).

    A strategic merge of ``spec.ephemeralContainers`` (merged by name), so containers added
    meanwhile by others are kept. Idempotent: when a container of that name exists with the
    same image and command, nothing happens; with another, InjectError (ephemeral containers
    cannot be changed, and a name is never reused).
    """
    from kubernetes.client.exceptions import ApiException

    wanted = container_manifest(
        name=name,
        image=image,
        command=command,
        target_container=target_container,
        capabilities=capabilities,
        run_as_user=run_as_user,
    )
    current = read_pod(kube, namespace, pod)
    if current is not None and _same_exists(current, wanted):
        return
    body: Any = {"spec": {"ephemeralContainers": [wanted]}}
    try:
        call(kube.core.patch_namespaced_pod_ephemeralcontainers, pod, namespace, body)
    except ApiException as exc:
        # A retried patch whose first attempt was applied but not answered.
        again = read_pod(kube, namespace, pod) if exc.status == 422 else None
        if again is not None and _same_exists(again, wanted):
            return
        raise


def _same_exists(pod: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for existing in (pod.get("spec") or {}).get("ephemeralContainers") or []:
        if existing.get("name") != wanted["name"]:
            continue
        if existing.get("image") == wanted["image"] and existing.get("command") == list(
            wanted["command"]
        ):
            return True
        raise InjectError(
            f"pod {pod['metadata'].get('namespace')}/{pod['metadata'].get('name')} already has "
            f"an ephemeral container {wanted['name']!r} running something else; names are never "
            "reused, so this is another run's container"
        )
    return False


def wait_for_container(
    kube: Kube,
    namespace: str,
    pod: str,
    name: str,
    *,
    uid: str | None,
    done: Callable[[ContainerState], bool],
    within: float,
    what: str,
) -> ContainerState:
    """Watch the pod until its ephemeral container's state satisfies done; return the state.

    Returns GONE when the pod is deleted or replaced (another uid) meanwhile. Raises
    WaitTimeout (with the last state in its message) at the deadline.
    """
    from pytest_chaos.kube.watching import wait_until

    seen: list[ContainerState] = []

    def check(pods: list[Any]) -> bool:
        data = [kube.serialize(p) for p in pods]
        ours = [p for p in data if not uid or p["metadata"].get("uid") == uid]
        state = container_state(ours[0], name) if ours else GONE
        seen[:] = [state or ContainerState("not reported")]
        return state is GONE or (state is not None and done(state))

    def describe(_pods: list[Any]) -> str:
        return f"container {name} {seen[0] if seen else 'not reported'}"

    wait_until(
        functools.partial(kube.core.list_namespaced_pod, namespace),
        check,
        within=within,
        what=what,
        describe=describe,
        field_selector=f"metadata.name={pod}",
    )
    return seen[0]


def ran_to_completion(state: ContainerState) -> bool:
    """A condition for wait_for_container: the container has exited or cannot start."""
    return state.state == "terminated" or state.failed_to_start


def started(state: ContainerState) -> bool:
    """A condition for wait_for_container: the container runs, has exited, or cannot start."""
    return state.state in ("running", "terminated") or state.failed_to_start


def pod_security_level(labels: Mapping[str, str] | None) -> str:
    """The PodSecurity level a namespace enforces (``privileged`` when unlabelled)."""
    return (labels or {}).get(ENFORCE_LABEL, "privileged")


def check_pod_security(
    namespace: str, labels: Mapping[str, str] | None, capabilities: Sequence[str], verb: str
) -> None:
    """Refuse, before anything is touched, capabilities the namespace's PodSecurity forbids."""
    level = pod_security_level(labels)
    forbidden = sorted(set(capabilities) - BASELINE_CAPABILITIES)
    if level == "restricted":
        forbidden = sorted(set(capabilities) - {"NET_BIND_SERVICE"})
    if level in RESTRICTIVE_LEVELS and forbidden:
        raise ChaosConfigError(
            f"{verb} adds an ephemeral container with {', '.join(forbidden)} to pods in "
            f"namespace {namespace!r}, whose PodSecurity level {level!r} "
            f"({ENFORCE_LABEL}={level}) forbids them. Run the test in a namespace labelled "
            f"{ENFORCE_LABEL}=privileged (unlabelled namespaces are), or use "
            "chaos.network.partition (a NetworkPolicy, no capabilities needed)"
        )


def namespace_labels(kube: Kube, namespace: str) -> dict[str, str]:
    """A namespace's labels ({} when it cannot be read)."""
    from kubernetes.client.exceptions import ApiException

    try:
        found = call(kube.core.read_namespace, namespace)
    except ApiException as exc:
        if exc.status in (403, 404):
            return {}
        raise
    meta: Any = found.metadata
    return dict(meta.labels or {})


def first_container(pod: Mapping[str, Any], container: str | None) -> dict[str, Any]:
    """The pod's container called container (or its first one); ChaosConfigError if absent."""
    containers: list[dict[str, Any]] = (pod.get("spec") or {}).get("containers") or []
    if container is None:
        return containers[0]
    for each in containers:
        if each.get("name") == container:
            return each
    names = ", ".join(c.get("name", "?") for c in containers)
    raise ChaosConfigError(
        f"container={container!r}: pod {pod['metadata']['name']} has no such container "
        f"(it has: {names})"
    )


#: The effects whose injecting container may run until its undo stops it.
LONG_RUNNING_EFFECTS = frozenset({"stress", "latency"})
#: The effects whose containers share the target container's PID namespace.
PID_SHARING_EFFECTS = frozenset({"stress"})


def pid_target(payload: Mapping[str, Any]) -> str | None:
    """The targetContainerName of a record's containers: the container for stress, else None."""
    if payload.get("effect") in PID_SHARING_EFFECTS:
        return str(payload["container"])
    return None


#: What each effect's containers may have: (capabilities, user). Undo takes them from here, not
#: from the record, so a record can never ask for more privilege than its kind of fault needs.
EFFECT_PRIVILEGES: dict[str, tuple[tuple[str, ...], int]] = {
    "iptables": (("NET_ADMIN", "NET_RAW"), 0),
    "netem": (("NET_ADMIN", "NET_RAW"), 0),  # latency records written before the delayer
    "latency": (("NET_ADMIN", "NET_RAW"), 0),
    "stress": ((), NOBODY),
}


def undo_script(payload: Mapping[str, Any]) -> str:
    """The undo script of a record, rebuilt from its data (records never carry commands)."""
    effect = payload.get("effect")
    tag = str(payload.get("tag"))
    if effect == "iptables":
        return scripts.iptables_undo_script(tag)
    if effect in ("latency", "netem"):
        return scripts.latency_undo_script(tag)
    if effect == "stress":
        return scripts.stress_undo_script(tag)
    raise RevertError(f"unknown ephemeral-container effect {effect!r} in an undo record")


def _fault_gone_with_pod(pod: Mapping[str, Any] | None, record: UndoRecord) -> bool:
    """The pod is gone, replaced (another uid), terminating or finished: so is the fault."""
    if pod is None or (record.uid and pod["metadata"].get("uid") != record.uid):
        return True
    phase = (pod.get("status") or {}).get("phase")
    return bool(pod["metadata"].get("deletionTimestamp")) or phase in ("Succeeded", "Failed")


@reverter(UNDO)
def undo_with_container(kube: Kube, record: UndoRecord) -> str:
    """Add the record's undo container to its pod and, on a real node, wait for its exit 0.

    A pod that is gone or was replaced took the fault with it (its network namespace and
    processes are gone): nothing to undo. On a fake node the container is only created.
    """
    payload = record.payload
    pod = read_pod(kube, str(record.namespace), record.name)
    if pod is None or _fault_gone_with_pod(pod, record):
        return "pod gone, nothing to undo"
    if payload["inject_container"] not in ephemeral_names(pod):
        return "nothing to undo"  # the injection was refused (e.g. by admission): nothing ran
    ended = _stress_ended(kube, pod, payload)
    if ended is not None:
        return f"already ended by itself: {ended}"
    undo_name = str(payload["undo_container"])
    previous = container_state(pod, undo_name)
    existed = undo_name in ephemeral_names(pod)
    capabilities, user = EFFECT_PRIVILEGES.get(str(payload.get("effect")), ((), NOBODY))
    add_ephemeral_container(
        kube,
        str(record.namespace),
        record.name,
        name=undo_name,
        image=str(payload["image"]),
        command=scripts.shell(undo_script(payload)),
        target_container=pid_target(payload),
        capabilities=list(capabilities),
        run_as_user=user,
    )
    if node_is_fake(kube, (pod.get("spec") or {}).get("nodeName")):
        return f"reverted: {API_ONLY}"
    if previous is not None and previous.succeeded:
        return "already reverted"
    state = _await_undo(kube, record, undo_name)
    if state is GONE:
        return "pod gone, nothing to undo"
    if not state.succeeded:
        raise RevertError(
            f"{record.target}: the undo container {undo_name} did not succeed: {state} "
            f"(record {record.id}); the fault may still be active in the pod"
        )
    _await_injector_end(kube, record)
    return "already reverted" if existed else "reverted"


def _stress_ended(
    kube: Kube, pod: Mapping[str, Any], payload: Mapping[str, Any]
) -> ContainerState | None:
    """The stressing container's final state, if it has ended on a real node; else None.

    Its processes end with it (the runtime kills the rest of a container that shares another's
    PID namespace when its first process exits), and they also die when the container they
    share a PID namespace with stops (an OOM kill, a restart). Nothing is left to stop, and an
    undo container could not even start while that container is down.
    """
    if payload.get("effect") != "stress":
        return None
    state = container_state(pod, str(payload["inject_container"]))
    if state is None or state.state != "terminated":
        return None
    if node_is_fake(kube, (pod.get("spec") or {}).get("nodeName")):
        return None
    return state


def _await_undo(kube: Kube, record: UndoRecord, name: str) -> ContainerState:
    try:
        return wait_for_container(
            kube,
            str(record.namespace),
            record.name,
            name,
            uid=record.uid,
            done=ran_to_completion,
            within=UNDO_WITHIN,
            what=f"undo container {name} in {record.target} to finish",
        )
    except WaitTimeout as exc:
        raise RevertError(f"{record.target}: {exc} (record {record.id})") from None


def _await_injector_end(kube: Kube, record: UndoRecord) -> None:
    """For stress and latency: the injecting container must have ended after its undo.

    Its processes (the stress, the NFQUEUE delayer) are stopped by the undo container.
    """
    effect = record.payload.get("effect")
    if effect not in LONG_RUNNING_EFFECTS:
        return
    name = str(record.payload["inject_container"])
    try:
        wait_for_container(
            kube,
            str(record.namespace),
            record.name,
            name,
            uid=record.uid,
            done=lambda s: s.state == "terminated" or s.failed_to_start,
            within=UNDO_WITHIN,
            what=f"{effect} container {name} in {record.target} to end",
        )
    except WaitTimeout as exc:
        what = "the stress" if effect == "stress" else "the latency delayer"
        raise RevertError(
            f"{record.target}: {what} still runs after its undo: {exc} (record {record.id})"
        ) from None


def pod_ref(pod: Mapping[str, Any]) -> str:
    """``namespace/name`` of a pod as the API returns it."""
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def choose_pods(
    ctx: FaultContext,
    selector: str | None,
    namespace: str,
    mode: str,
    value: float | None,
) -> tuple[list[dict[str, Any]], int]:
    """The running pods a fault hits (seeded choice, blast radius checked) and how many matched.

    Only Running pods that are not terminating are candidates (an ephemeral container needs a
    running pod). Nothing matching is a TargetingError listing the pods that exist.
    """
    from pytest_chaos.targeting import PodFilter, choose, matching_text, nothing_matched

    listing = ctx.kube.list_raw(
        ctx.kube.core.list_namespaced_pod, namespace, label_selector=selector or None
    )
    candidates = PodFilter(phase="Running").apply(listing.get("items", []))
    if not candidates:
        everything = ctx.kube.list_raw(ctx.kube.core.list_namespaced_pod, namespace)
        existing = {
            p["metadata"]["name"]: p["metadata"].get("labels") or {}
            for p in everything.get("items", [])
        }
        message = nothing_matched("pods", selector, namespace, existing)
        raise TargetingError(f"{message}\n(only Running pods that are not terminating count)")
    chosen = choose(candidates, mode, value, ctx.rng, key=pod_ref)
    ctx.safety.check_blast_radius(
        len(chosen), len(candidates), f"pods {matching_text(selector)} in {namespace}"
    )
    return [dict(p) for p in chosen], len(candidates)


@dataclass
class Injection:
    """One ephemeral container to add to one pod, and the record that undoes it."""

    pod: dict[str, Any]
    tag: str
    inject_container: str
    command: list[str]
    payload: dict[str, Any]
    fake_node: bool = False
    state: ContainerState | None = None

    @property
    def ref(self) -> str:
        """``namespace/name`` of the pod."""
        return pod_ref(self.pod)


def new_injection(
    ctx: FaultContext,
    pod: dict[str, Any],
    *,
    kind: str,
    effect: str,
    script_for: Callable[[str], list[str]],
    container: str | None,
    image: str,
    capabilities: Sequence[str],
    run_as_user: int | None,
    extra: Mapping[str, Any] | None = None,
) -> Injection:
    """Plan one pod's injection: a fresh tag, the container names, the record's payload."""
    tag = ctx.ledger.new_id()
    target = first_container(pod, container)["name"]
    node = (pod.get("spec") or {}).get("nodeName")
    family, _, verb = kind.partition(".")
    inject_name = f"chaos-{'stress' if family == 'stress' else verb}-{tag}"
    payload = {
        "effect": effect,
        "tag": tag,
        "pod_uid": pod["metadata"].get("uid"),
        "node": node,
        "container": target,
        "image": image,
        "capabilities": list(capabilities),
        "run_as_user": run_as_user,
        "inject_container": inject_name,
        "undo_container": f"chaos-undo-{tag}",
        **(extra or {}),
    }
    return Injection(
        pod=pod,
        tag=tag,
        inject_container=inject_name,
        command=script_for(tag),
        payload=payload,
        fake_node=node_is_fake(ctx.kube, node),
    )


def inject_all(
    ctx: FaultContext,
    kind: str,
    injections: Sequence[Injection],
    records: list[UndoRecord],
) -> None:
    """Record, then add, every injection's container (call inside ``injecting``)."""
    for each in injections:
        meta = each.pod["metadata"]
        records.append(
            ctx.record(
                kind,
                kind="Pod",
                namespace=meta["namespace"],
                name=meta["name"],
                uid=meta.get("uid"),
                undo=UNDO,
                payload=each.payload,
            )
        )
        add_ephemeral_container(
            ctx.kube,
            meta["namespace"],
            meta["name"],
            name=each.inject_container,
            image=str(each.payload["image"]),
            command=each.command,
            target_container=pid_target(each.payload),
            capabilities=list(each.payload["capabilities"]),
            run_as_user=each.payload["run_as_user"],
        )


def await_all(
    ctx: FaultContext,
    kind: str,
    injections: Sequence[Injection],
    *,
    done: Callable[[ContainerState], bool],
    within: float,
) -> None:
    """On real nodes, wait for each injecting container (done decides); fill in their states.

    On fake nodes nothing runs: the state stays None. A container that cannot start, or that
    is gone with its pod, is an InjectError naming the pod and what the kubelet said.
    """
    for each in injections:
        if each.fake_node:
            continue
        meta = each.pod["metadata"]
        try:
            each.state = wait_for_container(
                ctx.kube,
                meta["namespace"],
                meta["name"],
                each.inject_container,
                uid=meta.get("uid"),
                done=done,
                within=within,
                what=f"{kind} container {each.inject_container} in pod {each.ref}",
            )
        except WaitTimeout as exc:
            raise InjectError(f"{kind}: {exc}") from None
        if each.state is GONE:
            raise InjectError(f"{kind}: pod {each.ref} went away while the fault was injected")
        if each.state.failed_to_start:
            hint = (
                f". Is the toolbox image {each.payload['image']!r} on node "
                f"{each.payload['node']}? (set it with --chaos-toolbox-image)"
                if each.state.reason in IMAGE_FAILURES
                else ""
            )
            raise InjectError(
                f"{kind}: container {each.inject_container} cannot start in pod {each.ref}: "
                f"{each.state}{hint}"
            )


def outcomes(injections: Sequence[Injection]) -> dict[str, str]:
    """What each pod's container reported (or that only the API side was checked)."""
    return {
        each.ref: API_ONLY if each.fake_node or each.state is None else str(each.state)
        for each in injections
    }
