"""One real node in its own network namespace: containerd, kubelet and kube-proxy.

Its files live under ``<state dir>/realnodes/<node>/`` (the layout of
:class:`pytest_chaos.cluster.realnode.Layout`); its processes run in the node's namespace through
``nsenter --net`` only, so they share the host's mounts (the kubelet's volumes are the ones
containerd bind-mounts) but have their own interfaces, ports and iptables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_chaos.cluster import binaries, cluster_dns, images, processes
from pytest_chaos.cluster.processes import ProcessRecord
from pytest_chaos.cluster.realnode import (
    Layout,
    cni_conflist,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)
from pytest_chaos.cluster.realnodes.host import in_netns
from pytest_chaos.cluster.realnodes.plan import STATE_SUBDIR, NodePlan, Plan
from pytest_chaos.errors import ClusterError
from pytest_chaos.kube.deadline import Deadline

#: The node's own bridge for its pods (inside its namespace: the same name on every node).
POD_BRIDGE = "cni0"


def layout(state_dir: Path, node: NodePlan) -> Layout:
    """Where the node's files live."""
    return Layout(state_dir / STATE_SUBDIR / node.name)


def node_kubelet_config(
    where: Layout, ca_cert: Path, node: NodePlan, cgroup_root: str
) -> dict[str, Any]:
    """The kubelet config: no taint, the node's cgroup parent, serving on its node IP."""
    config = kubelet_config(where, ca_cert)
    config.pop("registerWithTaints", None)
    config["cgroupRoot"] = cgroup_root
    config["address"] = node.node_ip
    config["podCIDR"] = node.pod_cidr
    return config


def node_kubeconfig(kubeconfig: Path, plan: Plan, out: Path) -> Path:
    """The admin kubeconfig pointed at the API server through the gateway (same certificate)."""
    import yaml

    data = yaml.safe_load(kubeconfig.read_text())
    for cluster in data.get("clusters", []):
        entry = cluster["cluster"]
        port = str(entry["server"]).rsplit(":", 1)[1]
        entry["server"] = f"https://{plan.gateway}:{port}"
        entry["tls-server-name"] = "127.0.0.1"  # the serving certificate's IP SAN
    out.write_text(yaml.safe_dump(data))
    return out


def start(
    state_dir: Path,
    plan: Plan,
    node: NodePlan,
    kubeconfig: Path,
    pki_dir: Path,
    built: images.BuiltImages,
    cni_bin: Path,
    cgroup_root: str,
    records: list[ProcessRecord],
    deadline: Deadline,
    say: Any,
) -> None:
    """Start containerd (wait, import images), then kubelet and kube-proxy; append records."""
    import yaml

    where = layout(state_dir, node)
    for directory in (
        where.containerd,
        where.cni_conf_dir,
        where.kubelet_root,
        where.pod_logs,
        where.logs,
        where.registry_hosts,
    ):
        directory.mkdir(parents=True, exist_ok=True)
    config = where.containerd / "config.toml"
    config.write_text(containerd_config(where, cni_bin))  # the host-network node's, as is
    conflist = cni_conflist(where, node.pod_cidr, POD_BRIDGE)
    conflist["name"] = plan.cni_network
    conflist["plugins"][0]["ipMasq"] = False  # pods keep their IPs across nodes
    (where.cni_conf_dir / "10-pytest-chaos.conflist").write_text(json.dumps(conflist, indent=2))
    say(f"{node.name}: starting containerd in {node.netns}")
    containerd = processes.spawn(
        "containerd",
        in_netns(node.netns, ["containerd", f"--config={config}", "--log-level=warn"]),
        where.logs / "containerd.log",
        cwd=where.base,
    )
    records.append(containerd)
    _wait_containerd(where, containerd, deadline)
    images.import_images(where.socket, built)
    kubeconfig_here = node_kubeconfig(kubeconfig, plan, where.base / "kubeconfig")
    kubelet_yaml = where.base / "kubelet.yaml"
    kubelet_yaml.write_text(
        yaml.safe_dump(node_kubelet_config(where, pki_dir / "ca.crt", node, cgroup_root))
    )
    labels = ",".join(f"{k}={v}" for k, v in node.labels.items())
    say(f"{node.name}: starting kubelet and kube-proxy")
    records.append(
        processes.spawn(
            "kubelet",
            in_netns(
                node.netns,
                [
                    str(binaries.binary("kubelet")),
                    f"--config={kubelet_yaml}",
                    f"--kubeconfig={kubeconfig_here}",
                    f"--root-dir={where.kubelet_root}",
                    f"--cert-dir={where.kubelet_root / 'pki'}",
                    f"--hostname-override={node.name}",
                    f"--node-ip={node.node_ip}",
                    f"--node-labels={labels}",
                    "--v=1",
                ],
            ),
            where.logs / "kubelet.log",
            cwd=where.base,
        )
    )
    proxy = kube_proxy_config(kubeconfig_here, node.name, plan.cluster_cidr)
    proxy["nodePortAddresses"] = [f"{node.node_ip}/32"]
    proxy_yaml = where.base / "kube-proxy.yaml"
    proxy_yaml.write_text(yaml.safe_dump(proxy))
    records.append(
        processes.spawn(
            "kube-proxy",
            in_netns(
                node.netns, [str(binaries.binary("kube-proxy")), f"--config={proxy_yaml}", "--v=1"]
            ),
            where.logs / "kube-proxy.log",
            cwd=where.base,
        )
    )


def _wait_containerd(where: Layout, record: ProcessRecord, deadline: Deadline) -> None:
    def serving() -> bool:
        processes.raise_if_exited(record, "containerd was starting")
        if not where.socket.exists():
            return False
        try:
            images.ctr(where.socket, "version", timeout=5)
        except ClusterError:
            return False
        return True

    if deadline.poll(serving, every=0.1):
        return
    raise ClusterError(
        f"containerd did not serve after {deadline.describe()}:\n{processes.log_tail(record.log)}"
    )


def dns_settings(plan: Plan, server: str, pki_dir: Path) -> dict[str, Any]:
    """The cluster DNS server's settings: it listens on the gateway, which every node reaches."""
    return cluster_dns.config(plan.gateway, server, pki_dir)
