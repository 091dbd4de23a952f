"""What each way of reaching a Service from the test process adds to a request, side by side.

On the embedded cluster with one real node (``cluster up --real-nodes 1 --nodes 0``, its own
name) a demo Deployment (2 replicas) behind a Service; then, interleaved round by round, one
request each way:

* ``cluster_ip``: ``http://<ClusterIP>/`` directly (the floor: kube-proxy's DNAT, nothing else);
* ``name``: ``http://web.<ns>.svc.cluster.local/`` through ``ServiceTransport`` to the ClusterIP
  (the embedded cluster's way; the lookup is cached 5 s);
* ``api_proxy``: the same URL through the API server's service proxy (kind's way).

Each request opens a new connection, as the HTTP monitor's do. Reported: median, p95 and max in
ms, and each way's median over the floor's.

Needs root and a host that can run real nodes. Usage:
    python benchmarks/service_urls.py [--requests 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.output import milliseconds, publish
from pytest_chaos.cluster.local import LocalCluster
from pytest_chaos.kube import Kube
from pytest_chaos.kube.service_proxy import ServiceTransport

NAME = "svcbench"
DEMO = "localhost/pytest-chaos/demo:1.0"


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pytest_chaos", "cluster", *args], check=True)


def deploy(kube: Kube, namespace: str) -> str:
    """The demo app (2 replicas) and its Service; the Service's ClusterIP once both are Ready."""
    labels = {"app": "web"}
    container = {
        "name": "web",
        "image": DEMO,
        "imagePullPolicy": "Never",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
    }
    kube.core.create_namespace({"metadata": {"name": namespace}})
    kube.apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        },
    )
    service = kube.core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    kube.wait(
        functools.partial(kube.apps.list_namespaced_deployment, namespace),
        lambda found: any((d.status.ready_replicas or 0) == 2 for d in found),
        within=120,
        what="2 ready web replicas",
    )
    return str(service.spec.cluster_ip)


def timed_get(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url, timeout=5)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cli("up", "--name", NAME, "--real-nodes", "1", "--nodes", "0")
    try:
        cluster = LocalCluster(NAME)
        kube = Kube.from_kubeconfig(cluster.kubeconfig, cluster.context)
        namespace = f"svcbench-{secrets.token_hex(3)}"
        cluster_ip = deploy(kube, namespace)
        name_url = f"http://web.{namespace}.svc.cluster.local/"
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        clients = {
            "cluster_ip": (httpx.Client(limits=no_keepalive), f"http://{cluster_ip}/"),
            "name": (
                httpx.Client(
                    transport=ServiceTransport(kube, through_api_server=False, limits=no_keepalive)
                ),
                name_url,
            ),
            "api_proxy": (
                httpx.Client(
                    transport=ServiceTransport(kube, through_api_server=True, limits=no_keepalive)
                ),
                name_url,
            ),
        }
        times: dict[str, list[float]] = {way: [] for way in clients}
        for client, url in clients.values():  # warm-up: connections, lookups, TLS
            timed_get(client, url)
        for _ in range(args.requests):
            for way, (client, url) in clients.items():
                times[way].append(timed_get(client, url))
        results: dict[str, Any] = {way: milliseconds(values) for way, values in times.items()}
        floor = results["cluster_ip"]["median_ms"]
        for way in ("name", "api_proxy"):
            results[way]["median_over_cluster_ip"] = round(results[way]["median_ms"] / floor, 2)
        for client, _ in clients.values():
            client.close()
    finally:
        cli("down", "--name", NAME)
    return publish(results, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
