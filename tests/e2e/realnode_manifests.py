"""Manifests and host-side probes for the tests that run on the local cluster's real node.

The demo image (``tools/images/demo``) answers ``/``, ``/ready`` (503 after SIGTERM), ``/healthz``,
``/broker`` (its broker client's or server's state as JSON) and logs ``received SIGTERM``. Every
pod here is pinned to the real node: the kwok fake nodes beside it run nothing.

There is no cluster DNS: clients get a Service's ClusterIP (read from the API) in their
environment. Pod IPs and ClusterIPs are reachable from the host, which is where pytest runs; the
host also sees the pods' cgroups and the kubelet's log files.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_chaos import Kube
from pytest_chaos.cluster.realnode import ON_REAL_NODE

DEMO_IMAGE = "localhost/pytest-chaos/demo:1.0"
PORT = 8080
CGROUP_ROOT = Path("/sys/fs/cgroup")


def demo_deployment(
    name: str,
    *,
    replicas: int = 1,
    env: Mapping[str, str] | None = None,
    resources: Mapping[str, Mapping[str, str]] | None = None,
    ports: Mapping[str, int] | None = None,
    pre_stop_sleep: int | None = None,
    warm_up: int = 0,
) -> dict[str, Any]:
    """The demo app as a Deployment (label app=<name>) on the real node, Ready via ``/ready``.

    ``warm_up``: seconds before the first readiness probe, like an app that loads caches first.
    ``pre_stop_sleep``: seconds it keeps serving after deletion, before it gets SIGTERM.
    """
    container: dict[str, Any] = {
        "name": "demo",
        "image": DEMO_IMAGE,
        "imagePullPolicy": "Never",
        "env": [{"name": k, "value": v} for k, v in {"RELEASE": "real", **(env or {})}.items()],
        "ports": [
            {"name": n, "containerPort": p} for n, p in {"http": PORT, **(ports or {})}.items()
        ],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": PORT},
            "initialDelaySeconds": warm_up,
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
    }
    if resources:
        container["resources"] = {k: dict(v) for k, v in resources.items()}
    if pre_stop_sleep is not None:
        # Keep serving while the endpoint is withdrawn everywhere, then stop (SIGTERM).
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop_sleep}}}
    pod_spec: dict[str, Any] = {
        **ON_REAL_NODE,  # the real node's label and the toleration of its taint
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "containers": [container],
    }
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def service(name: str, *, port: int = 80, target: int | str = "http") -> dict[str, Any]:
    """A ClusterIP Service over app=<name>."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "main", "port": port, "targetPort": target}],
        },
    }


def create_service(kube: Kube, namespace: str, manifest: dict[str, Any]) -> str:
    """Create a Service and return its ClusterIP."""
    created = kube.core.create_namespaced_service(namespace, manifest)
    return str(created.spec.cluster_ip)


def deploy(kube: Kube, namespace: str, manifest: dict[str, Any]) -> None:
    """Create a Deployment and wait until every replica is Ready on the real node."""
    kube.apps.create_namespaced_deployment(namespace, manifest)
    name = manifest["metadata"]["name"]
    replicas = manifest["spec"]["replicas"]
    kube.wait(
        functools.partial(kube.apps.list_namespaced_deployment, namespace),
        lambda found: any(
            (d.status.ready_replicas or 0) == replicas
            and (d.status.updated_replicas or 0) == replicas
            and (d.status.replicas or 0) == replicas
            for d in found
        ),
        within=60,
        what=f"{replicas} ready replica(s) of Deployment {namespace}/{name}",
        field_selector=f"metadata.name={name}",
    )


def pods_of(kube: Kube, namespace: str, app: str) -> list[dict[str, Any]]:
    """The pods labelled app=<app> (JSON, as the API returns them), oldest first."""
    listing = kube.list_raw(kube.core.list_namespaced_pod, namespace, label_selector=f"app={app}")
    pods: list[dict[str, Any]] = listing.get("items", [])
    return sorted(pods, key=lambda p: str(p["metadata"]["creationTimestamp"]))


def the_pod(kube: Kube, namespace: str, app: str) -> dict[str, Any]:
    """The one live (not terminating) pod labelled app=<app>."""
    live = [p for p in pods_of(kube, namespace, app) if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1, f"expected one pod of app={app}, found {len(live)}"
    return live[0]


def identity(pod: Mapping[str, Any]) -> tuple[str, int]:
    """(uid, restarts of its first container): unchanged means not restarted, not replaced."""
    statuses = pod["status"].get("containerStatuses") or [{}]
    return str(pod["metadata"]["uid"]), int(statuses[0].get("restartCount", 0))


def get_json(url: str, *, timeout: float = 2.0) -> dict[str, Any]:
    """GET a JSON document (the demo's ``/broker``)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def get_text(url: str, *, timeout: float = 5.0) -> tuple[int, str]:
    """GET a URL: (status, body); HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


# --- container logs --------------------------------------------------------------------------


def log_file(pod_logs: Path, pod: Mapping[str, Any], container: str = "demo") -> Path:
    """The kubelet's current log file of a container on this host.

    Layout: ``<podLogsDir>/<namespace>_<pod>_<uid>/<container>/<restart>.log``, in the CRI
    format ``<time> <stream> <F|P> <text>``.
    """
    meta = pod["metadata"]
    directory = pod_logs / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / container
    restarts = identity(pod)[1]
    return directory / f"{restarts}.log"


@dataclass
class LogFollower:
    """Lines a container logs from now on, kept even after the pod and its files are gone.

    Reads through the API (``follow``) when the API server can reach the kubelet, otherwise the
    kubelet's file on this host, opened before the pod dies (an open file survives its deletion).
    """

    lines: list[str] = field(default_factory=list)
    source: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: threading.Event = field(default_factory=threading.Event)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, needle: str, *, within: float) -> bool:
        """Whether needle shows up within the deadline (or before the log ended)."""
        deadline = time.monotonic() + within
        while needle not in self.text():
            if self._done.is_set() or time.monotonic() >= deadline:
                return needle in self.text()
            time.sleep(0.05)  # the polling interval
        return True

    def _add(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)


