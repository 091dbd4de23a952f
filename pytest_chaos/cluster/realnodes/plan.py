"""The layout of a cluster's real nodes: names, addresses, pod CIDRs, zones (pure, no I/O).

A cluster with real nodes owns one address slot ``k``: ``10.(160+k).0.0/16``. Its host bridge
``pcx<k>br`` holds the gateway ``10.(160+k).0.1/24``; node ``i`` (``real-node-<i>``) has the node
IP ``10.(160+k).0.(10+i)`` in the network namespace ``pcx<k>n<i>`` and the pod CIDR
``10.(160+k).(128+i).0/24``. All pod CIDRs lie in ``10.(160+k).128.0/17`` (kube-proxy's cluster
CIDR: traffic from the host, outside it, is masqueraded so replies come back the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_chaos.capacity import MAX_NODES_BY_ADDRESSES

#: The label every real node carries.
#: The real nodes' directory in a cluster's state directory. Short: the kubelet's unix sockets
#: live below it, and a socket path has at most 107 bytes (``~/.local/state/...`` is long).
STATE_SUBDIR = "rn"

REAL_NODE_LABEL = "chaos.pytest.dev/real-node"
ZONE_LABEL = "topology.kubernetes.io/zone"
ZONES = ("a", "b", "c")
#: Address slots: 10.160.0.0/16 ... 10.175.0.0/16 (clear of kwok's 10.244/16, services' 10.96/16).
SLOTS = 16


@dataclass(frozen=True, slots=True)
class NodePlan:
    """One real node: its name, namespace, addresses and zone."""

    index: int
    name: str
    netns: str
    host_veth: str
    node_ip: str
    pod_cidr: str
    zone: str

    @property
    def labels(self) -> dict[str, str]:
        """The labels the kubelet registers the node with."""
        return {REAL_NODE_LABEL: "true", ZONE_LABEL: self.zone}


@dataclass(frozen=True, slots=True)
class Plan:
    """Every real node of one cluster and the host side they share."""

    slot: int
    nodes: tuple[NodePlan, ...]

    @property
    def prefix(self) -> str:
        """The first two octets of every address of this slot."""
        return f"10.{160 + self.slot}"

    @property
    def bridge(self) -> str:
        """The host bridge all the nodes' veths plug into."""
        return f"pcx{self.slot}br"

    @property
    def gateway(self) -> str:
        """The host's address on the bridge: the nodes' default route, DNS and API server."""
        return f"{self.prefix}.0.1"

    @property
    def node_subnet(self) -> str:
        """The bridge's subnet, holding the gateway and every node IP."""
        return f"{self.prefix}.0.0/24"

    @property
    def cluster_cidr(self) -> str:
        """The range holding every node's pod CIDR."""
        return f"{self.prefix}.128.0/17"

    @property
    def cni_network(self) -> str:
        """The CNI network name (libcni caches results by it)."""
        return f"pcx{self.slot}"

    @property
    def tag(self) -> str:
        """The comment that marks this slot's host firewall rules.

        Never containing ``pytest-chaos`` nor ``KUBE-``: the host-network real node's cleanup
        deletes every such rule.
        """
        return f"pcx{self.slot}-real-nodes"


def plan(count: int, slot: int = 0) -> Plan:
    """The plan of ``count`` real nodes in address slot ``slot``."""
    if not 0 <= slot < SLOTS:
        raise ValueError(f"slot {slot} is outside 0..{SLOTS - 1}")
    if not 1 <= count <= MAX_NODES_BY_ADDRESSES:
        raise ValueError(f"count {count} is outside 1..{MAX_NODES_BY_ADDRESSES}")
    prefix = f"10.{160 + slot}"
    nodes = tuple(
        NodePlan(
            index=i,
            name=f"real-node-{i}",
            netns=f"pcx{slot}n{i}",
            host_veth=f"pcx{slot}n{i}h",
            node_ip=f"{prefix}.0.{10 + i}",
            pod_cidr=f"{prefix}.{128 + i}.0/24",
            zone=ZONES[i % len(ZONES)],
        )
        for i in range(count)
    )
    return Plan(slot=slot, nodes=nodes)
