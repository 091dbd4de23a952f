"""Netns real nodes: warm start, idle memory, a node stop, a 30-pod drain (ours vs kubectl).

(a) ``pytest-chaos cluster up --real-nodes 3 --nodes 0`` (binaries and images cached), a fresh
    state directory each round, timed end to end until every node is Ready.
(b) Idle RSS of that cluster after it settled 10 s: every process of its state directory
    (control plane, each node's containerd, kubelet, kube-proxy, the shims, the DNS) plus every
    process in the nodes' cgroups (the pause sandboxes).
(c) ``chaos.nodes.stop`` of the node hosting one of 3 replicas (tolerationSeconds 5): call → the
    Node NotReady (the call returns then), → 3 pods Ready on the other nodes; revert → Ready.
(d) Drain of a node carrying 30 pods (the others cordoned while the pods start, then
    uncordoned): ``chaos.nodes.drain`` vs ``kubectl drain --ignore-daemonsets`` on the same
    cluster in one run, each from the call to all 30 pods Ready elsewhere.

Needs root and a host that can run real nodes. Usage:
    python benchmarks/real_nodes.py [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_chaos.cluster import binaries
from pytest_chaos.cluster.processes import find_orphans
from pytest_chaos.cluster.realnodes.cluster import base as nodes_base
from pytest_chaos.faults import FaultContext
from pytest_chaos.faults.node_stop import node_ready
from pytest_chaos.faults.nodes import NodeFaults
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import Ledger, Owner, new_run_id
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings
from pytest_chaos.steady.diagnosis import pod_ready

NAME = "rnbench"
TOLERATE_5S = [
    {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 2),
        "median": round(statistics.median(values), 2),
        "max": round(max(values), 2),
        "n": len(values),
    }


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTEST_CHAOS_STATE_DIR": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "pytest_chaos", "cluster", *args, "--name", NAME],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def rss_mib(state_dir: Path) -> float:
    pids = set(find_orphans(str(state_dir) + "/")) | set(
        find_orphans(str(nodes_base(state_dir)) + "/")
    )
    for procs in Path("/sys/fs/cgroup/memory").glob("pcx0/**/cgroup.procs"):
        pids.update(int(p) for p in procs.read_text().split())
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "tolerations": TOLERATE_5S,
                    "containers": [{
                        "name": "demo", "image": "localhost/pytest-chaos/demo:1.0",
                        "imagePullPolicy": "Never",
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080},
                                           "periodSeconds": 1},
                    }],
                },
            },
        },
    }  # fmt: skip


def wait_ready(kube: Kube, name: str, count: int, *, off: str | None = None) -> None:
    kube.wait(
        functools.partial(kube.core.list_namespaced_pod, "default"),
        lambda pods: len(
            [p for p in pods if pod_ready(p) and p.spec.node_name != off
             and not p.metadata.deletion_timestamp]
        ) == count,
        within=300, what=f"{count} Ready pods of {name} off {off}", label_selector=f"app={name}",
    )  # fmt: skip


def context(kube: Kube, ledger_dir: Path) -> FaultContext:
    settings = Settings(
        cluster="local", kubeconfig=None, context=None, local_name=NAME, local_nodes=0
    )
    return FaultContext(
        kube=kube,
        ledger=Ledger(kube, Owner.current(new_run_id()), directory=ledger_dir),
        safety=Safety(settings, kube.context),
        rng=random.Random(1),
        timeline=Timeline("bench"),
        test="benchmarks/real_nodes.py",
    )


def cordon(kube: Kube, nodes: list[str], value: bool) -> None:
    for node in nodes:
        kube.core.patch_node(node, {"spec": {"unschedulable": value or None}})


def bench_stop(kube: Kube, faults: NodeFaults, name: str) -> dict[str, float]:
    kube.apps.create_namespaced_deployment("default", deployment(name, 3))
    wait_ready(kube, name, 3)
    pods = kube.core.list_namespaced_pod("default", label_selector=f"app={name}").items
    victim = str(next(p for p in pods if pod_ready(p)).spec.node_name)
    started = time.monotonic()
    fault = faults.stop(victim)
    not_ready = time.monotonic() - started
    wait_ready(kube, name, 3, off=victim)
    elsewhere = time.monotonic() - started
    started = time.monotonic()
    fault.revert()
    back = time.monotonic() - started
    assert node_ready(kube.read(kube.core.read_node, victim))
    kube.apps.delete_namespaced_deployment(name, "default")
    return {"not_ready_s": not_ready, "pods_ready_elsewhere_s": elsewhere, "revert_ready_s": back}


def bench_drain(kube: Kube, faults: NodeFaults, how: str, kubeconfig: Path) -> float:
    target, others = "real-node-0", ["real-node-1", "real-node-2"]
    name = f"drain-{how}"
    cordon(kube, others, True)
    kube.apps.create_namespaced_deployment("default", deployment(name, 30))
    wait_ready(kube, name, 30)
    cordon(kube, others, False)
    started = time.monotonic()
    if how == "ours":
        fault = faults.drain(target, timeout="300s")
    else:
        subprocess.run(
            [str(binaries.binary("kubectl")), "--kubeconfig", str(kubeconfig), "drain", target,
             "--ignore-daemonsets", "--timeout=300s"],
            check=True, capture_output=True, timeout=320,
        )  # fmt: skip
    wait_ready(kube, name, 30, off=target)
    seconds = time.monotonic() - started
    if how == "ours":
        fault.revert()
    else:
        cordon(kube, [target], False)
    kube.apps.delete_namespaced_deployment(name, "default")
    kube.wait(
        functools.partial(kube.core.list_namespaced_pod, "default"),
        lambda pods: not pods, within=120, what=f"{name}'s pods gone",
        label_selector=f"app={name}",
    )  # fmt: skip
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pc-"))
    os.environ["PYTEST_CHAOS_STATE_DIR"] = str(root)  # chaos.nodes.stop finds its cluster there
    results: dict[str, Any] = {}
    ups = []
    try:
        for _ in range(args.rounds):
            started = time.monotonic()
            up = cli(root, "up", "--real-nodes", "3", "--nodes", "0")
            assert up.returncode == 0, up.stderr
            ups.append(time.monotonic() - started)
            if len(ups) < args.rounds:
                assert cli(root, "down").returncode == 0
        results["up_to_ready_s"] = summary(ups)
        state_dir = root / NAME
        time.sleep(10)  # settle: the figure is the idle cluster's
        results["idle_rss_mib"] = round(rss_mib(state_dir), 1)
        kube = Kube.from_kubeconfig(state_dir / "kubeconfig", f"pytest-chaos-{NAME}")
        faults = NodeFaults(context(kube, root / "ledger"))
        print(json.dumps(results), file=sys.stderr, flush=True)
        stops = [bench_stop(kube, faults, f"stop-{i}") for i in range(args.rounds)]
        print(json.dumps(stops), file=sys.stderr, flush=True)
        results["stop"] = {k: summary([s[k] for s in stops]) for k in stops[0]}
        results["drain_30_pods_s"] = {
            how: round(bench_drain(kube, faults, how, state_dir / "kubeconfig"), 2)
            for how in ("ours", "kubectl")
        }
        kube.close()
    finally:
        cli(root, "down")
        shutil.rmtree(root, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
