"""The kind provider: a kind cluster (docker, podman or nerdctl) created or reused by name.

A session that creates the cluster records it first (``<state>/kind/<name>.json``: who created
it, and the host as it was) so ``pytest-chaos cleanup`` deletes it when that session was killed;
it deletes the cluster at its end unless told to keep it. A cluster of that name that exists
already is reused and never deleted. The kubeconfig goes to a private file, never
``~/.kube/config``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_chaos.cluster import kind_host
from pytest_chaos.errors import ClusterError

if TYPE_CHECKING:
    from pytest_chaos.cluster import ClusterHandle

#: The locally assembled node image (Kubernetes v1.32.5; recipe in docs/kind.md).
DEFAULT_NODE_IMAGE = "localhost/pytest-chaos/kind-node:v1.32.5"
MIN_KIND = (0, 20)
ENGINES = ("docker", "podman", "nerdctl")
ZONES = ("a", "b", "c")
ZONE_LABEL = "topology.kubernetes.io/zone"
#: podman on hosts without CAP_SYS_RESOURCE and with cgroups v1: crun cannot raise the limits
#: kind asks for, nor run in hybrid mode (measured, docs/kind.md). netavark (with aardvark-dns)
#: as the network backend: on the CNI backend, without the dnsname plugin, node containers cannot
#: resolve each other's names and workers never join (``kubeadm join`` to
#: ``<name>-control-plane:6443``).
PODMAN_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"
"""


def kind_dir() -> Path:
    """Where kind clusters' records, configs and kubeconfigs are kept."""
    from pytest_chaos.cluster.local import state_root

    return state_root() / "kind"


