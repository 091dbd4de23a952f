"""The real node's DNS server (tools/images/dns) against the real API server, asked directly.

The server runs here on a loopback port, configured like the real node's but with an upstream
resolver of the test's own (a stub on another loopback port), so every answer is checked:
Services by name, headless Services by their ready endpoints, names that are not there, other
record types, TCP, forwarding, and an upstream that does not answer. The real node's pods use the
same server through the ``kube-dns`` Service (tests/e2e/test_real_node.py).
"""

from __future__ import annotations

import functools
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube, eventually
from pytest_chaos.cluster import ClusterHandle, cluster_dns, dnsquery, images, processes
from pytest_chaos.cluster.processes import ProcessRecord
from pytest_chaos.errors import ClusterError
from pytest_chaos.kube.deadline import Deadline
from tests.e2e.manifests import deployment

UPSTREAM_ADDRESS = "192.0.2.80"


@pytest.fixture(scope="module")
def dns_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pytest-chaos-dns`` built from tools/images/dns (Go's build cache makes it quick)."""
    out = tmp_path_factory.mktemp("dns") / images.DNS_PROGRAM
    try:
        return images.go_build(images.sources_dir() / "dns", out)
    except ClusterError as exc:  # no Go: make test installs it, a bare checkout may not have it
        pytest.skip(f"cannot build the DNS server: {exc}")


class StubUpstream:
    """A resolver for names outside the cluster: answers every A query with one address."""

    def __init__(self, *, drop: int = 0) -> None:
        self.drop = drop  # queries to leave unanswered first, like datagrams lost on the way
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.asked: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(4096)
            except OSError:
                return  # closed
            self.asked.append(query)
            if len(self.asked) <= self.drop:
                continue
            header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
            record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4)
            question = query[12:]
            self.sock.sendto(header + question + record + socket.inet_aton(UPSTREAM_ADDRESS), peer)

    def close(self) -> None:
        self.sock.close()


class DnsServer:
    """The server on a loopback port, and the questions a resolver would ask it."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address

    def ask(self, name: str, qtype: int = dnsquery.A, *, tcp: bool = False) -> dnsquery.Answer:
        return dnsquery.query(self.address, name, qtype, tcp=tcp)


@pytest.fixture
def api(kube: Kube, chaos_cluster: ClusterHandle) -> tuple[str, Path]:
    """The API server's URL and the local cluster's certificates (what the real node uses)."""
    if chaos_cluster.provider != "local":
        pytest.skip("needs the local cluster's certificates")
    return str(kube.api_client.configuration.host), chaos_cluster.kubeconfig.parent / "pki"


def start_server(
    program: Path, api: tuple[str, Path], directory: Path, forward_to: list[str]
) -> tuple[ProcessRecord, DnsServer]:
    """Start it as the real node does (config, start, wait until it answers), on loopback."""
    port = processes.free_port()[0]
    server, pki_dir = api
    settings = cluster_dns.config("127.0.0.1", server, pki_dir, port=port, forward_to=forward_to)
    record = cluster_dns.start(program, directory, directory / "dns.log", settings)
    cluster_dns.wait_serving(record, ("127.0.0.1", port), Deadline(15))
    return record, DnsServer(("127.0.0.1", port))


def stop(record: ProcessRecord) -> None:
    assert processes.terminate([record.pid]) == []


@pytest.fixture
def upstream() -> Iterator[StubUpstream]:
    stub = StubUpstream()
    yield stub
    stub.close()


@pytest.fixture
def dns(
    dns_program: Path, api: tuple[str, Path], tmp_path: Path, upstream: StubUpstream
) -> Iterator[DnsServer]:
    record, server = start_server(dns_program, api, tmp_path, [upstream.address])
    yield server
    stop(record)


def fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def cluster_service(name: str, *, headless: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": 80}]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def test_a_service_resolves_to_its_cluster_ip_and_disappears_with_it(
    dns: DnsServer, kube: Kube, chaos_namespace: str
) -> None:
    created = kube.core.create_namespaced_service(chaos_namespace, cluster_service("web"))
    name = fqdn("web", chaos_namespace)

    def resolved() -> dnsquery.Answer:
        answer = dns.ask(name)
        assert answer.addresses == (created.spec.cluster_ip,), answer
        return answer

    answer = eventually(resolved, within=5, every=0.05)
    assert answer.rcode == dnsquery.NOERROR
    assert answer.authoritative
    assert dns.ask(name, tcp=True) == answer
    assert dns.ask(name.upper() + ".") == answer  # names are case-insensitive, dots optional
    # The name exists, with no IPv6 address: NOERROR and no records, not NXDOMAIN.
    assert dns.ask(name, dnsquery.AAAA) == dnsquery.Answer(dnsquery.NOERROR, (), True)

    kube.core.delete_namespaced_service("web", chaos_namespace)

    def gone() -> None:
        assert dns.ask(name).rcode == dnsquery.NXDOMAIN

    eventually(gone, within=5, every=0.05)


def test_a_headless_service_resolves_to_its_ready_pods(
    dns: DnsServer, kube: Kube, chaos_namespace: str
) -> None:
    kube.core.create_namespaced_service(chaos_namespace, cluster_service("db", headless=True))
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("db", replicas=2))
    pods = kube.wait(
        functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
        lambda found: len([p for p in found if p.status.pod_ip]) == 2,
        within=60,
        what="2 db pods with IPs",
        label_selector="app=db",
    )
    ips = sorted(p.status.pod_ip for p in pods)

    def resolved() -> None:
        assert sorted(dns.ask(fqdn("db", chaos_namespace)).addresses) == ips

    eventually(resolved, within=15, every=0.1)


def test_names_that_are_no_service_are_nxdomain_without_asking_upstream(
    dns: DnsServer, upstream: StubUpstream, chaos_namespace: str
) -> None:
    for name in (
        fqdn("nothing", chaos_namespace),
        f"{chaos_namespace}.svc.cluster.local",
        "svc.cluster.local",
        f"a.b.{fqdn('web', chaos_namespace)}",
    ):
        answer = dns.ask(name)
        assert (answer.rcode, answer.addresses, answer.authoritative) == (
            dnsquery.NXDOMAIN,
            (),
            True,
        ), name
    assert upstream.asked == []


def test_other_names_are_forwarded_to_the_hosts_resolver(
    dns: DnsServer, upstream: StubUpstream
) -> None:
    answer = dns.ask("pypi.org")
    assert answer.addresses == (UPSTREAM_ADDRESS,)
    assert not answer.authoritative  # the upstream's answer, relayed as it came
    assert dns.ask("pypi.org", tcp=True).addresses == (UPSTREAM_ADDRESS,)
    assert len(upstream.asked) == 2


def test_a_lost_upstream_answer_is_asked_again(
    dns_program: Path, api: tuple[str, Path], tmp_path: Path
) -> None:
    lossy = StubUpstream(drop=1)
    record, server = start_server(dns_program, api, tmp_path, [lossy.address])
    try:
        answer = dnsquery.query(server.address, "pypi.org", timeout=5)
    finally:
        stop(record)
        lossy.close()
    assert answer.addresses == (UPSTREAM_ADDRESS,)
    assert len(lossy.asked) == 2


def test_an_upstream_that_does_not_answer_is_servfail_not_silence(
    dns_program: Path, api: tuple[str, Path], tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        record, server = start_server(dns_program, api, tmp_path, [address])
        try:
            answer = dnsquery.query(server.address, "pypi.org", timeout=5)
        finally:
            stop(record)
    assert answer.rcode == dnsquery.SERVFAIL
