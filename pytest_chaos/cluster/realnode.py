"""One real Kubernetes node on this machine: containerd, kubelet and kube-proxy.

It joins a local cluster next to the kwok fake nodes (kwok manages only nodes annotated
``kwok.x-k8s.io/node=fake``; this node has no such annotation). Its pods are real processes in
real network namespaces on a bridge, so tests can stress CPU, cut connections from an
ephemeral container and reach a ClusterIP Service from the host.

Everything lives under ``<cluster state dir>/realnode/``: containerd's config, root, state and
socket, the CNI config and IPAM leases, kubelet's root and pod logs, the configs and a
``host.json`` recording what was changed on the host (sysctls, directories created), so
:meth:`RealNode.cleanup` can undo it from any process, even after a crash. What cannot be
relocated: runc shim sockets (``/run/containerd/s/<hash>``, removed by the shims as they exit),
the kubelet's ``/var/log/containers`` symlinks and libcni's ``/var/lib/cni/results`` cache
(both removed by cleanup), the ``kubepods`` cgroups (removed by cleanup) and the iptables chains
(``KUBE-*``, and the bridge plugin's ``CNI-*`` chains tagged with our network name; removed by
cleanup). One real node per machine: the kubelet and kube-proxy ports are fixed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_chaos.cluster import binaries, cluster_dns, images, processes
from pytest_chaos.cluster.processes import ProcessRecord
from pytest_chaos.cluster.realnodes.host import run as _run
from pytest_chaos.errors import BinaryMissingError, ClusterError
from pytest_chaos.kube.deadline import Deadline

if TYPE_CHECKING:
    from pytest_chaos.kube import Kube

Say = Callable[[str], None]

NODE_NAME = "real-node-0"
#: Outside kwok's pod range (10.244.0.0/16), the service range and the host's networks.
POD_SUBNET = "10.245.0.0/24"
BRIDGE = "pcbr0"
CNI_NETWORK = "pytest-chaos"
#: The label every real node carries (tests select real nodes with it).
REAL_NODE_LABEL = "chaos.pytest.dev/real-node"
NODE_LABELS = {REAL_NODE_LABEL: "true", "topology.kubernetes.io/zone": "real"}
#: The real node's taint: pods tolerate it (and select the label) to run there.
REAL_NODE_TAINT = {"key": REAL_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
#: What a pod spec needs to run on the real node (merge into ``spec``).
ON_REAL_NODE: dict[str, Any] = {
    "nodeSelector": {REAL_NODE_LABEL: "true"},
    "tolerations": [
        {"key": REAL_NODE_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ],
}
#: kubelet (server, healthz) and kube-proxy (metrics, healthz) ports; fixed, one node per host.
PORTS = {"kubelet": 10250, "kubelet-healthz": 10248, "proxy-metrics": 10249, "proxy-healthz": 10256}
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
HOST_COMMANDS = (
    "containerd",
    "containerd-shim-runc-v2",
    "runc",
    "ctr",
    "iptables",
    "iptables-save",
    "iptables-restore",
    "ip",
    "conntrack",
    "ldd",
)
CGROUP_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer")
SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CONTAINER_LOGS = Path("/var/log/containers")
_CNI_CACHE = Path("/var/lib/cni")
#: containerd 1.6 puts shim sockets under this fixed directory whatever its state dir is.
_SHIM_SOCKETS = Path("/run/containerd")
_MNT_DETACH = 2
#: sun_path holds 108 bytes on Linux; containerd refuses paths over 104.
_SOCKET_PATH_MAX = 104


# --------------------------------------------------------------------------- requirements


def _mounted_cgroup_controllers() -> set[str]:
    found: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            _, _, right = line.partition(" - ")
            fields = right.split()
            if fields and fields[0] == "cgroup":
                found.update(fields[2].split(","))
    return found


def _read_only(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return True


def _cni_bin_dir() -> Path | None:
    for directory in CNI_BIN_DIRS:
        if all((Path(directory) / plugin).is_file() for plugin in CNI_PLUGINS):
            return Path(directory)
    return None


def missing_requirements() -> list[str]:
    """What this host lacks to run a real node, as human-readable items (no side effects)."""
    missing: list[str] = []
    if os.geteuid() != 0:
        missing.append("root: a real node needs root (containers, mounts, iptables, sysctls)")
    install = "apt-get install -y containerd runc containernetworking-plugins conntrack iptables"
    missing.extend(
        f"command {command!r}: {install} iproute2"
        for command in HOST_COMMANDS
        if shutil.which(command) is None
    )
    if _cni_bin_dir() is None:
        missing.append(
            f"CNI plugins {', '.join(CNI_PLUGINS)} in {' or '.join(CNI_BIN_DIRS)}: "
            "apt-get install -y containernetworking-plugins"
        )
    mounted = _mounted_cgroup_controllers()
    missing.extend(
        f"cgroup v1 controller {controller!r} is not mounted"
        for controller in CGROUP_CONTROLLERS
        if controller not in mounted
    )
    if not Path("/dev/kmsg").exists():
        missing.append("/dev/kmsg (the kubelet's OOM watcher reads it)")
    for key in SYSCTLS:
        path = f"/proc/sys/{key}"
        if not Path(path).exists():
            missing.append(f"{path} (br_netfilter / IPv4 forwarding support in the kernel)")
        elif _read_only(path):
            missing.append(f"{path} is read-only (a container without a writable /proc/sys?)")
    for name in ("kubelet", "kube-proxy"):
        try:
            binaries.binary(name)
        except BinaryMissingError as exc:
            missing.append(str(exc))
    missing.extend(_busy_ports())
    packages = " ".join(images.TOOLBOX_PACKAGES)
    missing.extend(
        f"toolbox command {command!r}: apt-get install -y {packages}"
        for command in images.TOOLBOX_COMMANDS
        if images.find_command(command) is None
    )
    return missing


def _busy_ports() -> list[str]:
    busy = []
    for what, port in PORTS.items():
        if processes.port_is_listening(port):
            busy.append(f"port {port} ({what}) is in use: is another real node running?")
    address = host_ip()
    if processes.port_is_listening(cluster_dns.PORT, host=address):
        busy.append(
            f"port {cluster_dns.PORT} (the cluster DNS) is in use on {address}: "
            "is another real node running?"
        )
    return busy


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True, slots=True)
class Layout:
    """The files and directories of a real node under a cluster's state directory."""

    base: Path

    @property
    def containerd(self) -> Path:
        """The directory of containerd's config, root, state and socket."""
        return self.base / "containerd"

    @property
    def socket(self) -> Path:
        """The containerd gRPC socket."""
        return self.containerd / "containerd.sock"

    @property
    def registry_hosts(self) -> Path:
        """Where containerd reads registry hosts (``config_path``): ``<host:port>/hosts.toml``."""
        return self.containerd / "certs.d"

    @property
    def cni_conf_dir(self) -> Path:
        """The CNI config directory containerd reads."""
        return self.base / "cni" / "net.d"

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's --root-dir."""
        return self.base / "kubelet"

    @property
    def pod_logs(self) -> Path:
        """Where the kubelet writes container logs (podLogsDir)."""
        return self.base / "pod-logs"

    @property
    def logs(self) -> Path:
        """Component logs."""
        return self.base / "logs"

    @property
    def host_record(self) -> Path:
        """JSON of what was changed on the host, for cleanup."""
        return self.base / "host.json"


