"""The small DNS client's wire format, and where the cluster DNS forwards other names."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from pytest_chaos.cluster import cluster_dns, dnsquery


def test_a_query_asks_one_question_with_recursion_desired() -> None:
    query = dnsquery.encode_query("web.shop.svc.cluster.local.", dnsquery.AAAA, ident=0x1234)
    assert query[:12] == struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    assert query[12:] == (
        b"\x03web\x04shop\x03svc\x07cluster\x05local\x00" + struct.pack("!HH", 28, 1)
    )


def test_an_answer_gives_its_rcode_flags_and_a_records() -> None:
    question = dnsquery.encode_query("web", ident=7)[12:]
    header = struct.pack("!HHHHHH", 7, 0x8580, 1, 3, 0, 0)  # QR AA RD RA, NOERROR
    record_a = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4)
    cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 5, 2) + b"\xc0\x0c"
    reply = (
        header
        + question
        + record_a
        + socket.inet_aton("10.96.0.7")
        + cname
        + record_a
        + socket.inet_aton("10.96.0.8")
    )
    assert dnsquery.decode_answer(reply) == dnsquery.Answer(
        dnsquery.NOERROR, ("10.96.0.7", "10.96.0.8"), True
    )


def test_an_nxdomain_answer_has_no_addresses() -> None:
    question = dnsquery.encode_query("nope", ident=9)[12:]
    reply = struct.pack("!HHHHHH", 9, 0x8183, 1, 0, 0, 0) + question
    assert dnsquery.decode_answer(reply) == dnsquery.Answer(dnsquery.NXDOMAIN, (), False)


def test_the_host_resolvers_become_the_upstreams(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "# generated\nsearch example.org\nnameserver 10.0.0.2\nnameserver fd00::1\n"
        "options ndots:2\nnameserver 10.0.0.3\n"
    )
    assert cluster_dns.upstreams(resolv) == ["10.0.0.2:53", "10.0.0.3:53"]
    assert cluster_dns.upstreams(tmp_path / "missing") == []


def test_the_kube_dns_service_points_at_the_hosts_dns_port() -> None:
    service = cluster_dns.service()
    assert service["spec"]["clusterIP"] == cluster_dns.SERVICE_IP
    assert {(p["protocol"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("UDP", 53, cluster_dns.PORT),
        ("TCP", 53, cluster_dns.PORT),
    }
    endpoints = cluster_dns.endpoint_slice("192.0.2.2", "real-node-0")
    assert endpoints["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert endpoints["endpoints"][0]["addresses"] == ["192.0.2.2"]
    assert {p["port"] for p in endpoints["ports"]} == {cluster_dns.PORT}
