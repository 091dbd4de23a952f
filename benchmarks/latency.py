"""chaos.network.latency on the real node: inject -> first delayed request, and back.

A 1-replica demo Deployment behind a Service on the real node; a client on this host sends a
request through the Service every 10 ms, each on a new connection, and records when it was sent
and how long it took. Per round, ``latency(delay)`` is called; reported: the call's duration
(until the fault is verified in place: netem applied, or the NFQUEUE delayer serving its rules),
call -> the first request *sent* that took at least the delay (the fault in effect), and, after
``revert()``, revert call -> the first request sent after which every request is fast again.
Also the mechanism used (``netem`` or ``nfqueue``) and the median request time under the fault.

Uses the local cluster whose real node runs here, or starts one (``cluster up --real-node
--name rnbench``) and stops it afterwards. Needs root. Usage:
    python benchmarks/latency.py [--rounds 5] [--delay 300] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

from benchmarks.output import publish
from benchmarks.real_node import (
    BENCH_CLUSTER,
    cli,
    current_pod,
    real_node_cluster,
    running_real_node,
    summary,
    workload,
)
from pytest_chaos.cluster.local import context_name, state_root
from pytest_chaos.faults import FaultContext
from pytest_chaos.faults.network import NetworkFaults
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import Ledger, Owner, new_run_id
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings

EVERY = 0.01


class Prober:
    """Requests through the Service every EVERY seconds: (sent, took) per answered request."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            sent = time.monotonic()
            with suppress(httpx.HTTPError):
                # A new client per request: a new connection, as the fault's first packets show.
                httpx.get(self.url, timeout=3)
                self.samples.append((sent, time.monotonic() - sent))
            self.stop.wait(max(0.0, EVERY - (time.monotonic() - sent)))

    def first_sent_after(self, moment: float, slow: bool, delay: float) -> float:
        """When the first request sent after moment was slow (>= delay) / from which all fast."""
        later = [(s, t) for s, t in list(self.samples) if s >= moment]
        if slow:
            return next((s for s, t in later if t >= delay), float("nan"))
        for index, (sent, _) in enumerate(later):
            if all(t < delay / 2 for _, t in later[index:]):
                return sent
        return float("nan")


def measure(kube: Kube, rounds: int, delay_ms: float) -> dict[str, Any]:
    settings = Settings(
        cluster="existing", kubeconfig=None, context=None, local_name="local", local_nodes=3
    )
    delay = delay_ms / 1000
    with tempfile.TemporaryDirectory() as ledger_dir, workload(kube) as (namespace, ip):
        ledger = Ledger(kube, Owner.current(new_run_id()), directory=Path(ledger_dir))
        ctx = FaultContext(
            kube=kube,
            ledger=ledger,
            safety=Safety(settings, kube.context),
            rng=random.Random(1),
            timeline=Timeline("bench"),
            test="benchmarks/latency.py",
        )
        current_pod(kube, namespace)
        url = f"http://{ip}/"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # kube-proxy routes the Service
            with suppress(httpx.HTTPError):
                httpx.get(url, timeout=1)
                break
            time.sleep(0.05)
        rows: dict[str, list[float]] = {
            "call_returns": [],
            "call_to_first_delayed_request": [],
            "median_request_under_fault": [],
            "revert_returns": [],
            "revert_to_all_fast": [],
        }
        mechanisms = set()
        prober = Prober(url)
        prober.thread.start()
        try:
            for _ in range(rounds):
                time.sleep(0.5)  # a calm stretch first
                started = time.monotonic()
                fault = NetworkFaults(ctx).latency(
                    "app=web", namespace=namespace, delay=f"{delay_ms:g}ms"
                )
                returned = time.monotonic()
                mechanisms |= set(fault.details["mechanism"].values())
                time.sleep(1.5)
                under = [t for s, t in list(prober.samples) if returned <= s]
                reverting = time.monotonic()
                fault.revert()
                reverted = time.monotonic()
                time.sleep(1.5)
                rows["call_returns"].append(returned - started)
                rows["call_to_first_delayed_request"].append(
                    prober.first_sent_after(started, True, delay) - started
                )
                rows["median_request_under_fault"].append(statistics.median(under))
                rows["revert_returns"].append(reverted - reverting)
                rows["revert_to_all_fast"].append(
                    prober.first_sent_after(reverting, False, delay) - reverting
                )
        finally:
            prober.stop.set()
            prober.thread.join(timeout=10)
    return {
        "delay_ms": delay_ms,
        "mechanism": sorted(mechanisms),
        **{name: summary(values) for name, values in rows.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--delay", type=float, default=300, help="milliseconds")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (a real node)", file=sys.stderr)
        return 2
    started_ours = False
    try:
        if running_real_node() is None:
            up = cli("up", "--real-node")
            if up.returncode != 0:
                print(up.stderr, file=sys.stderr)
                return 1
            started_ours = True
            state_dir = state_root() / BENCH_CLUSTER
        else:
            found = real_node_cluster()
            if found is None:
                print("a real node runs here but no local cluster owns it", file=sys.stderr)
                return 1
            state_dir = found
        kube = Kube.from_kubeconfig(state_dir / "kubeconfig", context_name(state_dir.name))
        try:
            results = measure(kube, args.rounds, args.delay)
        finally:
            kube.close()
    finally:
        if started_ours:
            with suppress(Exception):
                cli("down")
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
