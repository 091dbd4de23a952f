"""The Measure of target leases: ``pytest -n 4`` over 40 tests that fault 5 shared Deployments.

Before leases, two workers scaling one Deployment stacked their faults: the second read the
first one's replicas as "before", drift errors followed, and the Deployment ended at the wrong
size. Here every inner test scales or kills one of five shared Deployments and, while its fault
is active, checks that nobody else changed the target; it logs when its fault window opened and
closed. Required: 40 passed, no error, no drift, no revert failure or leftover, no two windows
on one target overlapping, and every Deployment exactly as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

from pytest_chaos import Kube
from tests.e2e.manifests import namespace_with

TARGETS = {"t0": 2, "t1": 3, "t2": 2, "t3": 1, "t4": 2}
TESTS = 40

INNER = """
import json
import os
import time

import pytest

NS = {ns!r}
ORIGINAL = {targets!r}
LOG = {log!r}


def replicas(kube, name):
    return kube.apps.read_namespaced_deployment(name, NS).spec.replicas


@pytest.mark.parametrize("i", range({tests}))
def test_shared_target(chaos, kube, i):
    name = f"t{{i % 5}}"
    original = ORIGINAL[name]
    if i % 2 == 0:
        wanted = original + 1 + i % 3
        fault = chaos.deployments.scale(name, namespace=NS, replicas=wanted)
        assert fault.details["from"] == original, "stacked on another test's scale"
    else:
        wanted = original
        fault = chaos.pods.kill(f"app={{name}}", namespace=NS)
    opened = time.time()
    for _ in range(3):  # the fault is held for a while; nobody else may touch the target
        assert replicas(kube, name) == wanted, "another fault changed the target"
        time.sleep(0.1)
    closed = time.time()
    fault.revert()
    line = {{"target": name, "test": i, "opened": opened, "closed": closed,
             "worker": os.environ.get("PYTEST_XDIST_WORKER")}}
    with open(LOG, "a") as out:
        out.write(json.dumps(line) + "\\n")
"""


def test_four_workers_over_five_shared_targets_never_stack_faults(
    kube: Kube, tmp_path: Path
) -> None:
    with namespace_with(kube, "shared", TARGETS) as namespace:
        before = {
            name: kube.serialize(kube.apps.read_namespaced_deployment(name, namespace))["spec"]
            for name in TARGETS
        }
        log = tmp_path / "windows.jsonl"
        test_file = tmp_path / "test_shared.py"
        test_file.write_text(INNER.format(ns=namespace, targets=TARGETS, log=str(log), tests=TESTS))
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(test_file),
                "-n",
                "4",
                "-p",
                "no:cacheprovider",
                "-q",
                "--chaos-cluster=existing",
                f"--chaos-kubeconfig={kube.kubeconfig}",
                f"--chaos-context={kube.context}",
            ],
            cwd=tmp_path,
            env={**os.environ, "PYTEST_CHAOS_LEDGER_DIR": str(tmp_path / "ledger")},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert f"{TESTS} passed" in output, output
        assert "error" not in output.split("chaos summary")[0].lower(), output
        assert "Drift" not in output
        assert "revert failures: 0, leftovers: 0" in output, output

        windows: dict[str, list[tuple[float, float, int, str]]] = defaultdict(list)
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            windows[entry["target"]].append(
                (entry["opened"], entry["closed"], entry["test"], entry["worker"])
            )
        assert sum(map(len, windows.values())) == TESTS
        workers = {w for spans in windows.values() for *_, w in spans}
        assert len(workers) == 4, workers  # really parallel
        for target, spans in windows.items():
            spans.sort()
            for (_, closed, first, _w1), (opened, _, second, _w2) in pairwise(spans):
                assert closed <= opened, f"{target}: tests {first} and {second} overlapped"

        after = {
            name: kube.serialize(kube.apps.read_namespaced_deployment(name, namespace))["spec"]
            for name in TARGETS
        }
        assert after == before
