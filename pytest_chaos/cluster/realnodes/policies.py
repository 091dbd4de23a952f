"""The NetworkPolicy enforcer of the netns real nodes: one kube-network-policies per node.

The CNI bridge that connects a node's pods enforces no NetworkPolicy, so every node also runs
``pytest-chaos-network-policies`` (``tools/network-policies``: sigs.k8s.io/kube-network-policies'
controller) in its network namespace, like its kube-proxy. It keeps an nftables table there
(``inet kube-network-policies``) that sends the first packet of every new connection of a local
pod that a policy selects to NFQUEUE :data:`QUEUE`, where the controller accepts or drops it;
established connections are accepted without being judged, so a policy never closes one. Where
the kernel has no nftables queue expression (``CONFIG_NFT_QUEUE`` unset, as on this project's
CI machines) the table cannot be made, and an iptables chain (:data:`CHAIN`, the xtables NFQUEUE
target) queues the new connections from and to the node's pod range instead: every new
connection of the node's pods is then judged, those no policy selects are accepted.

The queue number cannot collide with ``chaos.network.latency``'s delayer: NFQUEUE numbers are
per network namespace, and the delayer binds its queue in the pod's namespace, this one in the
node's. On SIGTERM the enforcer deletes its table or chain; after a ``kill -9``,
:func:`remove_rules` deletes them (and the namespace goes away with the node in any case).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from pytest_chaos.cluster import binaries, processes
from pytest_chaos.cluster.processes import ProcessRecord
from pytest_chaos.cluster.realnodes.host import in_netns
from pytest_chaos.cluster.realnodes.plan import NodePlan
from pytest_chaos.errors import BinaryMissingError, ClusterError
from pytest_chaos.kube.deadline import Deadline

#: The process's component name in the cluster's records (and its log's name).
COMPONENT = "network-policies"
#: The enforcer's program (built by the ``network-policies`` component).
PROGRAM = "pytest-chaos-network-policies"
#: The inet table it keeps in the node's namespace.
TABLE = "kube-network-policies"
#: Its iptables chain (table mangle, first in POSTROUTING) where nftables cannot queue.
CHAIN = "PYTEST-CHAOS-NETPOL"
#: The NFQUEUE number the table sends new connections to (in the node's namespace).
QUEUE = 100


def enforcer() -> str:
    """Who enforces NetworkPolicies on the netns real nodes, with its version."""
    return f"sigs.k8s.io/kube-network-policies {binaries.module_version(binaries.NETWORK_POLICIES)}"


def argv(program: Path, node: NodePlan, kubeconfig: Path) -> list[str]:
    """The enforcer's command line for node: in the node's namespace, as the node."""
    return in_netns(
        node.netns,
        [
            str(program),
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={node.name}",
            f"--nfqueue-id={QUEUE}",
            f"--nftables-table={TABLE}",
            f"--pod-cidr={node.pod_cidr}",
            "--v=1",
        ],
    )


def rules_argv(program: Path, netns: str | None, *, remove: bool) -> list[str]:
    """The command that reports netns's (None: the host's) table, chain and queue; or removes."""
    command = [str(program), "--remove-rules" if remove else "--check-rules"]
    command += [f"--nftables-table={TABLE}", f"--nfqueue-id={QUEUE}"]
    return command if netns is None else in_netns(netns, command)


def start(node: NodePlan, kubeconfig: Path, base: Path, logs: Path) -> ProcessRecord:
    """Start node's enforcer (cwd base, log in logs); :func:`wait_ready` waits for its rules."""
    return processes.spawn(
        COMPONENT,
        argv(binaries.binary(PROGRAM), node, kubeconfig),
        logs / f"{COMPONENT}.log",
        cwd=base,
    )


#: What ``--check-rules`` prints: the rules, then whether a process listens on the queue.
ANSWERS = {f"{r} {q}" for r in ("present", "absent") for q in ("bound", "unbound")}


def rules(netns: str | None, *, remove: bool = False) -> str:
    """``present bound``, ``absent unbound``... for netns (remove: ``removed`` or ``absent``)."""
    result = subprocess.run(
        rules_argv(binaries.binary(PROGRAM), netns, remove=remove),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    answer = result.stdout.strip()
    expected = {"removed", "absent"} if remove else ANSWERS
    if result.returncode != 0 or answer not in expected:
        where = f"netns {netns}" if netns else "the host"
        raise ClusterError(
            f"could not {'remove' if remove else 'look for'} nftables table inet {TABLE} and "
            f"iptables chain {CHAIN} in {where}: {(result.stderr or result.stdout).strip()[-500:]}"
        )
    return answer


def wait_ready(enforcers: Iterable[tuple[NodePlan, ProcessRecord]], deadline: Deadline) -> None:
    """Wait until every enforcer has its rules in its node's namespace and listens on the queue."""
    waiting = list(enforcers)

    def ready() -> bool:
        for node, record in list(waiting):
            processes.raise_if_exited(record, f"{node.name}'s NetworkPolicy enforcer was starting")
            if rules(node.netns) == "present bound":
                waiting.remove((node, record))
        return not waiting

    if deadline.poll(ready, every=0.2):
        return
    node, record = waiting[0]
    raise ClusterError(
        f"the NetworkPolicy enforcer of {node.name} had no rules bound to NFQUEUE {QUEUE} after "
        f"{deadline.describe()} ({rules(node.netns)}); the last lines of {record.log}:\n"
        f"{processes.log_tail(record.log)}"
    )


def remove_rules(nodes: Iterable[NodePlan]) -> list[str]:
    """Delete the table and chain in every node namespace that still exists; return failures."""
    try:
        binaries.binary(PROGRAM)
    except BinaryMissingError:
        return []  # never started here; the namespaces take any table with them
    problems = []
    for node in nodes:
        if not Path(f"/run/netns/{node.netns}").exists():
            continue
        try:
            rules(node.netns, remove=True)
        except (ClusterError, OSError, subprocess.SubprocessError) as exc:
            problems.append(str(exc))
    return problems


def rules_left(nodes: Iterable[NodePlan]) -> list[str]:
    """The enforcer rules still in the namespaces of nodes (for a leftovers report)."""
    try:
        binaries.binary(PROGRAM)
    except BinaryMissingError:
        return []
    found = []
    for node in nodes:
        if not Path(f"/run/netns/{node.netns}").exists():
            continue
        try:
            if rules(node.netns) == "present bound":
                found.append(f"nftables table inet {TABLE} in netns {node.netns}")
        except (ClusterError, OSError, subprocess.SubprocessError) as exc:
            found.append(str(exc))
    return found
