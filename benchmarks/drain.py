"""How long ``chaos.nodes.drain`` takes to empty a full node, against ``kubectl drain``.

Per round, on the embedded local cluster (the shared one, started if needed): a fresh kwok node
(tainted and labelled so no other pod lands there) runs one Deployment of --pods replicas (110,
the kubelet's default pod limit); then either

* ours: ``NodeFaults.drain(name=<node>, delete_emptydir_data=True)`` as a test calls it (undo
  record, cordon, concurrent evictions, a watch until every pod is gone), timed until it returns;
* kubectl: ``kubectl drain <node> --ignore-daemonsets --delete-emptydir-data --force``, timed
  until it exits (it evicts every pod concurrently and polls each one's deletion every second).

Rounds alternate, each on a fresh node and namespace. The evicted pods cannot be re-scheduled
(they are pinned to the node), so the controllers' replacements do not race the measurement.
The goal: ours is no slower than kubectl (ratio <= 1).

Usage, from the repository root:
    python -m benchmarks.drain [--rounds 3] [--pods 110] [--concurrency 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from examples.nodes import NodePool, node_manifest, remove_pool
from pytest_chaos.cluster import LocalClusterProvider
from pytest_chaos.cluster.binaries import cache_root
from pytest_chaos.faults import FaultContext
from pytest_chaos.faults.nodes import NodeFaults
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import Ledger, Owner, new_run_id
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings
from pytest_chaos.steady.diagnosis import pod_ready


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def kubectl() -> Path:
    found = sorted(cache_root().glob("kubernetes-v*/kubectl"))
    if not found:
        raise SystemExit("kubectl not found in the binary cache: run `pytest-chaos cluster build`")
    return found[-1]


def full_node(kube: Kube, pods: int) -> tuple[NodePool, str]:
    """A fresh Ready node running `pods` Ready pods of one Deployment, in a fresh namespace."""
    pool = NodePool(kube, f"drain-{secrets.token_hex(3)}")
    name = f"{pool.id}-0"
    manifest: Any = node_manifest(name, pool.id, kubelet_version=kube.server_version())
    for field in ("capacity", "allocatable"):  # room for the pods, whatever else tolerates all
        manifest["status"][field]["pods"] = str(pods + 20)
    kube.core.create_node(manifest)
    pool.nodes.append(name)
    pool.wait_ready()
    namespace = pool.id
    kube.core.create_namespace({"metadata": {"name": namespace}})
    kube.wait(
        functools.partial(kube.core.list_namespaced_service_account, namespace),
        bool,
        within=60,
        what="service account",
    )
    kube.apps.create_namespaced_deployment(namespace, pool.deployment("web", replicas=pods))
    kube.wait(
        functools.partial(kube.core.list_namespaced_pod, namespace),
        lambda items: sum(map(pod_ready, items)) == pods,
        within=300,
        what=f"{pods} pods ready",
    )
    return pool, namespace


def ours(kube: Kube, node: str, ledger: Ledger, safety: Safety, concurrency: int) -> float:
    ctx = FaultContext(
        kube=kube,
        ledger=ledger,
        safety=safety,
        rng=random.Random(1),
        timeline=Timeline("bench"),
        test="bench",
    )
    started = time.perf_counter()
    fault = NodeFaults(ctx).drain(
        node, timeout="300s", delete_emptydir_data=True, concurrency=concurrency
    )
    seconds = time.perf_counter() - started
    fault.revert()
    return seconds


def theirs(kube: Kube, node: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            str(kubectl()),
            f"--kubeconfig={kube.kubeconfig}",
            f"--context={kube.context}",
            "drain",
            node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--force",
            "--timeout=300s",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pods", type=int, default=110)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    provider = LocalClusterProvider("local", 3)
    handle = provider.acquire()
    kube = Kube.from_kubeconfig(handle.kubeconfig, handle.context)
    settings = Settings(
        cluster="existing", kubeconfig=None, context=None, local_name="local", local_nodes=3
    )
    results: dict[str, list[float]] = {"ours": [], "kubectl": []}
    try:
        with tempfile.TemporaryDirectory(prefix="pytest-chaos-bench-") as root:
            ledger = Ledger(kube, Owner.current(new_run_id()), directory=Path(root))
            safety = Safety(settings, kube.context)
            for _ in range(args.rounds):
                for who in ("ours", "kubectl"):
                    pool, namespace = full_node(kube, args.pods)
                    try:
                        node = pool.nodes[0]
                        if who == "ours":
                            seconds = ours(kube, node, ledger, safety, args.concurrency)
                        else:
                            seconds = theirs(kube, node)
                        results[who].append(seconds)
                        print(f"{who}: {seconds:.3f}s", file=sys.stderr)
                    finally:
                        kube.core.delete_namespace(namespace)
                        remove_pool(kube, pool)
    finally:
        kube.close()
        provider.release()
    report = {
        "pods": args.pods,
        "concurrency": args.concurrency,
        "ours_seconds": summary(results["ours"]),
        "kubectl_seconds": summary(results["kubectl"]),
        "ratio_of_medians": round(
            statistics.median(results["ours"]) / statistics.median(results["kubectl"]), 2
        ),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
