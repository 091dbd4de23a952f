"""How much pytest-chaos adds to a pod-kill test, against the cluster's own recovery time.

Per round, on a 2-replica Deployment:
  * the floor: delete one pod with the bare client and watch until a replacement is Ready
    (what the cluster itself takes);
  * the test: ``chaos.pods.kill(...)`` then ``steady.deployment(...).assert_available(...)``,
    the way a user's test is written, timed end to end (ledger write, verification included).
The goal is test / floor <= 1.1: waiting by watch, not by sleeping. On the embedded cluster's
fake nodes a replacement is Ready in tens of milliseconds, so the fixed costs (a list, an fsync,
a watch) weigh far more than they would against a real pod's start-up; --ready-delay adds a
readiness delay to the fake nodes' pods (a kwok stage) to show the ratio at realistic times.
A third figure times the same test inside ``steady.deployment(...).monitor()`` (a watch thread
recording every change, started and stopped inside the timed part): what an object monitor costs.

Usage: python benchmarks/pod_kill.py [--rounds 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.output import publish
from pytest_chaos.chaos import ChaosSession
from pytest_chaos.cluster.local import LocalCluster
from pytest_chaos.faults import FaultContext
from pytest_chaos.faults.pods import PodFaults
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import Ledger, Owner, new_run_id
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings
from pytest_chaos.steady import Steady
from pytest_chaos.steady.diagnosis import pod_ready


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 4),
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
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


def floor_once(kube: Kube, namespace: str) -> float:
    pods = functools.partial(kube.core.list_namespaced_pod, namespace)
    current = kube.wait(
        pods,
        lambda items: sum(map(pod_ready, items)) == 2,
        within=60,
        what="2 ready",
        label_selector="app=web",
    )
    victim = next(p for p in current if pod_ready(p)).metadata
    started = time.perf_counter()
    kube.core.delete_namespaced_pod(victim.name, namespace)
    kube.wait(
        pods,
        lambda items: sum(pod_ready(p) for p in items if p.metadata.uid != victim.uid) == 2,
        within=60,
        what="replacement ready",
        label_selector="app=web",
    )
    return time.perf_counter() - started


def chaos_once(
    kube: Kube, namespace: str, ledger: Ledger, safety: Safety, *, monitored: bool = False
) -> float:
    steady = Steady(lambda: kube)
    web = steady.deployment("web", namespace=namespace)
    web.assert_available(within=60)
    ctx = FaultContext(
        kube=kube,
        ledger=ledger,
        safety=safety,
        rng=random.Random(1),
        timeline=Timeline("bench"),
        test="bench",
    )
    started = time.perf_counter()
    with web.monitor() if monitored else contextlib.nullcontext():
        PodFaults(ctx).kill("app=web", namespace=namespace)
        web.assert_available(within=60)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--ready-delay",
        type=float,
        default=0.0,
        help="seconds a fake node's pod takes to become Ready (kwok stage delay)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pytest-chaos-bench-") as root:
        cluster = LocalCluster("podkill", root=Path(root))
        result = cluster.up(pod_ready_delay=args.ready_delay)
        kube = Kube.from_kubeconfig(result.kubeconfig, result.context)
        try:
            namespace = "bench"
            kube.core.create_namespace({"metadata": {"name": namespace}})
            kube.wait(
                functools.partial(kube.core.list_namespaced_service_account, namespace),
                bool,
                within=30,
                what="service account",
            )
            kube.apps.create_namespaced_deployment(namespace, deployment(2))
            settings = Settings(
                cluster="existing",
                kubeconfig=None,
                context=None,
                local_name="podkill",
                local_nodes=3,
            )
            session = ChaosSession(kube, settings, run_id=new_run_id(), seed=1)
            ledger = Ledger(kube, Owner.current(session.run_id), directory=Path(root) / "ledger")
            floors, tests, monitored = [], [], []
            for _ in range(args.rounds):
                floors.append(floor_once(kube, namespace))
                tests.append(chaos_once(kube, namespace, ledger, session.safety))
                monitored.append(
                    chaos_once(kube, namespace, ledger, session.safety, monitored=True)
                )
            ratios = [t / f for t, f in zip(tests, floors, strict=True)]
        finally:
            kube.close()
            cluster.down()
    results = {
        "ready_delay_seconds": args.ready_delay,
        "floor_seconds": summary(floors),
        "test_seconds": summary(tests),
        "ratio_test_over_floor": summary(ratios),
        "ratio_of_medians": round(statistics.median(tests) / statistics.median(floors), 2),
        "monitored_test_seconds": summary(monitored),
        "monitor_overhead_of_medians_seconds": round(
            statistics.median(monitored) - statistics.median(tests), 4
        ),
    }
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
