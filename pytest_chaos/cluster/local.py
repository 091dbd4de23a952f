"""The embedded local cluster: etcd, kube-apiserver, controllers, scheduler and kwok fake nodes.

Real API semantics without Docker: the controllers recreate pods, enforce PodDisruptionBudgets on
eviction and collect garbage; kwok keeps the fake nodes Ready and their pods Running. Everything a
cluster owns lives in its state directory (certificates, kubeconfig, etcd data, one log per
component, ``cluster.json`` with the pid and start time of every process), so any process can find,
reuse or stop it. ``up`` is idempotent; a cluster left stale by a killed run is cleaned up first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_chaos.cluster import binaries, pki, processes
from pytest_chaos.cluster.processes import ProcessRecord
from pytest_chaos.errors import ClusterError, WaitTimeout
from pytest_chaos.kube.deadline import Deadline

if TYPE_CHECKING:
    from pytest_chaos.cluster.istio.control import Gateway

Progress = Callable[[str], None]
RealNodeWish = Literal["yes", "no", "auto"]

DEFAULT_NAME = "local"
DEFAULT_NODES = 3
ZONE_LABEL = "topology.kubernetes.io/zone"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.1/16"

#: Start order; each later component needs the ones before it.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
#: The processes of the optional real node, started after the others.
REAL_NODE_COMPONENTS = ("containerd", "kubelet", "kube-proxy", "cluster-dns", "network-policies")
#: The processes of ``up(istio=True)``, started last (:mod:`pytest_chaos.cluster.istio.control`).
ISTIO_COMPONENTS = ("istiod", "istio-gateway")

_STATE_FILE = "cluster.json"


def _kwok_stages(stages: Path, delay: float) -> str:
    """Kwok's config: its default stages, or its fast pod stages with pod-ready delayed."""
    if delay <= 0:
        return ""
    import yaml

    documents = [d for d in yaml.safe_load_all(stages.read_text()) if d]
    for document in documents:
        if document["metadata"]["name"] == "pod-ready":
            milliseconds = int(delay * 1000)
            document["spec"]["delay"] = {
                "durationMilliseconds": milliseconds,
                "jitterDurationMilliseconds": milliseconds,
            }
    return yaml.safe_dump_all(documents, sort_keys=False)


