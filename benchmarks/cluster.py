"""Benchmarks of the embedded local cluster (figures go to docs/benchmarks.md).

Measures, on this machine:
  * warm ``up`` to ready: binaries cached, a fresh cluster each round (new state directory);
  * resident memory of the idle cluster (sum of every component's RSS after it settles);
  * the cluster's own recovery time: pod deletion to replacement Ready, for a 2-replica
    Deployment (the floor every pod-kill test is measured against);
  * with --cold-build: the build of every binary from an empty Go build cache (many minutes).

Usage: python benchmarks/cluster.py [--rounds 5] [--kills 10] [--cold-build] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.output import publish
from pytest_chaos.cluster import binaries
from pytest_chaos.cluster.local import LocalCluster
from pytest_chaos.kube import Kube


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def ready(pod: Any) -> bool:
    return (
        pod.metadata.deletion_timestamp is None
        and pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    )


def replaced(items: list[Any], uid: str) -> bool:
    return sum(map(ready, items)) == 2 and all(p.metadata.uid != uid for p in items if ready(p))


def pod_recovery_seconds(kube: Kube, kills: int) -> list[float]:
    namespace = "bench-recovery"
    kube.core.create_namespace({"metadata": {"name": namespace}})
    kube.wait(
        functools.partial(kube.core.list_namespaced_service_account, namespace),
        lambda accounts: bool(accounts),
        within=30,
        what="default service account",
    )
    labels = {"app": "web"}
    kube.apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "example/web:1"}]},
                },
            },
        },
    )
    pods = functools.partial(kube.core.list_namespaced_pod, namespace)
    times = []
    for _ in range(kills):
        current = kube.wait(
            pods,
            lambda items: sum(map(ready, items)) == 2,
            within=60,
            what="2 ready",
            label_selector="app=web",
        )
        victim = next(p for p in current if ready(p))
        started = time.perf_counter()
        kube.core.delete_namespaced_pod(victim.metadata.name, namespace)
        kube.wait(
            pods,
            functools.partial(replaced, uid=victim.metadata.uid),
            within=60,
            what="replacement ready",
            label_selector="app=web",
        )
        times.append(time.perf_counter() - started)
    return times


def warm_rounds(rounds: int, kills: int) -> dict[str, Any]:
    up_times: list[float] = []
    memory: list[float] = []
    recovery: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pytest-chaos-bench-") as root:
        for index in range(rounds):
            cluster = LocalCluster(f"bench{index}", root=Path(root))
            started = time.perf_counter()
            result = cluster.up()
            up_times.append(time.perf_counter() - started)
            try:
                status = cluster.status()
                pids = [c.pid for c in status.components]
                kube = Kube.from_kubeconfig(result.kubeconfig, result.context)
                try:
                    if index == 0:
                        recovery = pod_recovery_seconds(kube, kills)
                    # "Idle" is defined by time: nothing to watch for, so the one honest sleep.
                    time.sleep(10)
                    memory.append(rss_mib(pids))
                finally:
                    kube.close()
            finally:
                cluster.down()
            figures = f"up {up_times[-1]:.2f}s, idle RSS {memory[-1]:.0f} MiB"
            print(f"round {index + 1}/{rounds}: {figures}", file=sys.stderr)
    return {
        "warm_up_seconds": summary(up_times),
        "idle_rss_mib": summary(memory),
        "pod_delete_to_replacement_ready_seconds": summary(recovery),
    }


def cold_build() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pytest-chaos-cold-") as scratch:
        os.environ["PYTEST_CHAOS_CACHE_DIR"] = str(Path(scratch) / "cache")
        os.environ["GOCACHE"] = str(Path(scratch) / "gocache")
        figures = {}
        for component in binaries.COMPONENTS:
            started = time.perf_counter()
            binaries.build(component, progress=lambda m: print(m, file=sys.stderr))
            figures[component.name] = round(time.perf_counter() - started, 1)
        return {"cold_build_seconds": figures, "cold_build_total_seconds": sum(figures.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--cold-build", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    if args.cold_build:
        results.update(cold_build())
    else:
        results.update(warm_rounds(args.rounds, args.kills))
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
