"""How long an Istio fault takes to reach real requests through the gateway, and its cost.

On a throw-away local cluster started with Istio (istiod + the host ingress gateway, one fake
node), a Gateway and a VirtualService route the gateway to an HTTP server of this process (a
ServiceEntry). A client thread sends requests back to back through the gateway all the time.
Per round:
  * inject -> first aborted request: from calling ``chaos.istio.abort(percent=100)`` to the
    first 500 the client sees (istiod's debounce and the xDS push included);
  * revert -> first clean request: from calling ``fault.revert()`` to the first 200;
  * the verbs' own durations (they return once Envoy's config_dump carries / dropped the fault).
Then the RSS of istiod, pilot-agent and Envoy. Goal (issue 17): <= 1 s each.

Usage: python benchmarks/istio_data_plane.py [--rounds 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.server
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.output import milliseconds, publish
from pytest_chaos.cluster.local import LocalCluster
from pytest_chaos.faults import FaultContext
from pytest_chaos.faults.istio import IstioFaults
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import Ledger, Owner, new_run_id
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings

GROUP = "networking.istio.io"
HOST = "backend.chaos.test"


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: Any) -> None:
        pass


@contextlib.contextmanager
def backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class Client:
    """Requests back to back through the gateway; (time, status) of each, as they come."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", "/", headers={"Host": HOST})
                response = connection.getresponse()
                response.read()
                self.seen.append((time.monotonic(), response.status))
            except OSError:
                self.seen.append((time.monotonic(), 0))
            finally:
                connection.close()

    def first(self, status: int, after: float, within: float = 30.0) -> float:
        """Seconds from after to the first request sent after it answered with status."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for stamp, seen in list(self.seen):
                if stamp > after and seen == status:
                    return stamp - after
            time.sleep(0.002)
        raise TimeoutError(f"no {status} within {within}s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def mesh(kube: Kube, namespace: str, gateway_port: int, port: int) -> None:
    kube.core.create_namespace({"metadata": {"name": namespace}})
    objects = [
        (
            "v1beta1",
            "serviceentries",
            {
                "kind": "ServiceEntry",
                "metadata": {"name": "backend"},
                "spec": {
                    "hosts": [HOST],
                    "location": "MESH_EXTERNAL",
                    "resolution": "STATIC",
                    "ports": [{"number": port, "name": "http", "protocol": "HTTP"}],
                    "endpoints": [{"address": "127.0.0.1"}],
                },
            },
        ),
        (
            "v1",
            "gateways",
            {
                "kind": "Gateway",
                "metadata": {"name": "ingress"},
                "spec": {
                    "selector": {"istio": "ingressgateway"},
                    "servers": [
                        {
                            "port": {"number": gateway_port, "name": "http", "protocol": "HTTP"},
                            "hosts": ["*"],
                        }
                    ],
                },
            },
        ),
        (
            "v1",
            "virtualservices",
            {
                "kind": "VirtualService",
                "metadata": {"name": "backend"},
                "spec": {
                    "hosts": ["*"],
                    "gateways": ["ingress"],
                    "http": [{"route": [{"destination": {"host": HOST}}]}],
                },
            },
        ),
    ]
    for version, plural, body in objects:
        body = {"apiVersion": f"{GROUP}/{version}", **body}
        kube.custom.create_namespaced_custom_object(GROUP, version, namespace, plural, body)


def run(rounds: int) -> dict[str, Any]:
    cluster = LocalCluster(f"istio-bench-{secrets.token_hex(2)}")
    started = time.monotonic()
    result = cluster.up(nodes=1, istio=True, timeout=180)
    up_seconds = time.monotonic() - started
    try:
        gateway = cluster.istio_gateway()
        assert gateway is not None
        kube = Kube.from_kubeconfig(result.kubeconfig, result.context)
        namespace = f"istio-dp-bench-{secrets.token_hex(3)}"
        settings = Settings(
            cluster="existing", kubeconfig=None, context=None, local_name="local", local_nodes=1
        )
        with tempfile.TemporaryDirectory() as ledger_dir, backend() as port:
            mesh(kube, namespace, gateway.http_port, port)
            client = Client(gateway.http_port)
            client.thread.start()
            client.first(200, time.monotonic(), within=60)
            ledger = Ledger(kube, Owner.current(new_run_id()), directory=Path(ledger_dir))
            injects, reverts, inject_calls, revert_calls = [], [], [], []
            for _ in range(rounds):
                ctx = FaultContext(
                    kube=kube,
                    ledger=ledger,
                    safety=Safety(settings, kube.context),
                    rng=random.Random(1),
                    timeline=Timeline("bench"),
                    test="benchmarks/istio_data_plane.py",
                )
                begin = time.monotonic()
                fault = IstioFaults(ctx).abort(HOST, namespace=namespace, status=500)
                inject_calls.append(time.monotonic() - begin)
                injects.append(client.first(500, begin))
                begin = time.monotonic()
                fault.revert()
                revert_calls.append(time.monotonic() - begin)
                reverts.append(client.first(200, begin))
            client.stop.set()
            client.thread.join()
            status = cluster.status()
            pids = {c.component: c.pid for c in status.components}
            from pytest_chaos.cluster.processes import find_orphans

            envoy = [
                p for p in find_orphans(str(cluster.state_dir) + "/") if p not in pids.values()
            ]
            rss = {
                "istiod_mb": rss_mb(pids["istiod"]),
                "pilot_agent_mb": rss_mb(pids["istio-gateway"]),
                "envoy_mb": sum(rss_mb(p) for p in envoy),
            }
        kube.close()
        return {
            "rounds": rounds,
            "cluster_up_with_istio_s": round(up_seconds, 1),
            "inject_to_first_aborted_request": milliseconds(injects),
            "revert_to_first_clean_request": milliseconds(reverts),
            "abort_call_returns": milliseconds(inject_calls),
            "revert_call_returns": milliseconds(revert_calls),
            "requests_sent": len(client.seen),
            "rss": rss,
        }
    finally:
        cluster.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    return publish(run(args.rounds), args.json)


if __name__ == "__main__":
    sys.exit(main())
