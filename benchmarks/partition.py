"""chaos.network.partition on netns real nodes: inject -> first dropped connection, and back.

A demo server on ``real-node-0`` and a demo client on ``real-node-1`` of a cluster with two
netns real nodes (``cluster up --real-nodes 2 --nodes 0`` in a state directory of its own). A
prober inside the client's network namespace opens a new TCP connection to the server every
50 ms (connect timeout 0.3 s) and prints when each attempt started and how it ended
(``time.monotonic`` is the machine's CLOCK_MONOTONIC, the same in both processes). Per round:
``partition("app=server", peers="app=client")`` call -> the call returns -> the first attempt
that did not connect (dropped: it times out); ``revert()`` -> the first attempt after which
every attempt connects. Medians over the rounds.

Needs root and a host that can run real nodes. Usage:
    python benchmarks/partition.py [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.output import publish
from benchmarks.real_nodes import NAME, cli, context, summary
from pytest_chaos.faults.network import NetworkFaults
from pytest_chaos.kube import Kube

NS = "partition-bench"
PROBE = """
import socket, sys, time
ip = sys.argv[1]
while True:
    sent = time.monotonic()
    try:
        socket.create_connection((ip, 8080), timeout=0.3).close()
        result = "connected"
    except TimeoutError:
        result = "timed-out"
    except OSError as exc:
        result = type(exc).__name__
    print(f"{sent:.4f} {result}", flush=True)
    time.sleep(max(0.0, 0.05 - (time.monotonic() - sent)))
"""


def pod(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [{
            "name": "demo", "image": "localhost/pytest-chaos/demo:1.0",
            "imagePullPolicy": "Never",
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
        }]},
    }  # fmt: skip


def ready(kube: Kube, name: str) -> Any:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = kube.core.read_namespaced_pod(name, NS)
        statuses = found.status.container_statuses or []
        if statuses and statuses[0].ready and found.status.pod_ip:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"pod {name} not Ready")


def pid_of(container_id: str) -> int:
    container = container_id.split("://", 1)[1]
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and container in (entry / "cgroup").read_text():
                return int(entry.name)
        except OSError:
            continue
    raise LookupError(container)


class Prober:
    """The prober process in the client's netns and the (sent, result) lines it printed."""

    def __init__(self, pid: int, ip: str) -> None:
        argv = ["nsenter", f"--net=/proc/{pid}/ns/net", "--", sys.executable, "-c", PROBE, ip]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.samples: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            sent, result = line.split()
            self.samples.append((float(sent), result))

    def first_failed_after(self, moment: float) -> float:
        return next((s for s, r in list(self.samples) if s >= moment and r != "connected"), 0.0)

    def all_connected_from(self, moment: float) -> float:
        later = [(s, r) for s, r in list(self.samples) if s >= moment]
        for index, (sent, _) in enumerate(later):
            if all(r == "connected" for _, r in later[index:]):
                return sent
        return float("nan")


def measure(kube: Kube, rounds: int, ledger_dir: Path) -> dict[str, Any]:
    kube.core.create_namespace({"metadata": {"name": NS}})
    kube.core.create_namespaced_pod(NS, pod("server", "real-node-0"))
    kube.core.create_namespaced_pod(NS, pod("client", "real-node-1"))
    server, client = ready(kube, "server"), ready(kube, "client")
    prober = Prober(pid_of(client.status.container_statuses[0].container_id), server.status.pod_ip)
    faults = NetworkFaults(context(kube, ledger_dir))
    rows: dict[str, list[float]] = {
        "call_returns": [],
        "call_to_first_dropped": [],
        "revert_returns": [],
        "revert_to_all_connected": [],
    }
    results: set[str] = set()
    try:
        for _ in range(rounds):
            time.sleep(1.0)  # calm: every attempt connects
            started = time.monotonic()
            fault = faults.partition("app=server", namespace=NS, peers="app=client")
            returned = time.monotonic()
            time.sleep(2.0)
            results |= {r for s, r in list(prober.samples) if s >= returned + 0.5}
            reverting = time.monotonic()
            fault.revert()
            reverted = time.monotonic()
            time.sleep(2.0)
            rows["call_returns"].append(returned - started)
            rows["call_to_first_dropped"].append(prober.first_failed_after(started) - started)
            rows["revert_returns"].append(reverted - reverting)
            rows["revert_to_all_connected"].append(prober.all_connected_from(reverting) - reverting)
    finally:
        prober.proc.terminate()
        prober.proc.wait(timeout=10)
    return {
        "attempts_under_partition": sorted(results),
        **{name: summary(values) for name, values in rows.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (real nodes)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="pc-"))
    os.environ["PYTEST_CHAOS_STATE_DIR"] = str(root)
    try:
        up = cli(root, "up", "--real-nodes", "2", "--nodes", "0")
        if up.returncode != 0:
            print(up.stderr, file=sys.stderr)
            return 1
        state_dir = root / NAME
        kube = Kube.from_kubeconfig(state_dir / "kubeconfig", f"pytest-chaos-{NAME}")
        try:
            results = measure(kube, args.rounds, root / "ledger")
        finally:
            kube.close()
    finally:
        cli(root, "down")
        shutil.rmtree(root, ignore_errors=True)
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
