"""The kind provider: kind's build (warm), engine detection, create -> Ready, idle RSS, delete.

(a) ``pytest-chaos cluster build --kind --kind-node-image`` (kind, kubeadm, CoreDNS and the node
    image) with all cached: the warm path every ``make test`` takes; the components' cold
    figures are their build stamps' ``seconds``; the image's cold build prints its own time.
(b) engine detection + finding kind: what every ``--chaos-cluster=kind`` session pays first.
(c) when the node image is present: ``KindClusterProvider.acquire`` (kind create, ``--wait``
    until the control plane is Ready) for 0 and ``--workers`` workers, the node containers'
    RSS after 30 s idle, and ``release`` (kind delete + host put back). Skipped, saying why,
    when the image is absent.

Usage: python benchmarks/kind.py [--workers 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.output import publish
from pytest_chaos.cluster import binaries, kind


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    return round(time.monotonic() - started, 2)


def _rss_kib_by_pid() -> tuple[dict[int, int], dict[int, int]]:
    """Every process's parent and resident set (KiB), from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = {
                k: v.split()
                for k, _, v in (
                    ln.partition(":") for ln in (proc / "status").read_text().splitlines()
                )
            }
        except OSError:
            continue
        pid = int(proc.name)
        parents[pid] = int(fields["PPid"][0])
        rss[pid] = int(fields["VmRSS"][0]) if "VmRSS" in fields else 0
    return parents, rss


def node_rss_mib(engine: str, name: str) -> float:
    """Sum of the RSS of every process in the cluster's node containers: each node's init and
    all its descendants (systemd, containerd, kubelet, the shims and the pods' processes)."""
    ids = subprocess.run(
        [engine, "ps", "-q", "--filter", f"label=io.x-k8s.kind.cluster={name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    parents, rss = _rss_kib_by_pid()
    tops = set()
    for container in ids:
        top = subprocess.run(
            [engine, "inspect", "-f", "{{.State.Pid}}", container],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        tops.add(int(top))

    def inside(pid: int) -> bool:
        while pid > 1:
            if pid in tops:
                return True
            pid = parents.get(pid, 0)
        return False

    return round(sum(kib for pid, kib in rss.items() if inside(pid)) / 1024, 1)


def create_delete(engine: str, workers: int) -> dict[str, Any]:
    name = f"bench-{secrets.token_hex(3)}"
    provider = kind.KindClusterProvider(name, workers, kind.DEFAULT_NODE_IMAGE, False)
    started = time.monotonic()
    provider.acquire()
    created = round(time.monotonic() - started, 1)
    time.sleep(30)  # idle: what the nodes hold once settled
    rss = node_rss_mib(engine, name)
    started = time.monotonic()
    provider.release()
    return {
        "nodes": workers + 1,
        "create_to_ready_s": created,
        "idle_rss_mib": rss,
        "delete_s": round(time.monotonic() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "pytest_chaos", "cluster", "build", "--kind", "--kind-node-image"]
    results: dict[str, Any] = {"warm_build_s": timed(cli)}
    for component in binaries.KIND_COMPONENTS:
        stamp = json.loads((binaries.component_dir(component) / ".complete.json").read_text())
        results[f"{component.name}_last_build_s"] = stamp["seconds"]
    started = time.monotonic()
    engine = kind.detect_engine()
    kind.find_kind()
    results["engine"] = engine
    results["detect_s"] = round(time.monotonic() - started, 2)
    if not kind.image_present(engine, kind.DEFAULT_NODE_IMAGE):
        results["clusters"] = f"skipped: {kind.DEFAULT_NODE_IMAGE} is not in {engine}"
    else:
        results["clusters"] = [create_delete(engine, n) for n in sorted({0, args.workers})]
    return publish(results, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
