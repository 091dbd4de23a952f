"""The container runtimes of a local cluster's real nodes, as tools outside the node see them.

Image loading and the local registry need the same three facts about every real node: where its
containerd listens, where containerd reads per-registry host configs (``hosts.toml``), and the
address at which that node reaches a service on this host (the registry). This module is the one
place that answers it, whatever the node layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_chaos.cluster.realnode import NODE_NAME, Layout


@dataclass(frozen=True, slots=True)
class NodeRuntime:
    """One real node's containerd, from the host's point of view."""

    name: str
    #: containerd's gRPC socket (``ctr --address``).
    containerd_socket: Path
    #: containerd's ``config_path`` for registry hosts: ``<dir>/<host:port>/hosts.toml``.
    registry_hosts_dir: Path
    #: The IP at which the node reaches a port this host listens on.
    host_address: str


def node_runtimes(state_dir: Path) -> list[NodeRuntime]:
    """The real nodes' runtimes of the cluster whose state is in ``state_dir`` (none: ``[]``).

    Netns real nodes (``--real-nodes``) reach the host at their bridge's gateway; the
    host-network real node (``--real-node``) at the loopback.
    """
    from pytest_chaos.cluster.realnodes import cluster, node

    the_plan = cluster.saved_plan(state_dir)
    if the_plan is not None:
        found = []
        for each in the_plan.nodes:
            where = node.layout(state_dir, each)
            if where.containerd.exists():
                found.append(
                    NodeRuntime(
                        name=each.name,
                        containerd_socket=where.socket,
                        registry_hosts_dir=where.registry_hosts,
                        host_address=the_plan.gateway,
                    )
                )
        return found
    layout = Layout(state_dir / "realnode")
    if not layout.containerd.exists():
        return []
    return [
        NodeRuntime(
            name=NODE_NAME,
            containerd_socket=layout.socket,
            registry_hosts_dir=layout.registry_hosts,
            host_address="127.0.0.1",
        )
    ]
