"""What an object monitor costs a test: the same pod-kill test with and without one, side by side.

Per round, on a 2-replica Deployment of the embedded cluster's fake nodes (alternating, so both
see the same cluster): ``chaos.pods.kill`` then ``assert_available(within=60)``, timed end to end,
once bare and once inside ``steady.deployment(...).monitor()`` (a watch thread recording every
change of the Deployment and its pods). The monitor's start (its list and first reading) and
stop (joining the watch thread) are inside the timed part, as in a user's test.

Usage: python benchmarks/object_monitor.py [--rounds 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def kill_once(
    kube: Kube, namespace: str, ledger: Ledger, safety: Safety, *, monitored: bool
) -> tuple[float, int]:
    """Seconds for kill + recovery, and how many readings the monitor took (0 when bare)."""
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
    with web.monitor() if monitored else contextlib.nullcontext() as monitor:
        PodFaults(ctx).kill("app=web", namespace=namespace)
        web.assert_available(within=60)
    took = time.perf_counter() - started
    return took, len(monitor.readings) if monitor is not None else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pytest-chaos-bench-") as root:
        cluster = LocalCluster("objmonitor", root=Path(root))
        result = cluster.up()
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
                local_name="objmonitor",
                local_nodes=3,
            )
            session = ChaosSession(kube, settings, run_id=new_run_id(), seed=1)
            ledger = Ledger(kube, Owner.current(session.run_id), directory=Path(root) / "ledger")
            bare, monitored, readings = [], [], []
            for _ in range(args.rounds):
                bare.append(kill_once(kube, namespace, ledger, session.safety, monitored=False)[0])
                took, count = kill_once(kube, namespace, ledger, session.safety, monitored=True)
                monitored.append(took)
                readings.append(count)
        finally:
            kube.close()
            cluster.down()
    results = {
        "bare_seconds": summary(bare),
        "monitored_seconds": summary(monitored),
        "readings_per_test": summary([float(r) for r in readings]),
        "overhead_of_medians_seconds": round(
            statistics.median(monitored) - statistics.median(bare), 4
        ),
        "ratio_of_medians": round(statistics.median(monitored) / statistics.median(bare), 2),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
