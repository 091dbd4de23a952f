"""The real nodes' network: a host bridge, a namespace and veth per node, routes between them.

Host side: bridge ``pcx<k>br`` with the gateway address; a route per node's pod CIDR via its node
IP; the service CIDR routed over every node IP (ECMP: each node's kube-proxy translates a
ClusterIP); the API server's port on the gateway forwarded to the host's loopback (where it
listens); forwarding allowed on the bridge. Node side: ``eth0`` with the node IP, a default route
to the gateway, forwarding and bridge netfilter on (kube-proxy's rules see bridged pod traffic).
"""

from __future__ import annotations

from pytest_chaos.cluster.realnodes.host import Changes, in_netns, run
from pytest_chaos.cluster.realnodes.plan import NodePlan, Plan

HOST_SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}


def make_host(changes: Changes, plan: Plan, service_cidr: str, api_port: int) -> None:
    """The bridge, host sysctls, firewall rules and the API server's port on the gateway."""
    for key, value in HOST_SYSCTLS.items():
        changes.sysctl(key, value)
    changes.link(plan.bridge, ["type", "bridge"])
    run(["ip", "addr", "add", f"{plan.gateway}/24", "dev", plan.bridge])
    run(["ip", "link", "set", plan.bridge, "up"])
    changes.sysctl(f"net/ipv4/conf/{plan.bridge}/route_localnet", "1")
    tag = ["-m", "comment", "--comment", plan.tag]
    changes.rule("filter", "FORWARD", ["-i", plan.bridge, *tag, "-j", "ACCEPT"])
    changes.rule("filter", "FORWARD", ["-o", plan.bridge, *tag, "-j", "ACCEPT"])
    changes.rule(
        "nat",
        "PREROUTING",
        [
            "-i", plan.bridge, "-d", plan.gateway, "-p", "tcp", "--dport", str(api_port),
            *tag, "-j", "DNAT", "--to-destination", f"127.0.0.1:{api_port}",
        ],
    )  # fmt: skip
    del service_cidr  # routed once the nodes exist: see route_services


def make_node(changes: Changes, plan: Plan, node: NodePlan) -> None:
    """The node's namespace, its veth to the bridge, its address, routes and sysctls."""
    changes.netns(node.netns)
    changes.link(node.host_veth, ["type", "veth", "peer", "name", "eth0", "netns", node.netns])
    run(["ip", "link", "set", node.host_veth, "master", plan.bridge, "up"])
    ns = node.netns
    run(in_netns(ns, ["ip", "link", "set", "lo", "up"]))
    run(in_netns(ns, ["ip", "addr", "add", f"{node.node_ip}/24", "dev", "eth0"]))
    run(in_netns(ns, ["ip", "link", "set", "eth0", "up"]))
    run(in_netns(ns, ["ip", "route", "add", "default", "via", plan.gateway]))
    for key in ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"):
        changes.sysctl(key, "1", netns=ns)
    changes.sysctl("net/ipv4/conf/all/route_localnet", "1", netns=ns)
    changes.route([node.pod_cidr, "via", node.node_ip, "dev", plan.bridge])


def route_services(changes: Changes, plan: Plan, service_cidr: str) -> None:
    """Route the service CIDR from the host over every node (each node's kube-proxy DNATs)."""
    hops: list[str] = []
    for node in plan.nodes:
        hops += ["nexthop", "via", node.node_ip, "dev", plan.bridge]
    changes.route([service_cidr, *hops])