@contextlib.contextmanager
def follow_log(
    kube: Kube, pod: Mapping[str, Any], pod_logs: Path, container: str = "demo"
) -> Iterator[LogFollower]:
    """Follow a container's log while the block runs (see LogFollower)."""
    from kubernetes.client.exceptions import ApiException

    follower = LogFollower()
    meta = pod["metadata"]
    stop = threading.Event()
    try:
        stream = kube.core.read_namespaced_pod_log(
            meta["name"],
            meta["namespace"],
            container=container,
            follow=True,
            _preload_content=False,
            _request_timeout=(2, 60),
        )
        follower.source = "api"
        reader = threading.Thread(target=_read_stream, args=(stream, follower), daemon=True)
    except ApiException as exc:
        # e.g. "dial tcp: lookup real-node-0: no such host" on a local cluster started without
        # --kubelet-preferred-address-types: read the kubelet's file on this host instead.
        path = log_file(pod_logs, pod, container)
        if not path.exists():
            raise AssertionError(
                f"cannot read the log of {meta['namespace']}/{meta['name']}: the API says "
                f"{exc.status} {exc.reason} and there is no {path} on this host"
            ) from None
        handle = path.open("r", encoding="utf-8", errors="replace")
        follower.source = f"host file {path}"
        reader = threading.Thread(
            target=_read_file, args=(handle, follower, stop), daemon=True, name="log follower"
        )
    reader.start()
    try:
        yield follower
    finally:
        stop.set()
        reader.join(timeout=3)


def _read_stream(stream: Any, follower: LogFollower) -> None:
    partial = ""
    try:
        for chunk in stream.stream(amt=None):
            *lines, partial = (partial + chunk.decode(errors="replace")).split("\n")
            for line in lines:
                follower._add(line)
    except Exception:  # the stream ends when the container exits or the pod goes away
        pass
    finally:
        if partial:
            follower._add(partial)
        follower._done.set()


def _read_file(handle: Any, follower: LogFollower, stop: threading.Event) -> None:
    partial = ""
    with handle:
        while not stop.is_set():
            partial += handle.readline()
            if not partial.endswith("\n"):
                stop.wait(0.05)  # at the end of the file (or of a line being written)
                continue
            # CRI log line: "<RFC3339 time> <stdout|stderr> <F|P> <text>"
            parts = partial.rstrip("\n").split(" ", 3)
            follower._add(parts[3] if len(parts) == 4 else partial.rstrip("\n"))
            partial = ""
    follower._done.set()


# --- CPU accounting from the host ------------------------------------------------------------


def pod_cgroup(controller: str, uid: str) -> Path:
    """The pod's cgroup directory in a cgroup v1 hierarchy (``cpuacct``, ``memory``...).

    ``<mount>/kubepods[/<qos>]/pod<uid>``; found by globbing, so the QoS class and whether the
    hierarchy is mounted alone (``cpuacct``) or shared (``cpu,cpuacct``) do not matter.
    """
    mounts = [CGROUP_ROOT / controller, *CGROUP_ROOT.glob(f"*{controller}*")]
    for mount in mounts:
        found = sorted(mount.glob(f"kubepods/**/pod{uid}"))
        if found:
            return found[0]
    raise AssertionError(f"no {controller} cgroup for pod {uid} under {CGROUP_ROOT}")


def cpu_seconds(uid: str) -> float:
    """CPU time the pod's cgroup (every container in it, ephemeral ones too) has used."""
    return int((pod_cgroup("cpuacct", uid) / "cpuacct.usage").read_text()) / 1e9


def cpu_rate(uid: str, *, over: float) -> float:
    """The pod's CPU use in cores, averaged over the next ``over`` seconds."""
    started, before = time.monotonic(), cpu_seconds(uid)
    time.sleep(over)  # the measurement window itself, not a wait for something to happen
    return (cpu_seconds(uid) - before) / (time.monotonic() - started)


# --- memory cgroups --------------------------------------------------------------------------


def memory_limit(uid: str) -> int:
    """The pod memory cgroup's limit in bytes (the sum of its containers' limits)."""
    return int((pod_cgroup("memory", uid) / "memory.limit_in_bytes").read_text())


def memory_usage(uid: str) -> int:
    """The pod memory cgroup's usage in bytes (its containers and ephemeral containers)."""
    return int((pod_cgroup("memory", uid) / "memory.usage_in_bytes").read_text())
