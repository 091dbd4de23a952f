"""What a target lease costs: the wait it adds when the target is free, and a hand-over's delay.

On the running embedded cluster (``pytest-chaos cluster up``; the tests keep one running), in a
namespace of its own, per round on a 2-replica Deployment:
  * take + release of a free target's Lease alone (what every fault on an existing object adds:
    a read, a create or an update, a local ledger line; then an update and a ledger line);
  * a whole ``deployments.scale`` + revert, leases included, for scale;
  * a hand-over: run B's scale waits for run A's; timed from the start of A's revert to B's
    fault injected, beside A's revert alone: the difference is what the hand-over adds (B sees
    the release by watch, then reads the target again and injects).

Usage: python benchmarks/leases.py [--rounds 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.output import publish
from pytest_chaos.cluster.local import LocalCluster
from pytest_chaos.faults import Fault, FaultContext, journal_verbs
from pytest_chaos.faults.deployments import WorkloadFaults
from pytest_chaos.faults.leases import LeaseTarget
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import Ledger, Owner, new_run_id
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min_ms": round(min(values) * 1000, 1),
        "median_ms": round(statistics.median(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "n": len(values),
    }


def deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "example/web:1"}]},
            },
        },
    }


class Run:
    """One run's chaos (own run id, ledger and lease keeper), with journaled (waiting) verbs."""

    def __init__(self, kube: Kube, root: Path, safety: Safety) -> None:
        run = new_run_id() + secrets.token_hex(2)
        self.ctx = FaultContext(
            kube=kube,
            ledger=Ledger(kube, Owner.current(run), directory=root / run),
            safety=safety,
            rng=random.Random(1),
            timeline=Timeline(f"bench-{run}"),
            test=f"bench-{run}",
            lease_wait=60,
        )
        self.deployments = WorkloadFaults(self.ctx, "Deployment")
        journal_verbs(self)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cluster = LocalCluster("local")
    if not cluster.status().running:
        print("the local cluster is not running: pytest-chaos cluster up", file=sys.stderr)
        return 2
    kube = Kube.from_kubeconfig(cluster.kubeconfig, cluster.context)
    namespace = f"bench-leases-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": namespace}})
    takes, releases, faults, reverts, handovers = [], [], [], [], []
    try:
        kube.wait(
            functools.partial(kube.core.list_namespaced_service_account, namespace),
            bool,
            within=30,
            what="service account",
        )
        kube.apps.create_namespaced_deployment(namespace, deployment(2))
        settings = Settings(
            cluster="existing", kubeconfig=None, context=None, local_name="local", local_nodes=3
        )
        safety = Safety(settings, kube.context)
        with tempfile.TemporaryDirectory(prefix="pytest-chaos-bench-") as root:
            a, b = Run(kube, Path(root), safety), Run(kube, Path(root), safety)
            target = LeaseTarget("Deployment", namespace, "web")
            for round_ in range(args.rounds):
                started = time.perf_counter()
                a.ctx.leases.take(target, record_id=f"r{round_}", fault="bench", test="bench")
                taken = time.perf_counter()
                a.ctx.leases.release(f"r{round_}")
                takes.append(taken - started)
                releases.append(time.perf_counter() - taken)

                started = time.perf_counter()
                fault = a.deployments.scale("web", namespace=namespace, replicas=3)
                fault.revert()
                faults.append(time.perf_counter() - started)

                first = a.deployments.scale("web", namespace=namespace, replicas=3)
                started = time.perf_counter()
                first.revert()
                reverts.append(time.perf_counter() - started)

                first = a.deployments.scale("web", namespace=namespace, replicas=3)
                handed: dict[str, Any] = {}

                def second(into: dict[str, Any] = handed) -> None:
                    into["fault"] = b.deployments.scale("web", namespace=namespace, replicas=1)
                    into["at"] = time.perf_counter()

                thread = threading.Thread(target=second)
                thread.start()
                deadline = time.monotonic() + 30
                while not any(e.phase == "lease" for e in b.ctx.timeline.events[-3:]):
                    if time.monotonic() > deadline:
                        raise RuntimeError("run B never waited for run A's lease")
                    time.sleep(0.01)
                started = time.perf_counter()
                first.revert()
                thread.join(timeout=60)
                handovers.append(handed["at"] - started)
                second_fault: Fault = handed["fault"]
                assert second_fault.details["from"] == 2, second_fault.details
                second_fault.revert()
                b.ctx.timeline.events.clear()
    finally:
        kube.core.delete_namespace(namespace)
        kube.close()
    results = {
        "lease_take_free": summary(takes),
        "lease_release": summary(releases),
        "scale_and_revert_with_leases": summary(faults),
        "revert_alone": summary(reverts),
        "revert_then_hand_over_to_a_waiting_run": summary(handovers),
        "hand_over_adds_median_ms": round(
            (statistics.median(handovers) - statistics.median(reverts)) * 1000, 1
        ),
    }
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