def state_root() -> Path:
    """Where clusters keep their state: ``$PYTEST_CHAOS_STATE_DIR`` or the user state dir."""
    explicit = os.environ.get("PYTEST_CHAOS_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "pytest-chaos" / "clusters"


def context_name(name: str) -> str:
    """The kubeconfig context of the local cluster called name."""
    return f"pytest-chaos-{name}"


@dataclass(frozen=True, slots=True)
class UpResult:
    """What ``up`` did: where to connect, and whether an existing cluster was reused."""

    kubeconfig: Path
    context: str
    server: str
    reused: bool
    seconds: float
    notes: tuple[str, ...] = ()
    #: Why the real node asked for with ``real_node="auto"`` does not run (empty: it runs).
    real_node_missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One component's process as recorded and as found."""

    component: str
    pid: int
    running: bool
    log: str


@dataclass(frozen=True, slots=True)
class Status:
    """What runs for a local cluster."""

    name: str
    state_dir: Path
    exists: bool
    components: tuple[ComponentStatus, ...] = ()
    server: str | None = None
    ready: bool = False
    orphans: tuple[int, ...] = ()

    @property
    def running(self) -> bool:
        """True when every component of a recorded cluster runs."""
        return self.exists and bool(self.components) and all(c.running for c in self.components)


@dataclass
class _State:
    name: str
    ports: dict[str, int]
    nodes: int
    processes: list[ProcessRecord] = field(default_factory=list)
    ephemeral: bool = False
    pod_ready_delay: float = 0.0
    #: Why a real node that was asked for could not run here (empty: it runs, or was not asked).
    real_node_missing: list[str] = field(default_factory=list)
    #: How many netns real nodes run (``realnodes``; 0: none, or the host-network real node).
    real_nodes: int = 0
    #: The loopback ports of istiod and the gateway (``up(istio=True)``; None: no Istio).
    istio: dict[str, int] | None = None

    @property
    def real_node(self) -> bool:
        return any(p.component in REAL_NODE_COMPONENTS for p in self.processes)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ports": self.ports,
            "nodes": self.nodes,
            "processes": [p.to_json() for p in self.processes],
            "ephemeral": self.ephemeral,
            "pod_ready_delay": self.pod_ready_delay,
            "real_node_missing": self.real_node_missing,
            "real_nodes": self.real_nodes,
            "istio": self.istio,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _State:
        return cls(
            name=str(data["name"]),
            ports={k: int(v) for k, v in data["ports"].items()},
            nodes=int(data["nodes"]),
            processes=[ProcessRecord.from_json(p) for p in data["processes"]],
            ephemeral=bool(data.get("ephemeral", False)),
            pod_ready_delay=float(data.get("pod_ready_delay", 0.0)),
            real_node_missing=[str(m) for m in data.get("real_node_missing", [])],
            real_nodes=int(data.get("real_nodes", 0)),
            istio={k: int(v) for k, v in data["istio"].items()} if data.get("istio") else None,
        )


def _described(record: ProcessRecord) -> str:
    """A component's name, with its node's for a netns real node's (``kubelet (real-node-1)``)."""
    parts = Path(record.log).parts  # .../<node>/logs/<component>.log
    if len(parts) > 3 and parts[-2] == "logs" and parts[-3].startswith("real-node-"):
        return f"{record.component} ({parts[-3]})"
    return record.component


class LocalCluster:
    """One named local cluster and its state directory."""

    def __init__(self, name: str = DEFAULT_NAME, *, root: Path | None = None) -> None:
        """Address the local cluster called name (under root, default :func:`state_root`)."""
        if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
            raise ClusterError(f"invalid local cluster name {name!r}: use letters, digits, - or _")
        self.name = name
        self.root = root or state_root()
        self.state_dir = self.root / name

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig written by ``up``."""
        return self.state_dir / "kubeconfig"

    @property
    def context(self) -> str:
        """The kubeconfig context name of this cluster."""
        return context_name(self.name)

    # ------------------------------------------------------------------ public verbs

    def up(
        self,
        *,
        nodes: int = DEFAULT_NODES,
        port: int | None = None,
        progress: Progress | None = None,
        timeout: float = 120.0,
        user: str | None = None,
        pod_ready_delay: float = 0.0,
        real_node: RealNodeWish = "no",
        real_nodes: int = 0,
        registry_port: int | None = None,
        istio: bool = False,
    ) -> UpResult:
        """Start the cluster, or reuse it when it already runs healthy.

        registry_port: where its OCI registry listens (default 5001; another free port when
        that one is busy; the address is in ``status``).

        real_node: ``"yes"`` adds a real node (kubelet, containerd, kube-proxy) beside the fake
        ones and fails when this host cannot run one, listing what it lacks; ``"auto"`` adds one
        when the host can and otherwise records why not (the ``real_node`` fixture skips with
        that reason); ``"no"`` runs fake nodes only. A running cluster gets its real node added.

        With user (a pytest session), the cluster is shared: the session attaches as a user and
        must :meth:`detach`; a cluster a session started is stopped when its last user leaves.
        Without user (``pytest-chaos cluster up``), the cluster stays up until ``down``.
        timeout (seconds) bounds the start; cleaning up a crashed run's leftovers and any time
        this machine stood still (a paused VM) are not counted.
        pod_ready_delay (seconds) makes every pod on the fake nodes take that long to become
        Ready, like a real container starting (0: at once).
        real_nodes: that many real nodes, each in its own network namespace, untainted, in zones
        a, b, c (:mod:`pytest_chaos.cluster.realnodes`); with them, ``nodes`` may be 0.
        istio: also run istiod against the API server (Istio 1.31's CRDs instead of the three
        validating ones) and a host ingress gateway (:mod:`pytest_chaos.cluster.istio`); a
        running cluster gets them added. Needs ``pytest-chaos cluster build --istio``.
        """
        say = progress or (lambda _message: None)
        if istio:
            from pytest_chaos.cluster.istio import control

            control.istio_binaries()  # before anything starts: say how to build what is missing
        if nodes < 0 or nodes + real_nodes < 1:
            raise ClusterError(
                f"nodes={nodes}, real_nodes={real_nodes}: a local cluster needs at least 1 node"
            )
        if real_nodes:
            self._check_real_nodes(real_nodes)
        started = time.monotonic()
        with self._lock():
            state = self._read_state()
            if state is not None and self._healthy(state):
                say(f"reusing the running local cluster {self.name!r} ({self.state_dir})")
                if state.pod_ready_delay != pod_ready_delay:
                    say(
                        f"note: it was started with a pod readiness delay of "
                        f"{state.pod_ready_delay:g}s (asked for {pod_ready_delay:g}s); "
                        "`pytest-chaos cluster down` first to change it"
                    )
                if user is None and state.ephemeral:
                    state.ephemeral = False  # asked for by hand: keep it after the sessions
                    self._write_state(state)
                if real_nodes and state.real_nodes != real_nodes:
                    say(
                        f"note: it runs {state.real_nodes} real node(s) (asked for {real_nodes}); "
                        "`pytest-chaos cluster down` first to change it"
                    )
                elif real_node != "no" and not state.real_node:
                    self._add_real_node(state, real_node, say, deadline=Deadline(timeout))
                if istio and state.istio is None:
                    self._add_istio(state, say, deadline=Deadline(timeout), crds=True)
                if user is not None:
                    self._attach(user)
                server = self._server(state)
                return UpResult(
                    self.kubeconfig,
                    self.context,
                    server,
                    True,
                    time.monotonic() - started,
                    real_node_missing=tuple(state.real_node_missing),
                )
            notes = list(self._clean_stale(state, say))
            # The budget is for starting: cleaning up a crashed run's leftovers is not counted.
            deadline = Deadline(timeout)
            binaries_by_name = {
                name: binaries.binary(name)
                for name in (
                    "etcd",
                    "kube-apiserver",
                    "kube-controller-manager",
                    "kube-scheduler",
                    "kwok",
                    "istio-crds.yaml",
                    binaries.KWOK_POD_STAGES,
                )
            }
            if istio:  # the CRDs of istiod's own line, ServiceEntry and the others included
                binaries_by_name["istio-crds.yaml"] = binaries.binary(binaries.ISTIO_CONTROL_CRDS)
            for attempt in range(3):
                try:
                    fresh = self._start_with_free_ports(
                        port,
                        nodes,
                        user,
                        pod_ready_delay,
                        binaries_by_name,
                        notes,
                        say,
                        deadline=deadline,
                        real_node=real_node,
                        real_nodes=real_nodes,
                        registry_port=registry_port,
                        istio=istio,
                    )
                    break
                except ClusterError as exc:
                    # Another process took a port between our pick and the bind: pick again.
                    if "address already in use" not in str(exc) or attempt == 2:
                        raise
                    say("a port was taken while the cluster started; retrying with others")
            if deadline.stalled >= 1:
                notes.append(
                    f"this machine stood still for {deadline.stalled:.0f}s while the cluster "
                    "started (a paused VM or process); that time was not counted against the "
                    "timeout"
                )
                say(notes[-1])
            if user is not None:
                self._attach(user)
            return UpResult(
                self.kubeconfig,
                self.context,
                self._server(fresh),
                False,
                time.monotonic() - started,
                tuple(notes),
                tuple(fresh.real_node_missing),
            )

    def _start_with_free_ports(
        self,
        port: int | None,
        nodes: int,
        user: str | None,
        pod_ready_delay: float,
        binaries_by_name: dict[str, Path],
        notes: list[str],
        say: Progress,
        *,
        deadline: Deadline,
        real_node: RealNodeWish = "no",
        real_nodes: int = 0,
        registry_port: int | None = None,
        istio: bool = False,
    ) -> _State:
        api_port, taken = processes.free_port(port)
        if taken:
            notes.append(f"port {port} is busy; the API server listens on {api_port} instead")
            say(notes[-1])
        ports = {"apiserver": api_port}
        for component in (
            "etcd-client",
            "etcd-peer",
            "controller-manager",
            "scheduler",
            "kwok",
        ):
            ports[component] = processes.free_port()[0]
        state = _State(
            name=self.name,
            ports=ports,
            nodes=nodes,
            ephemeral=user is not None,
            pod_ready_delay=pod_ready_delay,
            real_nodes=real_nodes,
        )
        try:
            self._start(state, binaries_by_name, say, deadline=deadline)
            if real_nodes:
                self._add_real_nodes(state, real_nodes, say, deadline=deadline)
            elif real_node != "no":
                self._add_real_node(state, real_node, say, deadline=deadline)
            self._start_registry(state, registry_port, notes, say, deadline=deadline)
            if istio:
                self._add_istio(state, say, deadline=deadline, crds=False)
        except BaseException:
            self._stop(state)
            raise
        return state

    def _start_registry(
        self,
        state: _State,
        port: int | None,
        notes: list[str],
        say: Progress,
        *,
        deadline: Deadline,
    ) -> None:
        """Start the cluster's OCI registry and point every real node's containerd at it."""
        from pytest_chaos.cluster import registry
        from pytest_chaos.cluster.node_runtimes import node_runtimes
        from pytest_chaos.errors import BinaryMissingError

        try:
            program = binaries.binary(registry.PROGRAM)
        except BinaryMissingError as exc:
            notes.append(f"no registry: {exc}")
            say(notes[-1])
            return
        preferred = port or registry.DEFAULT_PORT
        chosen, taken = processes.free_port(preferred)
        if taken:
            notes.append(f"port {preferred} is busy; the registry listens on {chosen} instead")
            say(notes[-1])
        nodes = node_runtimes(self.state_dir)
        addresses = registry.listen_addresses(nodes, chosen)
        record = processes.spawn(
            registry.COMPONENT,
            registry.argv(program, self.state_dir, addresses),
            self.state_dir / "logs" / f"{registry.COMPONENT}.log",
            cwd=self.state_dir,
        )
        state.processes.append(record)
        state.ports[registry.COMPONENT] = chosen
        self._write_state(state)
        registry.write_hosts(nodes, chosen)
        if not deadline.poll(lambda: registry.answers(chosen), every=0.1):
            log = self.state_dir / "logs" / f"{registry.COMPONENT}.log"
            raise ClusterError(
                f"the registry did not answer on 127.0.0.1:{chosen}/v2/ within "
                f"{deadline.describe()}; its log {log}:\n{processes.log_tail(log)}"
            )
        say(f"registry: localhost:{chosen} (blobs in {registry.storage(self.state_dir)})")

    def _add_istio(self, state: _State, say: Progress, *, deadline: Deadline, crds: bool) -> None:
        """Start istiod and the host gateway (crds: first replace the validating CRDs)."""
        from pytest_chaos.cluster import bootstrap
        from pytest_chaos.cluster.istio import control
        from pytest_chaos.cluster.istio.config import IstioLayout
        from pytest_chaos.kube import Kube

        ports = control.choose_ports()
        state.istio = ports.to_json()  # recorded first: status and down know Istio was asked
        self._write_state(state)

        def spawn(
            component: str, argv: list[str], log: Path, env: dict[str, str], cwd: Path
        ) -> ProcessRecord:
            record = processes.spawn(component, argv, log, env=env, cwd=cwd)
            state.processes.append(record)
            self._write_state(state)
            return record

        kube = Kube.from_kubeconfig(self.kubeconfig, self.context)
        try:
            if crds:
                say("installing Istio 1.31's CRDs")
                bootstrap.install_crds(kube, binaries.binary(binaries.ISTIO_CONTROL_CRDS))
                bootstrap.wait_established(kube, deadline=deadline)
            control.install(kube)
            say(f"starting istiod and the ingress gateway (127.0.0.1:{ports.gateway_http})")
            gateway = control.start(
                IstioLayout(self.state_dir / "istio"),
                self.kubeconfig,
                pki.Pki(self.state_dir / "pki").ca_cert,
                ports,
                spawn,
                say,
                deadline=deadline,
            )
            control.publish(kube, gateway)
        finally:
            kube.close()
        say(f"Istio: istiod and the ingress gateway run; Gateways listen on {gateway.url}")

    def istio_gateway(self) -> Gateway | None:
        """The host ingress gateway of a cluster started with Istio (None: it runs none)."""
        from pytest_chaos.cluster.istio.config import IstioPorts
        from pytest_chaos.cluster.istio.control import gateway_of

        state = self._read_state()
        if state is None or state.istio is None:
            return None
        return gateway_of(IstioPorts.from_json(state.istio))

    def registry_address(self) -> str | None:
        """``localhost:<port>`` of the running cluster's registry (None: it has none)."""
        state = self._read_state()
        if state is None or "registry" not in state.ports:
            return None
        return f"localhost:{state.ports['registry']}"

    def _add_real_node(
        self, state: _State, wish: RealNodeWish, say: Progress, *, deadline: Deadline
    ) -> None:
        """Start the real node of a running cluster (or record why this host cannot run one)."""
        from pytest_chaos.cluster.realnode import RealNode, missing_requirements

        missing = missing_requirements()
        holder = self._real_node_holder()
        if holder is not None:
            missing.append(
                f"the real node of local cluster {holder!r} runs on this host (one per machine): "
                f"`pytest-chaos cluster down --name {holder}` first"
            )
        if missing:
            if wish == "yes":
                raise ClusterError("this host cannot run a real node:\n  " + "\n  ".join(missing))
            say("no real node: " + "; ".join(missing))
            state.real_node_missing = missing
            self._write_state(state)
            return
        records = RealNode(self.state_dir).start(
            self.kubeconfig,
            self.state_dir / "pki",
            self._server(state),
            say,
            timeout=max(30.0, deadline.remaining()),
        )
        state.processes.extend(records)
        state.real_node_missing = []
        self._write_state(state)
        if "registry" in state.ports:  # a running cluster's registry, for its new node
            from pytest_chaos.cluster import registry
            from pytest_chaos.cluster.node_runtimes import node_runtimes

            registry.write_hosts(node_runtimes(self.state_dir), state.ports["registry"])

    def _check_real_nodes(self, count: int) -> None:
        """Refuse, before anything starts, real nodes this machine or another cluster rules out."""
        from pytest_chaos.capacity import check_count, machine_limit
        from pytest_chaos.errors import ChaosConfigError

        try:
            check_count(count, "real_nodes", "the caller", machine_limit())
        except ChaosConfigError as exc:
            raise ClusterError(str(exc)) from None
        from pytest_chaos.cluster.realnodes.cluster import requirements

        missing = requirements()
        if missing:
            raise ClusterError("this host cannot run real nodes:\n  " + "\n  ".join(missing))
        holder = self._real_nodes_holder()
        if holder is not None:
            raise ClusterError(
                f"local cluster {holder!r} runs real nodes on this host; their routes to the "
                f"service range {SERVICE_CIDR} would clash: `pytest-chaos cluster down --name "
                f"{holder}` first"
            )

    def _real_nodes_holder(self) -> str | None:
        """Another local cluster of this machine that runs netns real nodes, if any."""
        return self._other_running(lambda state, process: bool(state.real_nodes))

    def _other_running(self, counts: Callable[[_State, ProcessRecord], bool]) -> str | None:
        """The first other local cluster of this machine with a running process that counts."""
        for other in sorted(self.root.glob("*/" + _STATE_FILE)):
            name = other.parent.name
            if name == self.name:
                continue
            state = LocalCluster(name, root=self.root)._read_state()
            if state is not None and any(
                counts(state, p) and processes.is_running(p) for p in state.processes
            ):
                return name
        return None

    def _add_real_nodes(
        self, state: _State, count: int, say: Progress, *, deadline: Deadline
    ) -> None:
        """Start count netns real nodes in a running cluster."""
        from pytest_chaos.cluster.realnodes import cluster as real_nodes

        state.real_nodes = count  # recorded first: a failed start is cleaned up as real nodes
        self._write_state(state)
        records = real_nodes.start(
            self.state_dir,
            count,
            self.kubeconfig,
            self.state_dir / "pki",
            self._server(state),
            SERVICE_CIDR,
            say,
            timeout=max(30.0, deadline.remaining()),
        )
        state.processes.extend(records)
        state.real_node_missing = []
        self._write_state(state)

    def _real_node_holder(self) -> str | None:
        """Another local cluster of this machine whose real node runs, if any."""
        return self._other_running(
            lambda state, process: not state.real_nodes
            and process.component in REAL_NODE_COMPONENTS
        )

    def detach(self, user: str) -> bool:
        """A session is done with the cluster; stop it if it is ephemeral and unused. True if so."""
        with self._lock():
            users = self.state_dir / "users"
            (users / user).unlink(missing_ok=True)
            state = self._read_state()
            if state is None or not state.ephemeral or self._live_users():
                return False
            self._stop(state)
            return True

    def _attach(self, user: str) -> None:
        users = self.state_dir / "users"
        users.mkdir(exist_ok=True)
        (users / user).touch()

    def _live_users(self) -> list[str]:
        users = self.state_dir / "users"
        live = []
        for entry in users.glob("*") if users.is_dir() else []:
            pid, _, start = entry.name.partition("-")
            if pid.isdigit() and str(processes.start_time_of(int(pid))) == start:
                live.append(entry.name)
            else:
                entry.unlink(missing_ok=True)  # a session that died without detaching
        return live

    def down(self) -> list[int]:
        """Stop every process of this cluster and remove its state; return pids that survived."""
        with self._lock():
            state = self._read_state()
            return self._stop(state)

    def dead_components(self) -> list[str]:
        """Components recorded as started whose process is gone (a crash, an OOM kill...)."""
        state = self._read_state()
        if state is None:
            return []
        return [_described(p) for p in state.processes if not processes.is_running(p)]

    def network_policies(self) -> str:
        """Who enforces NetworkPolicies here ("": nothing does, the CNI bridge does not).

        The netns real nodes run an enforcer each (:mod:`~pytest_chaos.cluster.realnodes.policies`);
        the kwok fake nodes run no pod and the host-network real node has none.
        """
        from pytest_chaos.cluster.realnodes import policies

        state = self._read_state()
        if state is None or not state.real_nodes:
            return ""
        running = [
            p
            for p in state.processes
            if p.component == policies.COMPONENT and processes.is_running(p)
        ]
        return policies.enforcer() if running else ""

    def status(self) -> Status:
        """What runs, without changing anything."""
        state = self._read_state()
        orphans = tuple(self._orphans(state))
        if state is None:
            return Status(self.name, self.state_dir, exists=False, orphans=orphans)
        components = tuple(
            ComponentStatus(p.component, p.pid, processes.is_running(p), p.log)
            for p in state.processes
        )
        server = self._server(state)
        ready = all(c.running for c in components) and self._readyz(state)
        return Status(self.name, self.state_dir, True, components, server, ready, orphans)

    # ------------------------------------------------------------------ state and locking

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f".{self.name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_state(self) -> _State | None:
        path = self.state_dir / _STATE_FILE
        try:
            return _State.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None

    def _write_state(self, state: _State) -> None:
        path = self.state_dir / _STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2))
        tmp.replace(path)

    def _server(self, state: _State) -> str:
        return f"https://127.0.0.1:{state.ports['apiserver']}"

    def _orphans(self, state: _State | None) -> list[int]:
        recorded = {p.pid for p in state.processes if processes.is_running(p)} if state else set()
        return processes.find_orphans(str(self.state_dir) + "/", exclude=recorded)

    def _healthy(self, state: _State) -> bool:
        return (
            {p.component for p in state.processes}
            - set(REAL_NODE_COMPONENTS)
            - set(ISTIO_COMPONENTS)
            - {"registry"}
            == set(COMPONENTS)
            and all(processes.is_running(p) for p in state.processes)
            and self.kubeconfig.is_file()
            and self._readyz(state)
        )

    def _clean_stale(self, state: _State | None, say: Progress) -> Iterator[str]:
        leftovers = [p.pid for p in state.processes if processes.is_running(p)] if state else []
        orphans = self._orphans(state)
        if leftovers or orphans or self.state_dir.exists():
            what = []
            if leftovers:
                what.append(f"{len(leftovers)} process(es) of an unhealthy cluster")
            if orphans:
                what.append(f"{len(orphans)} orphaned process(es) of a killed run")
            if not what:
                what.append("a stale state directory")
            message = f"cleaning up {' and '.join(what)} in {self.state_dir}"
            say(message)
            yield message
            self._remove_real_node(state, say)
            survivors = processes.terminate([*leftovers, *orphans])
            if survivors:
                raise ClusterError(
                    f"could not stop pids {survivors} of a stale cluster in "
                    f"{self.state_dir}; stop them by hand, then retry"
                )
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _remove_real_node(self, state: _State | None, say: Progress) -> None:
        """Stop the real node first: its mounts, veths and chains must go before the state."""
        from pytest_chaos.cluster.realnode import RealNode
        from pytest_chaos.cluster.realnodes import cluster as real_nodes

        records = (
            [p for p in state.processes if p.component in REAL_NODE_COMPONENTS] if state else []
        )
        if (state is not None and state.real_nodes) or real_nodes.base(self.state_dir).exists():
            left = real_nodes.stop(self.state_dir, records)
            if left:
                raise ClusterError(
                    f"the real nodes of {self.name!r} left things behind: {'; '.join(left)}"
                )
            return
        if not records and not (self.state_dir / "realnode").exists():
            return
        left = RealNode(self.state_dir).stop(records, say)
        if left:
            raise ClusterError(
                f"the real node of {self.name!r} left things behind: {'; '.join(left)}"
            )

    def _stop(self, state: _State | None) -> list[int]:
        real_node_error: ClusterError | None = None
        try:
            self._remove_real_node(state, lambda _message: None)
        except ClusterError as exc:
            real_node_error = exc  # still stop the control plane; then say what was left
        pids = (
            [p.pid for p in reversed(state.processes) if processes.is_running(p)] if state else []
        )
        pids += [pid for pid in self._orphans(state) if pid not in pids]
        survivors = processes.terminate(pids)
        if real_node_error is not None:
            raise real_node_error
        if not survivors:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return survivors

    # ------------------------------------------------------------------ starting

    def _start(
        self, state: _State, bins: dict[str, Path], say: Progress, *, deadline: Deadline
    ) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        logs = self.state_dir / "logs"
        say(f"starting local cluster {self.name!r} in {self.state_dir}")
        certs = pki.create(self.state_dir / "pki")
        self._write_kubeconfig(state, certs)
        self._write_state(state)

        def start(component: str, argv: list[str], env: dict[str, str] | None = None) -> None:
            record = processes.spawn(
                component, argv, logs / f"{component}.log", env=env, cwd=self.state_dir
            )
            state.processes.append(record)
            self._write_state(state)

        p = state.ports
        start(
            "etcd",
            [
                str(bins["etcd"]),
                "--name=local",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{p['etcd-client']}",
                f"--advertise-client-urls=http://127.0.0.1:{p['etcd-client']}",
                f"--listen-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
                f"--initial-cluster=local=http://127.0.0.1:{p['etcd-peer']}",
                "--unsafe-no-fsync",
                "--auto-compaction-retention=1",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
                "--listen-metrics-urls=",
            ],
        )
        start(
            "kube-apiserver",
            [
                str(bins["kube-apiserver"]),
                f"--etcd-servers=http://127.0.0.1:{p['etcd-client']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['apiserver']}",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--tls-cert-file={certs.serving_cert}",
                f"--tls-private-key-file={certs.serving_key}",
                f"--client-ca-file={certs.ca_cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={certs.service_account_pub}",
                f"--service-account-signing-key-file={certs.service_account_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                f"--kubelet-client-certificate={certs.admin_cert}",
                f"--kubelet-client-key={certs.admin_key}",
                # The real node's name does not resolve; logs and exec dial its address.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                # The aggregation layer's front-proxy settings; without them every component logs
                # "missing content for CA bundle" errors.
                f"--requestheader-client-ca-file={certs.ca_cert}",
                "--requestheader-allowed-names=",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={certs.admin_cert}",
                f"--proxy-client-key-file={certs.admin_key}",
                "--profiling=false",
            ],
        )
        say("waiting for kube-apiserver /readyz")
        self._wait_apiserver(state, deadline)
        kubeconfig = str(self.kubeconfig)
        start(
            "kube-controller-manager",
            [
                str(bins["kube-controller-manager"]),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['controller-manager']}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={certs.service_account_key}",
                f"--root-ca-file={certs.ca_cert}",
                f"--cluster-signing-cert-file={certs.ca_cert}",
                f"--cluster-signing-key-file={certs.directory / 'ca.key'}",
                # Room for a busy machine: a pod the node controller marks NotReady on a kwok
                # node never becomes Ready again, so a heartbeat flap would break tests for good.
                # Real nodes heartbeat every 4 s: 20 s tells a stopped one (chaos.nodes.stop)
                # in seconds, not minutes.
                f"--node-monitor-grace-period={'20s' if state.real_nodes else '120s'}",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--profiling=false",
            ],
        )
        start(
            "kube-scheduler",
            [
                str(bins["kube-scheduler"]),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['scheduler']}",
                "--leader-elect=false",
                "--profiling=false",
            ],
        )
        kwok_home = self.state_dir / "kwok"
        kwok_home.mkdir(exist_ok=True)
        (kwok_home / "kwok.yaml").write_text(
            _kwok_stages(bins[binaries.KWOK_POD_STAGES], state.pod_ready_delay)
        )
        start(
            "kwok",
            [
                str(bins["kwok"]),
                f"--kubeconfig={kubeconfig}",
                f"--config={kwok_home / 'kwok.yaml'}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                f"--cidr={POD_CIDR}",
                "--node-ip=10.0.0.1",
                # Without it kwok keeps no node Leases and heartbeats only through node status,
                # about once a minute: every node then flaps NotReady against the grace period.
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{p['kwok']}",
            ],
            env={**os.environ, "KWOK_WORKDIR": str(kwok_home), "HOME": str(kwok_home)},
        )
        self._bootstrap(state, bins["istio-crds.yaml"], say, deadline)
        say(f"local cluster {self.name!r} is ready")

    def _write_kubeconfig(self, state: _State, certs: pki.Pki) -> None:
        import yaml

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {
                    "name": self.context,
                    "cluster": {
                        "server": self._server(state),
                        "certificate-authority": str(certs.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": self.context,
                    "user": {
                        "client-certificate": str(certs.admin_cert),
                        "client-key": str(certs.admin_key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": self.context,
                    "context": {
                        "cluster": self.context,
                        "user": self.context,
                        "namespace": "default",
                    },
                }
            ],
            "current-context": self.context,
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        os.chmod(self.kubeconfig, 0o600)

    def _ssl_context(self) -> ssl.SSLContext:
        certs = pki.Pki(self.state_dir / "pki")
        context = ssl.create_default_context(cafile=str(certs.ca_cert))
        context.load_cert_chain(str(certs.admin_cert), str(certs.admin_key))
        return context

    def _readyz(self, state: _State) -> bool:
        try:
            with urllib.request.urlopen(  # noqa: S310 - our own https URL
                f"{self._server(state)}/readyz", context=self._ssl_context(), timeout=3
            ) as response:
                return bool(response.status == 200)
        except (OSError, ssl.SSLError, urllib.error.URLError):
            return False

    def _wait_apiserver(self, state: _State, deadline: Deadline) -> None:
        # Nothing can be watched before the API server serves: a deadline-bounded poll of
        # /readyz, which also fails fast when etcd or the API server has exited.
        def ready() -> bool:
            for record in state.processes:
                processes.raise_if_exited(record, "the API server was starting")
            return self._readyz(state)

        if deadline.poll(ready, every=0.1):
            return
        tails = "".join(
            f"\n  {record.component} ({processes.describe(record)}), the last lines of "
            f"{record.log}:\n{processes.log_tail(record.log, 10)}"
            for record in state.processes
        )
        raise ClusterError(
            f"kube-apiserver was not ready after {deadline.describe()} "
            f"(`--timeout` sets the budget):{tails}"
        )

    def _bootstrap(
        self, state: _State, istio_crds: Path, say: Progress, deadline: Deadline
    ) -> None:
        from pytest_chaos.cluster import bootstrap
        from pytest_chaos.kube import Kube

        kube = Kube.from_kubeconfig(self.kubeconfig, self.context)
        try:

            def alive() -> None:
                for record in state.processes:
                    processes.raise_if_exited(record, "the cluster was starting")

            version = kube.server_version()
            say(f"installing Istio CRDs and {state.nodes} kwok node(s)")
            bootstrap.install_crds(kube, istio_crds)
            bootstrap.create_nodes(kube, state.nodes, kubelet_version=version)
            bootstrap.wait_ready(
                kube,
                state.nodes,
                deadline=deadline,
                alive=alive,
                say=say,
                health_ports={
                    "kube-controller-manager": state.ports["controller-manager"],
                    "kube-scheduler": state.ports["scheduler"],
                },
            )
        except WaitTimeout as exc:
            tails = "\n".join(
                f"  the last lines of {record.log}:\n{processes.log_tail(record.log, 10)}"
                for record in state.processes
                if record.component in ("kube-controller-manager", "kwok")
            )
            raise ClusterError(f"the local cluster did not become ready: {exc}\n{tails}") from exc
        finally:
            kube.close()