# --------------------------------------------------------------------------- configs


def containerd_config(layout: Layout, cni_bin: Path) -> str:
    """A containerd 1.6 config (version 2): own root/state/socket, CRI with our pause image."""
    c = layout.containerd
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{layout.socket}"
[ttrpc]
  address = "{layout.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"
[{cri}]
  sandbox_image = "{images.PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  # Never below containerd's own score: lowering oom_score_adj needs CAP_SYS_RESOURCE, which
  # sandboxed hosts drop (runc then fails with "can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_hugetlb_controller = true
  tolerate_missing_hugetlb_controller = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{c / "runc"}"
  [{cri}.registry]
    config_path = "{layout.registry_hosts}"
  [{cri}.cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{layout.cni_conf_dir}"
    max_conf_num = 1
"""


def cni_conflist(layout: Layout, subnet: str, bridge: str) -> dict[str, Any]:
    """A bridge network (gateway, masquerade, hairpin) with host-local IPAM kept in layout."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.base / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: Layout, ca_cert: Path) -> dict[str, Any]:
    """KubeletConfiguration for a cgroupfs, cgroup v1, no-systemd host."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{layout.socket}",
        "imageServiceEndpoint": f"unix://{layout.socket}",
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "port": PORTS["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": PORTS["kubelet-healthz"],
        "clusterDomain": cluster_dns.DOMAIN,
        "clusterDNS": [cluster_dns.SERVICE_IP],
        "resolvConf": "/etc/resolv.conf",
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "nodeStatusUpdateFrequency": "4s",
        "podLogsDir": str(layout.pod_logs),
        "volumePluginDir": str(layout.kubelet_root / "volume-plugins"),
        "staticPodPath": "",
        "registerNode": True,
        # Only pods that ask for the real node land on it: the fake nodes' workloads (images
        # that exist nowhere) would otherwise be scheduled here and fail to pull.
        "registerWithTaints": [REAL_NODE_TAINT],
    }


def kube_proxy_config(kubeconfig: Path, node_name: str, subnet: str) -> dict[str, Any]:
    """KubeProxyConfiguration: iptables mode, no conntrack sysctls, no localhost NodePorts."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "clusterCIDR": subnet,
        "nodePortAddresses": ["primary"],
        "metricsBindAddress": f"127.0.0.1:{PORTS['proxy-metrics']}",
        "healthzBindAddress": f"127.0.0.1:{PORTS['proxy-healthz']}",
        "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"syncPeriod": "10s", "minSyncPeriod": "0s"},
    }


