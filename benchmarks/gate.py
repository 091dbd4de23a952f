"""The per-PR gate's wall time: ``examples/ci/gate.sh`` end to end on a warm machine.

Warm: the cluster's binaries and node images are cached (``make deps`` ran), so a round is what
a CI job on a kept runner pays: cluster up with 3 real nodes, go build of the app, podman build
and save (fresh podman storage each round, as the script does), load-image into 3 nodes,
kubectl apply and wait, ``pytest -m chaos examples/test_go_demo_8.py``, cluster down. Each round
also records the suite's own time (pytest's junit XML) and its pass count.

Needs root and a host that can run real nodes. Usage:
    python benchmarks/gate.py [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from benchmarks.output import publish

GATE = Path(__file__).resolve().parents[1] / "examples" / "ci" / "gate.sh"


def one_round(root: Path) -> dict[str, Any]:
    out = root / "results"
    env = {
        **os.environ,
        "PYTEST_CHAOS_STATE_DIR": str(root / "clusters"),
        "GATE_CLUSTER": "gate-bench",
        "GATE_OUT": str(out),
    }
    started = time.monotonic()
    run = subprocess.run(["bash", str(GATE)], env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    return {
        "wall_s": round(wall, 1),
        "suite_s": round(float(suite.get("time", "0")), 1),
        "tests": int(suite.get("tests", "0")),
        "failures": int(suite.get("failures", "0")) + int(suite.get("errors", "0")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="pcb-") as tmp:
            rounds.append(one_round(Path(tmp)))
            print(rounds[-1], file=sys.stderr, flush=True)
    walls = [r["wall_s"] for r in rounds]
    results = {
        "gate_wall_s": {"min": min(walls), "median": statistics.median(walls), "max": max(walls)},
        "rounds": rounds,
    }
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
