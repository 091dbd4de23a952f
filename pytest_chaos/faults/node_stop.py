"""chaos.nodes.stop: a real node goes down as a machine does, and comes back on revert.

On a cluster pytest-chaos started itself (``--real-nodes``), the node's kubelet and containerd
are frozen (SIGSTOP) and its veth taken down: the kubelet stops answering and posting heartbeats,
its pods' network goes with it. The node controller marks the Node NotReady after its
``--node-monitor-grace-period`` (the embedded cluster with real nodes uses 20 s) and taints it
``node.kubernetes.io/unreachable:NoExecute``; the taint manager then evicts each pod once its
toleration runs out (``tolerationSeconds``: 300 s by default; set it short in a test, e.g. 5 s),
and controllers re-create the pods on the other nodes. Revert continues the processes, brings
the veth up and waits until the Node is Ready again.

On other clusters stopping a machine needs a privileged pod on that node (host PID and network
namespaces); pytest-chaos refuses there, saying so, rather than pretending.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from pytest_chaos.errors import InconclusiveError, InjectError, RevertError
from pytest_chaos.faults import Fault, FaultContext, injecting
from pytest_chaos.faults.node_rules import node_name
from pytest_chaos.faults.node_undo import read_node
from pytest_chaos.faults.undo import reverter
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import UndoRecord

#: The undo kind of chaos.nodes.stop; records in clusters name it: never rename.
UNDO_START_NODE: Final = "start-node"
#: How long a started node may take to be Ready again (seconds).
READY_WITHIN: Final = 90.0


def node_ready(node: Mapping[str, Any] | None) -> bool:
    """True when the Node's Ready condition is True."""
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def owning_state_dir(kube: Kube, name: str) -> Path | None:
    """The state directory of our own local cluster that runs node name (None: not ours)."""
    from pytest_chaos.cluster.local import state_root
    from pytest_chaos.cluster.realnodes.freeze import owner

    return owner(state_root(), str(kube.api_client.configuration.host), name)


def not_ours(names: Sequence[str]) -> str:
    """The refusal on a cluster pytest-chaos did not start."""
    return (
        f"chaos.nodes.stop: {', '.join(names)} is not a real node of a local cluster "
        "pytest-chaos started (`--real-nodes`); stopping a machine of another cluster needs a "
        "privileged pod on that node (host PID and network namespaces), which pytest-chaos does "
        "not run: use chaos.nodes.drain or zone_outage(how='taint') there"
    )


def stop_nodes(
    ctx: FaultContext, chosen: Sequence[Mapping[str, Any]], kind: str, within: float
) -> Fault:
    """Record, then stop each chosen node; wait until the API shows each NotReady."""
    from pytest_chaos.cluster.realnodes import freeze

    names = [node_name(n) for n in chosen]
    owners = {name: owning_state_dir(ctx.kube, name) for name in names}
    foreign = [name for name, where in owners.items() if where is None]
    if foreign:
        raise InjectError(not_ours(foreign))
    records: list[UndoRecord] = []
    with injecting(ctx, kind, records):
        for node in chosen:
            name = node_name(node)
            records.append(
                ctx.record(
                    kind,
                    kind="Node",
                    namespace=None,
                    name=name,
                    uid=node["metadata"].get("uid"),
                    undo=UNDO_START_NODE,
                    payload={"state_dir": str(owners[name])},
                )
            )
            freeze.stop(Path(str(owners[name])), name)
        ctx.timeline.add("inject", f"{kind}: node(s) {', '.join(names)} stopped", targets=names)
    fault = ctx.done(Fault(ctx, kind, tuple(names), records))
    _await(ctx.kube, names, ready=False, within=within, kind=kind)
    ctx.timeline.add("effect", f"{kind}: node(s) {', '.join(names)} NotReady", targets=names)
    return fault


def _await(kube: Kube, names: Sequence[str], *, ready: bool, within: float, kind: str) -> None:
    from pytest_chaos.kube.deadline import Deadline

    def reached() -> bool:
        return all(node_ready(read_node(kube, n)) == ready for n in names)

    if Deadline(within).poll(reached, every=0.5):
        return
    state = "Ready" if ready else "NotReady"
    if ready:
        raise RevertError(f"{kind}: node(s) {', '.join(names)} not {state} after {within:g}s")
    raise InconclusiveError(
        f"{kind}: node(s) {', '.join(names)} stopped, but not {state} after {within:g}s: the "
        "node controller's --node-monitor-grace-period is longer (raise timeout=)"
    )


@reverter(UNDO_START_NODE)
def _start_node(kube: Kube, record: UndoRecord) -> str:
    """Continue a stopped node and wait until it is Ready again."""
    from pytest_chaos.cluster.realnodes import freeze

    outcome = freeze.start(Path(str(record.payload.get("state_dir"))), record.name)
    if outcome.startswith("the cluster"):
        return outcome
    started = time.monotonic()
    _await(kube, [record.name], ready=True, within=READY_WITHIN, kind="nodes.stop")
    return f"{outcome}; Ready again after {time.monotonic() - started:.1f}s"