def parse_kind_version(output: str) -> tuple[int, int, int] | None:
    """``kind v0.33.0 go1.24 linux/amd64`` -> (0, 33, 0); None when no version is in it."""
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", output)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _version_of(path: str) -> tuple[int, int, int] | None:
    try:
        result = subprocess.run(
            [path, "version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    return parse_kind_version(result.stdout + result.stderr)


def find_kind() -> Path:
    """The kind to run: v0.20+ from PATH, else the cache's; an older one is refused by version."""
    from pytest_chaos.cluster import binaries

    on_path = shutil.which("kind")
    old = ""
    if on_path is not None:
        version = _version_of(on_path)
        if version is not None and version[:2] >= MIN_KIND:
            return Path(on_path)
        old = f"{on_path} is kind {'.'.join(map(str, version)) if version else '(unknown)'}"
    if binaries.is_built(binaries.KIND):
        return binaries.component_dir(binaries.KIND) / "kind"
    if old:
        raise ClusterError(
            f"--chaos-cluster=kind needs kind v0.20 or newer: {old}; upgrade it, or build "
            f"kind v0.33.0 with `{binaries.BUILD_COMMAND} --kind`"
        )
    raise ClusterError(
        "--chaos-cluster=kind: no kind on PATH and none built; build kind v0.33.0 with "
        f"`{binaries.BUILD_COMMAND} --kind` (or install kind v0.20+)"
    )


def _engine_works(engine: str) -> bool:
    path = shutil.which(engine)
    if path is None:
        return False
    try:
        result = subprocess.run([path, "info"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def detect_engine() -> str:
    """The engine kind will use: ``$KIND_EXPERIMENTAL_PROVIDER``, else the first that works."""
    chosen = os.environ.get("KIND_EXPERIMENTAL_PROVIDER")
    if chosen:
        if chosen not in ENGINES:
            raise ClusterError(
                f"KIND_EXPERIMENTAL_PROVIDER={chosen!r} (from the environment) is not one of "
                f"{', '.join(ENGINES)}"
            )
        return chosen
    for engine in ENGINES:
        if _engine_works(engine):
            return engine
    raise ClusterError(
        "--chaos-cluster=kind needs a container engine; looked for "
        f"{', '.join(ENGINES)} (on PATH, answering `<engine> info`) and found none working. "
        "Install one (Debian/Ubuntu: `apt-get install podman`, or Docker Engine from "
        "https://docs.docker.com/engine/install/), or use --chaos-cluster=local"
    )


def cluster_config(workers: int, image: str) -> dict[str, Any]:
    """The kind config: one control plane, ``workers`` workers labelled zone a, b, c in turn."""
    nodes: list[dict[str, Any]] = [{"role": "control-plane", "image": image}]
    for index in range(workers):
        zone = ZONES[index % len(ZONES)]
        nodes.append({"role": "worker", "image": image, "labels": {ZONE_LABEL: zone}})
    config: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": nodes,
    }
    if image == DEFAULT_NODE_IMAGE:  # our image carries a static bridge CNI, not kindnetd
        config["networking"] = {"disableDefaultCNI": True}
    return config


def image_present(engine: str, image: str) -> bool:
    """Whether the engine has the node image locally."""
    result = subprocess.run(
        [engine, "image", "inspect", image], capture_output=True, timeout=60, check=False
    )
    return result.returncode == 0


@dataclass(frozen=True, slots=True)
class KindRecord:
    """A kind cluster a session created: enough to delete it and put the host back."""

    name: str
    engine: str
    pid: int
    start_time: int
    host_before: kind_host.HostState

    def path(self) -> Path:
        """The record's file."""
        return kind_dir() / f"{self.name}.json"

    def write(self) -> None:
        """Write the record (before the cluster is created)."""
        self.path().parent.mkdir(parents=True, exist_ok=True)
        data = {
            "name": self.name,
            "engine": self.engine,
            "pid": self.pid,
            "start_time": self.start_time,
            "host_before": self.host_before.to_json(),
        }
        tmp = self.path().with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.rename(self.path())

    @classmethod
    def read(cls, path: Path) -> KindRecord:
        """Read a record file."""
        data = json.loads(path.read_text())
        return cls(
            data["name"],
            data["engine"],
            int(data["pid"]),
            int(data["start_time"]),
            kind_host.HostState.from_json(data["host_before"]),
        )

    def owner_alive(self) -> bool:
        """Whether the session that created the cluster still runs."""
        from pytest_chaos.cluster.processes import start_time_of

        return start_time_of(self.pid) == self.start_time


class Kind:
    """Runs kind with the engine's environment (provider, private containers.conf on podman)."""

    def __init__(self, engine: str, kind: Path | None = None) -> None:
        """Use ``engine`` and the kind binary ``kind`` (found when None)."""
        self.engine = engine
        self.kind = kind or find_kind()

    @staticmethod
    def engine_env(engine: str) -> dict[str, str]:
        """The environment the engine runs in: on podman, our containers.conf (unless set)."""
        env = dict(os.environ)
        if engine == "podman" and "CONTAINERS_CONF" not in os.environ:
            conf = kind_dir() / "containers.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            if not conf.is_file() or conf.read_text() != PODMAN_CONF:
                conf.write_text(PODMAN_CONF)
            env["CONTAINERS_CONF"] = str(conf)
        return env

    def env(self) -> dict[str, str]:
        """The environment kind runs in: the provider and, on podman, our containers.conf."""
        env = self.engine_env(self.engine)
        env["KIND_EXPERIMENTAL_PROVIDER"] = self.engine
        return env

    def run(self, *args: str, timeout: float = 600) -> str:
        """Run ``kind args``; raise ClusterError with its output on failure."""
        result = subprocess.run(
            [str(self.kind), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(
                f"kind {' '.join(args)} exited with {result.returncode}:\n"
                + (result.stderr or result.stdout).strip()[-2000:]
            )
        return result.stdout

    def clusters(self) -> list[str]:
        """Names of the kind clusters this engine has."""
        out = self.run("get", "clusters", timeout=60)
        return [line.strip() for line in out.splitlines() if line.strip()]


def _wait_for_cluster_dns(engine: str, name: str, env: dict[str, str]) -> None:
    """Wait (bounded) until the cluster's CoreDNS Deployment is available, run on its node."""
    argv = [
        engine, "exec", f"{name}-control-plane", "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf", "-n", "kube-system",
        "rollout", "status", "deployment/coredns", "--timeout=120s",
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=150, env=env, check=False)
    if result.returncode != 0:
        raise ClusterError(
            f"kind cluster {name!r}: CoreDNS did not become available within 120 s "
            f"(`{' '.join(argv)}`): {(result.stderr or result.stdout).strip()[-1000:]}"
        )


def delete_recorded(record: KindRecord) -> list[str]:
    """Delete a recorded cluster and put the host back as it was before it; forget the record."""
    done = []
    kind = Kind(record.engine)
    if record.name in kind.clusters():
        kind.run("delete", "cluster", "--name", record.name)
        done.append(f"deleted kind cluster {record.name!r}")
    else:
        done.append(f"kind cluster {record.name!r} is gone already: forgot its record")
    record.path().unlink(missing_ok=True)
    (kind_dir() / f"{record.name}.kind-config.yaml").unlink(missing_ok=True)
    if not list(kind_dir().glob("*.json")):  # the last of ours: the host goes back
        done += kind_host.restore(record.host_before, record.engine)
    return done


def cleanup_orphans(*, dry_run: bool = False) -> list[str]:
    """Delete kind clusters created by sessions that are gone (``pytest-chaos cleanup``)."""
    lines = []
    for path in sorted(kind_dir().glob("*.json")) if kind_dir().is_dir() else []:
        record = KindRecord.read(path)
        if record.owner_alive() or _live_users(record.name) - {f"{record.pid}-{record.start_time}"}:
            continue
        if dry_run:
            lines.append(f"would delete orphaned kind cluster {record.name!r}")
            continue
        lines += delete_recorded(record)
    return lines


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise create/reuse/delete of one cluster name between sessions (xdist workers)."""
    kind_dir().mkdir(parents=True, exist_ok=True)
    with (kind_dir() / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _users(name: str) -> Path:
    return kind_dir() / f"{name}.users"


def _live_users(name: str) -> set[str]:
    """Sessions (``pid-start``) using the cluster that still run."""
    from pytest_chaos.cluster.processes import start_time_of

    path = _users(name)
    users = set(path.read_text().split()) if path.is_file() else set()
    return {u for u in users if start_time_of(int(u.split("-")[0])) == int(u.split("-")[1])}


def _set_users(name: str, users: set[str]) -> None:
    _users(name).write_text("".join(f"{u}\n" for u in sorted(users)))


class KindClusterProvider:
    """``--chaos-cluster=kind``: a kind cluster created (and later deleted) or reused by name."""

    def __init__(self, name: str, workers: int, image: str, keep: bool) -> None:
        """Address the kind cluster ``name`` (``workers`` workers, node image ``image``)."""
        self.name = name
        self.workers = workers
        self.image = image
        self.keep = keep
        self.record: KindRecord | None = None
        self.created_seconds: float | None = None
        from pytest_chaos.cluster.processes import start_time_of

        self.user = f"{os.getpid()}-{start_time_of(os.getpid()) or 0}"

    def kubeconfig_path(self) -> Path:
        """The private kubeconfig file of this cluster."""
        return kind_dir() / f"{self.name}.kubeconfig"

    def acquire(self) -> ClusterHandle:
        """Create the cluster, or reuse the one of that name; return its handle."""
        with _locked(self.name):
            handle = self._acquire()
            _set_users(self.name, _live_users(self.name) | {self.user})
            return handle

    def _acquire(self) -> ClusterHandle:
        from pytest_chaos.cluster import ClusterHandle
        from pytest_chaos.cluster.processes import start_time_of

        engine = detect_engine()
        kind = Kind(engine)
        kubeconfig = self.kubeconfig_path()
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        recorded = kind_dir() / f"{self.name}.json"
        if self.name in kind.clusters():
            if recorded.is_file():  # a session of ours created it: the last user deletes it
                self.record = KindRecord.read(recorded)
            kubeconfig.write_text(kind.run("get", "kubeconfig", "--name", self.name))
            kubeconfig.chmod(0o600)
            how = "reused"
        else:
            if not image_present(engine, self.image):
                how = (
                    "build it with `pytest-chaos cluster build --kind --kind-node-image` (`make "
                    "kind-binaries`; ~4 min cold, docs/kind.md)"
                    if self.image == DEFAULT_NODE_IMAGE
                    else f"load or build it into {engine} first (docs/kind.md)"
                )
                raise ClusterError(
                    f"--chaos-cluster=kind: the node image {self.image} is not in {engine}; "
                    f"{how}; or pass --chaos-kind-image kindest/node:v1.32.5 where a registry "
                    "is reachable (kind pulls it)"
                )
            pid = os.getpid()
            self.record = KindRecord(
                self.name, engine, pid, start_time_of(pid) or 0, kind_host.snapshot(engine)
            )
            self.record.write()  # before anything exists: cleanup finds it after a kill -9
            if engine == "podman" and not kind_host.LIB_MODULES.exists():
                kind_host.LIB_MODULES.mkdir(parents=True)  # kind mounts it read-only
            config = kind_dir() / f"{self.name}.kind-config.yaml"  # JSON is YAML; not a record
            config.write_text(json.dumps(cluster_config(self.workers, self.image)))
            started = time.monotonic()
            kind.run(
                "create",
                "cluster",
                "--name",
                self.name,
                "--config",
                str(config),
                "--kubeconfig",
                str(kubeconfig),
                "--wait",
                "180s",
            )
            # `--wait` covers the nodes only: Service names resolve once CoreDNS is available.
            try:
                _wait_for_cluster_dns(engine, self.name, kind.env())
            except ClusterError:
                delete_recorded(self.record)  # half-made: nothing of it is left behind
                self.record = None
                raise
            self.created_seconds = time.monotonic() - started
            how = f"created in {self.created_seconds:.1f}s"
        return ClusterHandle(
            "kind",
            kubeconfig,
            f"kind-{self.name}",
            f"kind cluster {self.name!r} on {engine} ({how})",
            network_policies=self.network_policies(),
            pods_reachable=False,  # inside the node containers' network
        )

    def release(self) -> None:
        """The last session out deletes a cluster a session created (unless kept).

        A cluster that no session of ours created (no record) is never deleted.
        """
        with _locked(self.name):
            users = _live_users(self.name) - {self.user}
            _set_users(self.name, users)
            if self.record is None or users:
                return
            if self.keep:  # kept: no longer ours to delete, not even by `pytest-chaos cleanup`
                self.record.path().rename(self.record.path().with_suffix(".kept"))
                self.record = None
                return
            with contextlib.suppress(FileNotFoundError):
                delete_recorded(self.record)
            self.kubeconfig_path().unlink(missing_ok=True)
            _users(self.name).unlink(missing_ok=True)
            self.record = None

    def describe(self) -> str:
        """``cluster=kind (name '<name>', N workers, image <image>)``."""
        return f"cluster=kind (name {self.name!r}, {self.workers} workers, image {self.image})"

    def running(self) -> bool:
        """Whether a kind cluster of that name exists now."""
        try:
            return self.name in Kind(detect_engine()).clusters()
        except ClusterError:
            return False

    def dead_components(self) -> list[str]:
        """Not watched: the nodes are the engine's containers."""
        return []

    def network_policies(self) -> str | None:
        """Nothing enforces them on our node image (a bridge); unknown on another one."""
        return "" if self.image == DEFAULT_NODE_IMAGE else None


__all__ = [
    "DEFAULT_NODE_IMAGE",
    "KindClusterProvider",
    "cleanup_orphans",
    "cluster_config",
    "detect_engine",
    "find_kind",
    "parse_kind_version",
]
