"""Start, wait for and remove every real node of a local cluster (the composer of this package).

State under ``<cluster state dir>/realnodes/``: ``plan.json`` (count and slot), ``host.json``
(the host changes, see :class:`~pytest_chaos.cluster.realnodes.host.Changes`), one directory per
node and the cluster DNS server's files. :func:`cleanup` needs nothing else, so it works from any
process after a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pytest_chaos.cluster import binaries, cluster_dns, images, processes
from pytest_chaos.cluster.processes import ProcessRecord
from pytest_chaos.cluster.realnode import (
    _cni_bin_dir,
    _mounts_under,
    _node_condition,
    _remove_pod_log_links,
    _unmount_under,
    missing_requirements,
)
from pytest_chaos.cluster.realnodes import cgroups, network, node, policies
from pytest_chaos.cluster.realnodes.host import Changes, remove_cgroup, run
from pytest_chaos.cluster.realnodes.plan import STATE_SUBDIR, Plan, plan
from pytest_chaos.errors import BinaryMissingError, ClusterError
from pytest_chaos.kube.deadline import Deadline

Say = Callable[[str], None]
_CNI_RESULTS = Path("/var/lib/cni/results")


def base(state_dir: Path) -> Path:
    """The directory of a cluster's real nodes."""
    return state_dir / STATE_SUBDIR