# --------------------------------------------------------------------------- host helpers


def host_ip() -> str:
    """The address of the interface holding the default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key


def prepare_host(layout: Layout) -> None:
    """Set the sysctls a node needs, recording old values and created dirs for cleanup."""
    record: dict[str, Any] = {"sysctls": {}, "created_dirs": []}
    if layout.host_record.is_file():
        record = json.loads(layout.host_record.read_text())
    for key, value in SYSCTLS.items():
        path = _sysctl_path(key)
        old = path.read_text().strip()
        if old != value:
            record["sysctls"].setdefault(key, old)
            path.write_text(value)
    for directory in (_CONTAINER_LOGS, _CNI_CACHE, _SHIM_SOCKETS):
        if not directory.exists() and str(directory) not in record["created_dirs"]:
            record["created_dirs"].append(str(directory))
    layout.host_record.write_text(json.dumps(record, indent=2))


def _restore_host(layout: Layout) -> list[str]:
    if not layout.host_record.is_file():
        return []
    record = json.loads(layout.host_record.read_text())
    problems = []
    for key, old in record.get("sysctls", {}).items():
        try:
            _sysctl_path(key).write_text(old)
        except OSError as exc:
            problems.append(f"could not restore sysctl {key}={old}: {exc}")
    for directory in record.get("created_dirs", []):
        with contextlib.suppress(OSError):
            _remove_empty_tree(Path(directory))
    return problems


def _remove_empty_tree(directory: Path) -> None:
    for sub in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if sub.is_dir() and not sub.is_symlink():
            with contextlib.suppress(OSError):
                sub.rmdir()
    directory.rmdir()


# --------------------------------------------------------------------------- the node


class RealNode:
    """Start, wait for and remove one real node of a local cluster."""

    def __init__(
        self,
        state_dir: Path,
        *,
        node_name: str = NODE_NAME,
        pod_subnet: str = POD_SUBNET,
        bridge: str = BRIDGE,
    ) -> None:
        """A node whose files live in ``state_dir/realnode`` (state_dir: the cluster's)."""
        self.layout = Layout(state_dir / "realnode")
        self.node_name = node_name
        self.pod_subnet = pod_subnet
        self.bridge = bridge
        self._kubelet_started = 0.0
        self._seen_ids: set[str] = set()  # container ids stop() removed (for cache cleanup)

    # ---------------------------------------------------------------- start

    def start(
        self,
        kubeconfig: Path,
        pki_dir: Path,
        server: str,
        say: Say,
        *,
        timeout: float = 120.0,
    ) -> list[ProcessRecord]:
        """Start containerd, the images, kubelet, kube-proxy and the cluster DNS; wait for Ready.

        Returns the process records (containerd, kubelet, kube-proxy, cluster-dns), in start
        order. On failure everything started is stopped and cleaned up before the error
        propagates.
        """
        problems = missing_requirements() + self._socket_path_problems()
        if problems:
            raise ClusterError("this host cannot run a real node:\n  " + "\n  ".join(problems))
        deadline = Deadline(timeout)
        records: list[ProcessRecord] = []
        try:
            self._start(kubeconfig, pki_dir, server, say, records, deadline)
        except BaseException:
            self.stop(records, say)
            raise
        return records

    def _socket_path_problems(self) -> list[str]:
        """Unix socket paths have a length limit; the state directory decides ours."""
        longest = max(
            (
                Path(f"{self.layout.socket}.ttrpc"),
                self.layout.kubelet_root / "pod-resources" / "kubelet.sock",
                self.layout.kubelet_root / "device-plugins" / "kubelet.sock",
            ),
            key=lambda path: len(str(path)),
        )
        if len(str(longest)) < _SOCKET_PATH_MAX:
            return []
        return [
            f"the state directory's path is too long for unix sockets ({longest} has "
            f"{len(str(longest))} characters, at most {_SOCKET_PATH_MAX - 1}): set "
            "PYTEST_CHAOS_STATE_DIR to a shorter directory"
        ]

    def _start(
        self,
        kubeconfig: Path,
        pki_dir: Path,
        server: str,
        say: Say,
        records: list[ProcessRecord],
        deadline: Deadline,
    ) -> None:
        built = images.build(progress=say)
        self.cleanup(say)  # leftovers of a crashed run
        layout = self.layout
        for directory in (
            layout.containerd,
            layout.cni_conf_dir,
            layout.kubelet_root,
            layout.pod_logs,
            layout.logs,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        prepare_host(layout)
        say("starting containerd")
        records.append(self._start_containerd())
        self._wait_containerd(records[-1], deadline)
        images.import_images(layout.socket, built, progress=say)
        say(f"starting kubelet ({self.node_name}), kube-proxy and the cluster DNS")
        self._kubelet_started = time.time()  # older Ready heartbeats are a previous run's
        records.append(self._start_kubelet(kubeconfig, pki_dir))
        records.append(self._start_kube_proxy(kubeconfig))
        self._start_cluster_dns(built.dns, kubeconfig, pki_dir, server, records, deadline)
        self._wait_node_ready(server, pki_dir, records, deadline, say)

    def _start_cluster_dns(
        self,
        program: Path,
        kubeconfig: Path,
        pki_dir: Path,
        server: str,
        records: list[ProcessRecord],
        deadline: Deadline,
    ) -> None:
        from pytest_chaos.kube import Kube

        address = host_ip()
        settings = cluster_dns.config(address, server, pki_dir)
        records.append(
            cluster_dns.start(program, self.layout.base, self.layout.logs / "dns.log", settings)
        )
        kube = Kube.from_kubeconfig(kubeconfig)
        try:
            cluster_dns.publish(kube, address, self.node_name)
        finally:
            kube.close()
        cluster_dns.wait_serving(records[-1], (address, cluster_dns.PORT), deadline)

    def _start_containerd(self) -> ProcessRecord:
        layout = self.layout
        cni_bin = _cni_bin_dir()
        assert cni_bin is not None  # missing_requirements checked it
        config = layout.containerd / "config.toml"
        config.write_text(containerd_config(layout, cni_bin))
        (layout.cni_conf_dir / "10-pytest-chaos.conflist").write_text(
            json.dumps(cni_conflist(layout, self.pod_subnet, self.bridge), indent=2)
        )
        return processes.spawn(
            "containerd",
            ["containerd", f"--config={config}", "--log-level=warn"],
            layout.logs / "containerd.log",
            cwd=layout.base,
        )

    def _wait_containerd(self, record: ProcessRecord, deadline: Deadline) -> None:
        def serving() -> bool:
            processes.raise_if_exited(record, "containerd was starting")
            if not self.layout.socket.exists():
                return False
            try:
                images.ctr(self.layout.socket, "version", timeout=5)
            except ClusterError:
                return False
            return True

        if deadline.poll(serving, every=0.1):
            return
        raise ClusterError(
            f"containerd did not serve after {deadline.describe()}:\n"
            f"{processes.log_tail(record.log)}"
        )

    def _start_kubelet(self, kubeconfig: Path, pki_dir: Path) -> ProcessRecord:
        import yaml

        layout = self.layout
        config = layout.base / "kubelet.yaml"
        config.write_text(yaml.safe_dump(kubelet_config(layout, pki_dir / "ca.crt")))
        labels = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
        return processes.spawn(
            "kubelet",
            [
                str(binaries.binary("kubelet")),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={layout.kubelet_root}",
                f"--cert-dir={layout.kubelet_root / 'pki'}",
                f"--hostname-override={self.node_name}",
                f"--node-ip={host_ip()}",
                f"--node-labels={labels}",
                "--v=1",
            ],
            layout.logs / "kubelet.log",
            cwd=layout.base,
        )

    def _start_kube_proxy(self, kubeconfig: Path) -> ProcessRecord:
        import yaml

        config = self.layout.base / "kube-proxy.yaml"
        config.write_text(
            yaml.safe_dump(kube_proxy_config(kubeconfig, self.node_name, self.pod_subnet))
        )
        return processes.spawn(
            "kube-proxy",
            [str(binaries.binary("kube-proxy")), f"--config={config}", "--v=1"],
            self.layout.logs / "kube-proxy.log",
            cwd=self.layout.base,
        )

    def _wait_node_ready(
        self,
        server: str,
        pki_dir: Path,
        records: list[ProcessRecord],
        deadline: Deadline,
        say: Say,
    ) -> None:
        say(f"waiting for node {self.node_name} to be Ready")
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        url = f"{server}/api/v1/nodes/{self.node_name}"
        last = "not registered"
        since = self._kubelet_started - 1.0  # heartbeats carry whole seconds

        def ready() -> bool:
            nonlocal last
            for record in records:
                processes.raise_if_exited(record, f"node {self.node_name} was starting")
            last = _node_condition(url, context, since) or last
            return last == "Ready"

        if deadline.poll(ready, every=0.5):
            return
        kubelet = next(r for r in records if r.component == "kubelet")
        raise ClusterError(
            f"node {self.node_name} was not Ready after {deadline.describe()} ({last}); "
            "the last lines of "
            f"{kubelet.log}:\n{processes.log_tail(kubelet.log)}"
        )

    # ---------------------------------------------------------------- stop and cleanup

    def stop(self, records: Iterable[ProcessRecord], say: Say | None = None) -> list[str]:
        """Stop the DNS, kube-proxy, kubelet, every container and containerd; then :meth:`cleanup`.

        Returns what could not be removed (empty when the host is clean again).
        """
        log = say or (lambda _message: None)
        by_name = {r.component: r for r in records if processes.is_running(r)}
        for component in (cluster_dns.COMPONENT, "kube-proxy", "kubelet"):
            if component in by_name:
                processes.terminate([by_name[component].pid], grace=10.0)
        self._kill_containers(log)
        if "containerd" in by_name:
            processes.terminate([by_name["containerd"].pid], grace=10.0)
        return self.cleanup(log)

    def _kill_containers(self, say: Say) -> None:
        if not self.layout.socket.exists():
            return
        try:
            ids = images.ctr(self.layout.socket, "containers", "list", "--quiet", timeout=10)
        except ClusterError:
            return  # containerd is gone: the cgroup sweep in cleanup kills what is left
        self._seen_ids.update(ids.split())
        for container in ids.split():
            with contextlib.suppress(ClusterError):
                images.ctr(
                    self.layout.socket,
                    "tasks",
                    "kill",
                    "--all",
                    "--signal",
                    "SIGKILL",
                    container,
                    timeout=10,
                )
        deadline = time.monotonic() + 10
        for container in ids.split():
            while time.monotonic() < deadline:
                try:
                    images.ctr(self.layout.socket, "tasks", "delete", container, timeout=10)
                    break
                except ClusterError as exc:
                    if "not found" in str(exc):
                        break
                    time.sleep(0.2)
            with contextlib.suppress(ClusterError):
                images.ctr(self.layout.socket, "containers", "delete", container, timeout=10)
        if ids.split():
            say(f"removed {len(ids.split())} container(s)")

    def cleanup(self, say: Say | None = None) -> list[str]:
        """Remove whatever a (possibly crashed) real node left; return what remains.

        Safe to call any time, from any process: kills the node's processes and containers
        (by the kubepods cgroups and the state-dir marker), unmounts everything under the node's
        directory, deletes the bridge and its veths, the KUBE-* and our CNI-* iptables chains,
        the kubepods cgroups, /var/log/containers links and libcni cache entries into our
        directory, restores the sysctls, and finally removes the node's directory.
        """
        log = say or (lambda _message: None)
        base = self.layout.base
        orphans = processes.find_orphans(str(base) + "/")
        if orphans:
            log(f"stopping {len(orphans)} leftover real-node process(es)")
            processes.terminate(orphans, grace=5.0)
        _kill_cgroup_tasks()
        _unmount_under(base)
        self._delete_links()
        _remove_iptables_chains(CNI_NETWORK)
        _remove_cgroups()
        _remove_pod_log_links(self.layout.pod_logs)
        _remove_cni_cache(CNI_NETWORK, _container_ids(self.layout) | self._seen_ids)
        problems = _restore_host(self.layout)
        if base.exists() and not _mounts_under(base):
            shutil.rmtree(base, ignore_errors=True)
        return problems + self.leftovers()

    def _delete_links(self) -> None:
        for veth in _bridge_ports(self.bridge):
            _run(["ip", "link", "delete", veth], check=False)
        if Path(f"/sys/class/net/{self.bridge}").exists():
            _run(["ip", "link", "delete", self.bridge], check=False)

    def leftovers(self) -> list[str]:
        """What of a real node is still on this host (processes, mounts, links, rules, cgroups)."""
        found = []
        base = self.layout.base
        if pids := processes.find_orphans(str(base) + "/"):
            found.append(f"processes {pids}")
        if mounts := _mounts_under(base):
            found.append(f"{len(mounts)} mount(s) under {base}")
        if Path(f"/sys/class/net/{self.bridge}").exists():
            found.append(f"bridge {self.bridge}")
        for binary in ("iptables-save", "ip6tables-save"):
            rules = [
                line
                for line in _run([binary], check=False).splitlines()
                if "KUBE-" in line or CNI_NETWORK in line
            ]
            if rules:
                found.append(f"{len(rules)} {binary} line(s) with KUBE-/{CNI_NETWORK}")
        if _kubepods_cgroups():
            found.append("kubepods cgroups")
        return found


# --------------------------------------------------------------------------- cleanup helpers


def _node_condition(url: str, context: ssl.SSLContext, since: float) -> str | None:
    """The node's Ready state as a word, counting only heartbeats posted after since (epoch)."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=3) as response:  # noqa: S310
            node = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    for condition in node.get("status", {}).get("conditions", []):
        if condition.get("type") == "Ready":
            beat = _epoch(condition.get("lastHeartbeatTime"))
            if beat < since:
                return "registered, waiting for a fresh heartbeat"
            if condition.get("status") == "True":
                return "Ready"
            return f"NotReady: {condition.get('reason')}: {condition.get('message')}"
    return "registered, no Ready condition yet"


def _epoch(stamp: object) -> float:
    """Seconds since the epoch of an RFC 3339 API timestamp (0 when absent or malformed)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _kubepods_cgroups() -> list[Path]:
    found: list[Path] = []
    if not _CGROUP_ROOT.is_dir():
        return found
    for hierarchy in _CGROUP_ROOT.iterdir():
        top = hierarchy / "kubepods"
        if top.is_dir() and not hierarchy.is_symlink():
            found.append(top)
    return found


def _kill_cgroup_tasks() -> None:
    """SIGKILL every process in a kubepods cgroup (the containers of a crashed node)."""
    pids: set[int] = set()
    for top in _kubepods_cgroups():
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
    if pids:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        processes.terminate(pids, grace=5.0)


def _remove_cgroups() -> None:
    for top in _kubepods_cgroups():
        directories = [p for p in top.rglob("*") if p.is_dir()] + [top]
        for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                directory.rmdir()


def _mounts_under(base: Path) -> list[str]:
    prefix = str(base).rstrip("/") + "/"
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            target = line.split()[4].encode().decode("unicode_escape")
            if target.startswith(prefix) or target == str(base):
                found.append(target)
    return found


def _unmount_under(base: Path) -> None:
    """Lazily unmount everything mounted under base, deepest first (a few rounds for stacks)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(5):
        mounts = _mounts_under(base)
        if not mounts:
            return
        for target in sorted(set(mounts), key=len, reverse=True):
            libc.umount2(target.encode(), _MNT_DETACH)


def _bridge_ports(bridge: str) -> list[str]:
    ports = Path(f"/sys/class/net/{bridge}/brif")
    return sorted(p.name for p in ports.iterdir()) if ports.is_dir() else []


def _doomed(chain: str, network: str, cni_chains: set[str]) -> bool:
    return chain.startswith("KUBE-") or chain in cni_chains


def _remove_iptables_chains(network: str) -> None:
    """Delete the KUBE-* chains and the CNI-* chains of network, and every jump into them."""
    for family in ("iptables", "ip6tables"):
        dump = _run([f"{family}-save"], check=False)
        script = _removal_script(dump, network)
        if script:
            _run([f"{family}-restore", "--noflush"], check=False, stdin=script)


def _removal_script(dump: str, network: str) -> str:
    """An iptables-restore --noflush script deleting KUBE-* and network's CNI chains."""
    tables: dict[str, list[str]] = {}
    table = ""
    for line in dump.splitlines():
        if line.startswith("*"):
            table = line[1:]
            tables[table] = []
        elif line.startswith("-A ") and table:
            tables[table].append(line)
    script: list[str] = []
    for name, rules in tables.items():
        cni_chains = _network_chains(rules, network)
        chains = {r.split()[1] for r in rules} | _declared_chains(dump, name)
        doomed = {c for c in chains if _doomed(c, network, cni_chains)}
        deletes = [
            "-D " + rule[3:]
            for rule in rules
            if rule.split()[1] not in doomed and (_jumps_into(rule, doomed) or network in rule)
        ]
        if not doomed and not deletes:
            continue
        script.append(f"*{name}")
        script.extend(deletes)
        script.extend(f"-F {c}" for c in sorted(doomed))
        script.extend(f"-X {c}" for c in sorted(doomed))
        script.append("COMMIT")
    return "\n".join(script) + "\n" if script else ""


def _network_chains(rules: list[str], network: str) -> set[str]:
    """CNI-<hash> chains the bridge plugin created for network (their rules carry its name)."""
    tagged = f'name: \\"{network}\\"'
    chains = set()
    for rule in rules:
        words = rule.split()
        if (tagged in rule or f'name: "{network}"' in rule) and "-j" in words:
            target = words[words.index("-j") + 1]
            if target.startswith("CNI-") and not target.startswith("CNI-HOSTPORT"):
                chains.add(target)
            if words[1].startswith("CNI-") and not words[1].startswith("CNI-HOSTPORT"):
                chains.add(words[1])
    return chains


def _declared_chains(dump: str, table: str) -> set[str]:
    chains: set[str] = set()
    current = ""
    for line in dump.splitlines():
        if line.startswith("*"):
            current = line[1:]
        elif line.startswith(":") and current == table:
            chains.add(line[1:].split()[0])
    return chains


def _jumps_into(rule: str, chains: set[str]) -> bool:
    words = rule.split()
    return any(flag in words and words[words.index(flag) + 1] in chains for flag in ("-j", "-g"))


def _remove_pod_log_links(pod_logs: Path) -> None:
    if not _CONTAINER_LOGS.is_dir():
        return
    for link in _CONTAINER_LOGS.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(str(pod_logs)):
                link.unlink()


def _container_ids(layout: Layout) -> set[str]:
    """Ids of the sandboxes and containers containerd kept under layout (for cache cleanup)."""
    ids: set[str] = set()
    for directory in (
        layout.containerd / "root" / "io.containerd.grpc.v1.cri" / "sandboxes",
        layout.containerd / "root" / "io.containerd.grpc.v1.cri" / "containers",
        layout.containerd / "state" / "io.containerd.runtime.v2.task" / "k8s.io",
    ):
        if directory.is_dir():
            ids.update(entry.name for entry in directory.iterdir())
    return ids


def _remove_cni_cache(network: str, ids: set[str]) -> None:
    """Clean libcni's result cache: our network's entries, containerd's loopback ones."""
    results = _CNI_CACHE / "results"
    if not results.is_dir():
        return
    for entry in results.iterdir():
        parts = entry.name.split("-")
        if entry.name.startswith(f"{network}-") or ids.intersection(parts):
            entry.unlink(missing_ok=True)


def real_node_names(kube: Kube) -> list[str]:
    """Ready nodes that run containers: labelled real nodes first, then any non-kwok node."""
    from pytest_chaos.kube.retry import call

    labelled: list[str] = []
    others: list[str] = []
    for node in call(kube.core.list_node).items or []:
        meta = node.metadata
        if meta is None or not meta.name:
            continue
        conditions = (node.status.conditions if node.status else None) or []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        if not ready or (meta.annotations or {}).get("kwok.x-k8s.io/node") == "fake":
            continue
        if (meta.labels or {}).get(REAL_NODE_LABEL) == "true":
            labelled.append(meta.name)
        else:
            others.append(meta.name)
    return sorted(labelled) + sorted(others)
