"""Istio faults measured on real requests: a Gateway, a VirtualService, Envoy, a local backend.

Run by ``tests/e2e/test_istio_data_plane.py`` in a session of its own whose embedded cluster
runs istiod and the host ingress gateway (``--chaos-local-istio``). Requests go from this
process to the gateway over loopback; the gateway routes them to an HTTP server of this process
declared to the mesh by a ServiceEntry.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.cluster.istio import binomial
from pytest_chaos.cluster.istio.control import Gateway, published_gateway
from tests.e2e.manifests import namespace_with

GROUP = "networking.istio.io"
HOST = "backend.chaos.test"
HTTP = {"protocol": "HTTP"}


def at(port: int) -> dict[str, Any]:
    return {"port": {"number": port}}


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: Any) -> None:
        pass


@dataclass
class Mesh:
    """The gateway and a namespace whose VirtualService routes it to the backend."""

    gateway: Gateway
    namespace: str

    def get(self, headers: dict[str, str] | None = None) -> tuple[int, float]:
        """One request through the gateway: (status, seconds)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.gateway.http_port, timeout=10)
        started = time.monotonic()
        try:
            connection.request("GET", "/", headers={"Host": HOST, **(headers or {})})
            response = connection.getresponse()
            response.read()
            return response.status, time.monotonic() - started
        finally:
            connection.close()

    def statuses(self, count: int, headers: dict[str, str] | None = None) -> list[int]:
        return [self.get(headers)[0] for _ in range(count)]


@contextlib.contextmanager
def _backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _create(kube: Kube, namespace: str, plural: str, body: dict[str, Any]) -> None:
    version = "v1beta1" if plural == "serviceentries" else "v1"
    body = {"apiVersion": f"{GROUP}/{version}", **body}
    kube.custom.create_namespaced_custom_object(GROUP, version, namespace, plural, body)


@pytest.fixture(scope="module")
def mesh(kube: Kube) -> Iterator[Mesh]:
    gateway = published_gateway(kube)
    assert gateway is not None, "the session's cluster runs no Istio gateway"
    with _backend() as port, namespace_with(kube, "istio-dp", {}) as namespace:
        _create(
            kube,
            namespace,
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
        )
        _create(
            kube,
            namespace,
            "gateways",
            {
                "kind": "Gateway",
                "metadata": {"name": "ingress"},
                "spec": {
                    "selector": {"istio": "ingressgateway"},
                    "servers": [
                        {
                            "port": {"number": gateway.http_port, "name": "http", **HTTP},
                            "hosts": ["*"],
                        }
                    ],
                },
            },
        )
        _create(
            kube,
            namespace,
            "virtualservices",
            {
                "kind": "VirtualService",
                "metadata": {"name": "backend"},
                "spec": {
                    "hosts": ["*"],
                    "gateways": ["ingress"],
                    "http": [{"route": [{"destination": {"host": HOST, **at(port)}}]}],
                },
            },
        )
        mesh = Mesh(gateway, namespace)
        deadline = time.monotonic() + 60
        while not _serves(mesh):
            assert time.monotonic() < deadline, "the gateway never routed to the backend"
            time.sleep(0.1)
        yield mesh


def _serves(mesh: Mesh) -> bool:
    try:
        return mesh.get()[0] == 200
    except OSError:
        return False


def test_half_of_the_requests_are_aborted_within_the_binomial_interval(
    chaos: Any, mesh: Mesh
) -> None:
    with chaos.istio.abort(HOST, namespace=mesh.namespace, status=500, percent=50):
        statuses = mesh.statuses(200)
    low, high = binomial.interval(200, 0.5)
    assert low <= statuses.count(500) <= high, f"{statuses.count(500)} of 200 aborted"
    assert set(statuses) <= {200, 500}


def test_a_full_abort_fails_every_request_and_revert_heals_every_one(
    chaos: Any, mesh: Mesh
) -> None:
    fault = chaos.istio.abort(HOST, namespace=mesh.namespace, status=500, percent=100)
    assert mesh.statuses(200) == [500] * 200
    fault.revert()
    assert mesh.statuses(200) == [200] * 200


def test_a_delay_holds_every_request_and_revert_lifts_it(chaos: Any, mesh: Mesh) -> None:
    with chaos.istio.delay(HOST, namespace=mesh.namespace, delay="1s", percent=100):
        timings = [mesh.get() for _ in range(5)]
    # Envoy's timers tick in milliseconds and may fire up to ~1 ms early (0.9988 s was seen).
    assert all(status == 200 and seconds >= 0.995 for status, seconds in timings), timings
    after = [mesh.get() for _ in range(5)]
    assert all(status == 200 and seconds < 0.5 for status, seconds in after), after


def test_a_header_scoped_abort_hits_only_requests_with_the_header(chaos: Any, mesh: Mesh) -> None:
    with chaos.istio.abort(
        HOST, namespace=mesh.namespace, status=500, percent=100, header="x-chaos=on"
    ):
        marked = mesh.statuses(50, {"x-chaos": "on"})
        others = mesh.statuses(50)
    assert marked == [500] * 50
    assert others == [200] * 50