def saved_plan(state_dir: Path) -> Plan | None:
    """The plan the cluster's real nodes were started with (None: it has none)."""
    try:
        data = json.loads((base(state_dir) / "plan.json").read_text())
        return plan(int(data["count"]), int(data["slot"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


#: sun_path holds 108 bytes on Linux; containerd refuses paths over 104.
_SOCKET_PATH_MAX = 104


def requirements(state_dir: Path | None = None) -> list[str]:
    """What this host (and state_dir's path) lacks to run netns real nodes."""
    found = [m for m in missing_requirements() if "is in use" not in m]
    if shutil.which("nsenter") is None:
        found.append("command 'nsenter': apt-get install -y util-linux")
    try:
        binaries.binary(policies.PROGRAM)
    except BinaryMissingError as exc:
        found.append(str(exc))
    if state_dir is not None:
        where = node.layout(state_dir, plan(1).nodes[0])
        longest = where.kubelet_root / "pod-resources" / "kubelet.sock"
        if len(str(longest)) >= _SOCKET_PATH_MAX - 2:  # real-node-NN: room for two digits
            found.append(
                f"the state directory's path is too long for unix sockets ({longest} has "
                f"{len(str(longest))} characters, at most {_SOCKET_PATH_MAX - 3}): set "
                "PYTEST_CHAOS_STATE_DIR to a shorter directory"
            )
    return found


def start(
    state_dir: Path,
    count: int,
    kubeconfig: Path,
    pki_dir: Path,
    server: str,
    service_cidr: str,
    say: Say,
    *,
    slot: int = 0,
    timeout: float = 120.0,
) -> list[ProcessRecord]:
    """Start count real nodes and the cluster DNS; wait until every node is Ready.

    On any failure, everything is stopped and every host change undone before the error (which
    carries the failing node's log) propagates.
    """
    problems = requirements(state_dir)
    if problems:
        raise ClusterError("this host cannot run real nodes:\n  " + "\n  ".join(problems))
    deadline = Deadline(timeout)
    records: list[ProcessRecord] = []
    the_plan = plan(count, slot)
    try:
        _start(
            state_dir, the_plan, kubeconfig, pki_dir, server, service_cidr, say, records, deadline
        )
    except BaseException:
        stop(state_dir, records)
        raise
    return records


def _start(
    state_dir: Path,
    the_plan: Plan,
    kubeconfig: Path,
    pki_dir: Path,
    server: str,
    service_cidr: str,
    say: Say,
    records: list[ProcessRecord],
    deadline: Deadline,
) -> None:
    built = images.build(progress=say)
    cleanup(state_dir)  # a crashed run's leftovers
    where = base(state_dir)
    where.mkdir(parents=True, exist_ok=True)
    (where / "plan.json").write_text(
        json.dumps({"count": len(the_plan.nodes), "slot": the_plan.slot})
    )
    changes = Changes(where / "host.json")
    api_port = int(server.rsplit(":", 1)[1])
    say(f"making the real nodes' network ({the_plan.bridge}, {the_plan.node_subnet})")
    network.make_host(changes, the_plan, service_cidr, api_port)
    cni_bin = _cni_bin_dir()
    assert cni_bin is not None  # requirements() checked it
    started = time.time()
    enforcers = []
    for each in the_plan.nodes:
        network.make_node(changes, the_plan, each)
        root = cgroups.make(changes, the_plan.slot, each.name)
        node.start(
            state_dir, the_plan, each, kubeconfig, pki_dir, built, cni_bin, root, records,
            deadline, say,
        )  # fmt: skip
        files = node.layout(state_dir, each)
        records.append(policies.start(each, files.base / "kubeconfig", files.base, files.logs))
        enforcers.append((each, records[-1]))
    network.route_services(changes, the_plan, service_cidr)
    say("starting the cluster DNS")
    records.append(
        cluster_dns.start(
            built.dns, where, where / "dns.log", node.dns_settings(the_plan, server, pki_dir)
        )
    )
    from pytest_chaos.kube import Kube

    kube = Kube.from_kubeconfig(kubeconfig)
    try:
        cluster_dns.publish(kube, the_plan.gateway, the_plan.nodes[0].name)
    finally:
        kube.close()
    cluster_dns.wait_serving(records[-1], (the_plan.gateway, cluster_dns.PORT), deadline)
    _wait_ready(state_dir, the_plan, server, pki_dir, records, deadline, say, since=started)
    say(f"waiting for the NetworkPolicy enforcer ({policies.enforcer()}) on every node")
    policies.wait_ready(enforcers, deadline)


def _wait_ready(
    state_dir: Path,
    the_plan: Plan,
    server: str,
    pki_dir: Path,
    records: list[ProcessRecord],
    deadline: Deadline,
    say: Say,
    *,
    since: float,
) -> None:
    say(f"waiting for {len(the_plan.nodes)} real node(s) to be Ready")
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    last = dict.fromkeys((n.name for n in the_plan.nodes), "not registered")

    def ready() -> bool:
        for record in records:
            processes.raise_if_exited(record, f"the real nodes were starting ({record.log})")
        for name, state in last.items():
            if state != "Ready":
                url = f"{server}/api/v1/nodes/{name}"
                last[name] = _node_condition(url, context, since - 1.0) or state
        return all(state == "Ready" for state in last.values())

    if deadline.poll(ready, every=0.5) and deadline.poll(
        lambda: not _tainted(server, context, last), every=0.2
    ):
        return
    tainted = _tainted(server, context, last)
    if tainted and all(state == "Ready" for state in last.values()):
        raise ClusterError(
            f"real node(s) {', '.join(tainted)} still carried taints after "
            f"{deadline.describe()} (the node lifecycle controller lifts not-ready taints once "
            "a node is Ready): is kube-controller-manager running?"
        )
    late = next(name for name, state in last.items() if state != "Ready")
    log = node.layout(state_dir, next(n for n in the_plan.nodes if n.name == late)).logs
    raise ClusterError(
        f"real node {late} was not Ready after {deadline.describe()} ({last[late]}); the last "
        f"lines of {log / 'kubelet.log'}:\n{processes.log_tail(log / 'kubelet.log')}"
    )


def _tainted(server: str, context: ssl.SSLContext, names: Iterable[str]) -> list[str]:
    """The nodes that still carry a taint (a fresh node's not-ready taint, lifted once Ready)."""
    import urllib.error
    import urllib.request

    found = []
    for name in names:
        url = f"{server}/api/v1/nodes/{name}"
        try:
            with urllib.request.urlopen(url, context=context, timeout=3) as response:  # noqa: S310
                node = json.loads(response.read())
        except (OSError, ValueError, urllib.error.URLError):
            found.append(name)
            continue
        if (node.get("spec") or {}).get("taints"):
            found.append(name)
    return found


def stop(state_dir: Path, records: Iterable[ProcessRecord]) -> list[str]:
    """Stop the DNS, every kube-proxy and kubelet, the containers, containerd; then clean up."""
    running = [r for r in records if processes.is_running(r)]
    _continue(processes.find_orphans(str(base(state_dir)) + "/"))  # a stopped node's
    first = [r.pid for r in running if r.component != "containerd"]
    processes.terminate(first, grace=10.0)
    the_plan = saved_plan(state_dir)
    if the_plan is not None:
        for each in the_plan.nodes:
            _kill_containers(node.layout(state_dir, each).socket)
    processes.terminate([r.pid for r in running if r.component == "containerd"], grace=10.0)
    return cleanup(state_dir)


def _continue(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCONT)


def _kill_containers(socket: Path) -> None:
    if not socket.exists():
        return
    try:
        ids = images.ctr(socket, "tasks", "list", "--quiet", timeout=10).split()
    except ClusterError:
        return
    for container in ids:
        with contextlib.suppress(ClusterError):
            images.ctr(
                socket, "tasks", "kill", "--all", "--signal", "SIGKILL", container, timeout=10
            )
    for container in ids:
        with contextlib.suppress(ClusterError):
            images.ctr(socket, "tasks", "delete", "--force", container, timeout=10)


def cleanup(state_dir: Path) -> list[str]:
    """Remove what a cluster's real nodes left (processes, mounts, host changes); say what stays."""
    where = base(state_dir)
    if not where.exists():
        return []
    the_plan = saved_plan(state_dir)
    orphans = processes.find_orphans(str(where) + "/")
    if orphans:
        _continue(orphans)  # a frozen process acts on SIGTERM only once continued
        processes.terminate(orphans, grace=5.0)
    if the_plan is not None:
        for each in the_plan.nodes:
            cgroups_top = [h / f"pcx{the_plan.slot}" / each.name for h in cgroups.hierarchies()]
            for top in cgroups_top:
                remove_cgroup(top)
    _unmount_under(where)
    problems = policies.remove_rules(the_plan.nodes) if the_plan is not None else []
    if the_plan is not None:
        for each in the_plan.nodes:
            _remove_pod_log_links(node.layout(state_dir, each).pod_logs)
        if _CNI_RESULTS.is_dir():
            for entry in _CNI_RESULTS.iterdir():
                if entry.name.startswith(f"{the_plan.cni_network}-"):
                    entry.unlink(missing_ok=True)
    changes = Changes(where / "host.json")
    problems += changes.undo()
    left = problems + leftovers(state_dir)
    if not left and not _mounts_under(where):
        shutil.rmtree(where, ignore_errors=True)
    return left


def leftovers(state_dir: Path) -> list[str]:
    """What of the cluster's real nodes is still on this host."""
    where = base(state_dir)
    found = []
    if pids := processes.find_orphans(str(where) + "/"):
        found.append(f"processes {pids}")
    if mounts := _mounts_under(where):
        found.append(f"{len(mounts)} mount(s) under {where}")
    found += Changes(where / "host.json").leftovers()
    the_plan = saved_plan(state_dir)
    if the_plan is not None:
        listed = run(["ip", "netns", "list"], check=False)
        found += [f"netns {n.netns}" for n in the_plan.nodes if n.netns in listed.split()]
        found += policies.rules_left(the_plan.nodes)
        if Path(f"/sys/class/net/{the_plan.bridge}").exists():
            found.append(f"bridge {the_plan.bridge}")
        rules = [
            line
            for line in run(["iptables-save"], check=False).splitlines()
            if the_plan.tag in line
        ]
        if rules:
            found.append(f"{len(rules)} iptables rule(s) tagged {the_plan.tag}")
        found += [
            f"cgroup {h / f'pcx{the_plan.slot}'}"
            for h in cgroups.hierarchies()
            if (h / f"pcx{the_plan.slot}").exists()
        ]
    return found
