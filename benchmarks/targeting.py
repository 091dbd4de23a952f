"""Benchmark of target selection over a large namespace (no cluster needed).

Builds synthetic pods shaped like the API's JSON (10,000 by default, spread over 1,000 nodes,
labelled app, pod-template-hash, tier and zone) and measures, several rounds each:
  * filter_and_choose: ``PodFilter(label_selector="app=web-7,tier in (front, back)",
    phase="Running").apply(pods)`` then ``choose(..., "fixed-percent", 50, Random(1))``;
  * json_loads_filter_and_choose: the same, starting from the raw list response
    (``{"items": [...]}`` as a JSON string), since callers list pods raw.

Usage: python benchmarks/targeting.py [--rounds 7] [--pods 10000] [--nodes 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.output import publish
from pytest_chaos.targeting import PodFilter, choose

SELECTOR = "app=web-7,tier in (front, back)"
APPS = 50
TIERS = ("front", "back", "db", "cache")
ZONES = ("a", "b", "c")
PHASES = ("Running",) * 17 + ("Pending", "Succeeded", "Failed")


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 4),
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def synthetic_pods(count: int, nodes: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    pods = []
    for index in range(count):
        app = f"web-{index % APPS}"
        template_hash = f"{rng.getrandbits(40):010x}"
        name = f"{app}-{template_hash}-{rng.getrandbits(24):06x}"
        zone = ZONES[index % len(ZONES)]
        labels = {
            "app": app,
            "pod-template-hash": template_hash,
            "tier": TIERS[rng.randrange(len(TIERS))],
            "zone": zone,
        }
        metadata: dict[str, Any] = {
            "name": name,
            "generateName": f"{app}-{template_hash}-",
            "namespace": "shop",
            "uid": f"{rng.getrandbits(128):032x}",
            "resourceVersion": str(100000 + index),
            "creationTimestamp": "2025-06-01T12:00:00Z",
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{app}-{template_hash}",
                    "uid": f"{rng.getrandbits(128):032x}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if rng.random() < 0.02:
            metadata["deletionTimestamp"] = "2025-06-01T12:05:00Z"
        pods.append(
            {
                "metadata": metadata,
                "spec": {
                    "nodeName": f"node-{index % nodes:04d}",
                    "containers": [
                        {
                            "name": "app",
                            "image": f"registry.example.com/shop/{app}:1.4.2",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                        }
                    ],
                    "restartPolicy": "Always",
                    "serviceAccountName": "default",
                },
                "status": {
                    "phase": PHASES[rng.randrange(len(PHASES))],
                    "podIP": f"10.{index // 65536}.{index // 256 % 256}.{index % 256}",
                    "hostIP": f"192.168.{index % nodes // 256}.{index % nodes % 256}",
                    "conditions": [
                        {"type": "Ready", "status": "True"},
                        {"type": "PodScheduled", "status": "True"},
                    ],
                    "topologyZone": zone,
                },
            }
        )
    return pods


def name_of(pod: Mapping[str, Any]) -> str:
    return str(pod["metadata"]["name"])


def filter_and_choose(pods: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
    candidates = PodFilter(label_selector=SELECTOR, phase="Running").apply(pods)
    return choose(candidates, "fixed-percent", 50, random.Random(1), key=name_of)


def from_json(raw: str) -> list[Mapping[str, Any]]:
    return filter_and_choose(json.loads(raw)["items"])


def timed(function: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pods = synthetic_pods(args.pods, args.nodes)
    raw = json.dumps({"apiVersion": "v1", "kind": "PodList", "items": pods})
    candidates = PodFilter(label_selector=SELECTOR, phase="Running").apply(pods)
    chosen = filter_and_choose(pods)
    if from_json(raw) != chosen:
        print("the JSON round trip chose differently", file=sys.stderr)
        return 1
    results: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "pods": args.pods,
        "nodes": args.nodes,
        "json_mib": round(len(raw.encode()) / 2**20, 1),
        "selector": SELECTOR,
        "candidates": len(candidates),
        "chosen": len(chosen),
        "filter_and_choose_seconds": summary(timed(lambda: filter_and_choose(pods), args.rounds)),
        "json_loads_filter_and_choose_seconds": summary(timed(lambda: from_json(raw), args.rounds)),
    }
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
