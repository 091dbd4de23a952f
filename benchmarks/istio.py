"""How long an Istio fault takes to inject and to revert, through the API server.

Per repetition, on the book's go-demo-8 VirtualService (one route, to subset primary):
  * inject: ``chaos.istio.abort(...)`` from call to return. The verb returns only once the fault
    is verified, i.e. read back from the API server as stored (accepted by Istio's schema), so
    this is the inject-to-effective latency as far as the API is concerned (Envoy's own
    propagation, typically a second, is not part of it: no Envoy runs on the local cluster).
    It includes API discovery, the VirtualService list, the undo record (local fsync and a
    ConfigMap), the JSON patch and the read-back.
  * revert: ``fault.revert()``: re-read, conflict check, JSON patch, record deletion.
Three variants: an abort merged into the route, a header-scoped delay (an inserted route), and
an abort on a host without VirtualService (one created, then deleted). Goal: median and p95
under 200 ms each on the local cluster.

Usage: python benchmarks/istio.py [--repetitions 20] [--kubeconfig FILE [--context NAME]]
       [--json FILE]
Without --kubeconfig a throw-away local cluster is started (and stopped) for the run.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.output import milliseconds, publish
from pytest_chaos.faults import Fault, FaultContext
from pytest_chaos.faults.istio import IstioFaults
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import Ledger, Owner, new_run_id
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings

GROUP, PLURAL = "networking.istio.io", "virtualservices"


def service(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def go_demo_8_virtual_service() -> dict[str, Any]:
    destination = {"host": "go-demo-8", "subset": "primary", "port": {"number": 80}}
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "VirtualService",
        "metadata": {"name": "go-demo-8"},
        "spec": {"hosts": ["go-demo-8"], "http": [{"route": [{"destination": destination}]}]},
    }


def prepare(kube: Kube, namespace: str) -> None:
    kube.core.create_namespace({"metadata": {"name": namespace}})
    kube.core.create_namespaced_service(namespace, service("go-demo-8"))
    kube.core.create_namespaced_service(namespace, service("db"))
    kube.custom.create_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, go_demo_8_virtual_service()
    )


def measure(
    repetitions: int, make: Callable[[], IstioFaults], inject: Callable[[IstioFaults], Fault]
) -> dict[str, dict[str, float]]:
    injects, reverts = [], []
    for _ in range(repetitions):
        faults = make()  # a fresh chaos.istio per repetition, as each test gets
        started = time.perf_counter()
        fault = inject(faults)
        injected = time.perf_counter()
        fault.revert()
        reverted = time.perf_counter()
        injects.append(injected - started)
        reverts.append(reverted - injected)
    return {"inject": milliseconds(injects), "revert": milliseconds(reverts)}


def run(kube: Kube, repetitions: int, ledger_dir: Path) -> dict[str, Any]:
    namespace = f"istio-bench-{secrets.token_hex(3)}"
    settings = Settings(
        cluster="existing", kubeconfig=None, context=None, local_name="local", local_nodes=3
    )
    ledger = Ledger(kube, Owner.current(new_run_id()), directory=ledger_dir)
    safety = Safety(settings, kube.context)

    def make() -> IstioFaults:
        ctx = FaultContext(
            kube=kube,
            ledger=ledger,
            safety=safety,
            rng=random.Random(1),
            timeline=Timeline("bench"),
            test="benchmarks/istio.py",
        )
        return IstioFaults(ctx)

    prepare(kube, namespace)
    try:
        before = json.dumps(
            kube.custom.get_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "go-demo-8")[
                "spec"
            ]
        )
        results = {
            "abort (merged into the route)": measure(
                repetitions,
                make,
                functools.partial(
                    IstioFaults.abort, host="go-demo-8", namespace=namespace, percent=50
                ),
            ),
            "delay with header (inserted route)": measure(
                repetitions,
                make,
                functools.partial(
                    IstioFaults.delay,
                    host="go-demo-8",
                    namespace=namespace,
                    delay="15s",
                    header="x-chaos=on",
                ),
            ),
            "abort without VirtualService (created, deleted)": measure(
                repetitions,
                make,
                functools.partial(IstioFaults.abort, host="db", namespace=namespace),
            ),
        }
        after = json.dumps(
            kube.custom.get_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "go-demo-8")[
                "spec"
            ]
        )
        assert after == before, "a revert did not restore the VirtualService exactly"
    finally:
        kube.core.delete_namespace(namespace)
    return {"repetitions": repetitions, "server": kube.server_version(), "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--kubeconfig", type=Path, help="an existing cluster with Istio's CRDs")
    parser.add_argument("--context")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pytest-chaos-bench-") as root:
        if args.kubeconfig:
            kube = Kube.from_kubeconfig(args.kubeconfig, args.context)
            try:
                results = run(kube, args.repetitions, Path(root) / "ledger")
            finally:
                kube.close()
        else:
            from pytest_chaos.cluster.local import LocalCluster

            cluster = LocalCluster("istiobench", root=Path(root))
            started = cluster.up()
            kube = Kube.from_kubeconfig(started.kubeconfig, started.context)
            try:
                results = run(kube, args.repetitions, Path(root) / "ledger")
            finally:
                kube.close()
                cluster.down()
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
