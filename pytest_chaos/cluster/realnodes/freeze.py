"""Stop a real node as a machine stops, and start it again (``chaos.nodes.stop``).

Stopping freezes the node's kubelet and containerd (SIGSTOP: they neither answer nor post
heartbeats) and takes its veth down, so its pods' network goes with it; the host's route to the
service range then skips the node. Starting continues them (SIGCONT), brings the veth up and
routes the service range over the node again. Both are idempotent and work from the cluster's
state directory alone (a revert after a crash).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

from pytest_chaos.cluster import processes
from pytest_chaos.cluster.realnodes import node as realnode
from pytest_chaos.cluster.realnodes.cluster import saved_plan
from pytest_chaos.cluster.realnodes.host import run
from pytest_chaos.cluster.realnodes.plan import NodePlan, Plan
from pytest_chaos.errors import ClusterError

#: The service range the host routes over the nodes (the local cluster's).
SERVICE_CIDR = "10.96.0.0/16"
_FROZEN_MARK = "frozen"


def owner(root: Path, server: str, node_name: str) -> Path | None:
    """The state directory of the local cluster under root serving at server with node_name."""
    for state_file in sorted(root.glob("*/cluster.json")):
        state_dir = state_file.parent
        try:
            port = json.loads(state_file.read_text())["ports"]["apiserver"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        the_plan = saved_plan(state_dir)
        if (
            the_plan is not None
            and server.rstrip("/") == f"https://127.0.0.1:{port}"
            and any(n.name == node_name for n in the_plan.nodes)
        ):
            return state_dir
    return None


def _node(state_dir: Path, node_name: str) -> tuple[Plan, NodePlan]:
    the_plan = saved_plan(state_dir)
    found = [n for n in the_plan.nodes if n.name == node_name] if the_plan else []
    if the_plan is None or not found:
        raise ClusterError(f"no real node {node_name} in {state_dir}")
    return the_plan, found[0]


def _pids(state_dir: Path, each: NodePlan) -> list[int]:
    """The node's kubelet and containerd (their command lines name their config files)."""
    where = realnode.layout(state_dir, each)
    return processes.find_orphans(str(where.base / "kubelet.yaml")) + processes.find_orphans(
        str(where.containerd / "config.toml")
    )


def _mark(state_dir: Path, each: NodePlan) -> Path:
    return realnode.layout(state_dir, each).base / _FROZEN_MARK


def _route_services(the_plan: Plan) -> None:
    """Route the service range over the nodes whose veth is up (none up: leave it)."""
    hops: list[str] = []
    for each in the_plan.nodes:
        with contextlib.suppress(OSError):
            state = Path(f"/sys/class/net/{each.host_veth}/operstate").read_text().strip()
            if state != "down":
                hops += ["nexthop", "via", each.node_ip, "dev", the_plan.bridge]
    if hops:
        run(["ip", "route", "replace", SERVICE_CIDR, *hops])


def stop(state_dir: Path, node_name: str) -> list[int]:
    """Freeze the node's kubelet and containerd and cut its network; return the frozen pids."""
    the_plan, each = _node(state_dir, node_name)
    pids = _pids(state_dir, each)
    if not pids:
        raise ClusterError(f"real node {node_name} runs no kubelet nor containerd to stop")
    _mark(state_dir, each).write_text(" ".join(map(str, pids)))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    run(["ip", "link", "set", each.host_veth, "down"])
    _route_services(the_plan)
    return pids


def start(state_dir: Path, node_name: str) -> str:
    """Continue the node's processes and bring its network back (idempotent); say what was done."""
    try:
        the_plan, each = _node(state_dir, node_name)
    except ClusterError:
        return "the cluster or its node is gone: nothing to start"
    mark = _mark(state_dir, each)
    pids = _pids(state_dir, each)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    if Path(f"/sys/class/net/{each.host_veth}").exists():
        run(["ip", "link", "set", each.host_veth, "up"])
        _route_services(the_plan)
    was_stopped = mark.exists()
    mark.unlink(missing_ok=True)
    return "reverted" if was_stopped else "already running"


def stopped(state_dir: Path, node_name: str) -> bool:
    """True while the node is stopped by :func:`stop`."""
    _the_plan, each = _node(state_dir, node_name)
    return _mark(state_dir, each).exists()
