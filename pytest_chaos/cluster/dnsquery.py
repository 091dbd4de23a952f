"""A minimal DNS client: ask one server for a name's IPv4 addresses (UDP or TCP).

Enough to wait for the real node's DNS server to serve, and to check its answers in tests;
resolvers in pods are the real clients.
"""

from __future__ import annotations

import secrets
import socket
import struct
from dataclasses import dataclass

A = 1
AAAA = 28
NOERROR = 0
SERVFAIL = 2
NXDOMAIN = 3


@dataclass(frozen=True, slots=True)
class Answer:
    """A reply: its response code and the IPv4 addresses of its A records."""

    rcode: int
    addresses: tuple[str, ...]
    authoritative: bool


def encode_query(name: str, qtype: int = A, ident: int | None = None) -> bytes:
    """A standard query with recursion desired for name (absolute or not)."""
    ident = secrets.randbelow(1 << 16) if ident is None else ident
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(
        bytes([len(part)]) + part.encode() for part in name.strip(".").split(".") if part
    )
    return header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def decode_answer(reply: bytes) -> Answer:
    """The rcode and A-record addresses of a reply (names are skipped, not decoded)."""
    _, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", reply[:12])
    at = 12
    for _ in range(qdcount):
        at = _skip_name(reply, at) + 4
    addresses = []
    for _ in range(ancount):
        at = _skip_name(reply, at)
        rtype, _, _, size = struct.unpack("!HHIH", reply[at : at + 10])
        at += 10
        if rtype == A and size == 4:
            addresses.append(socket.inet_ntoa(reply[at : at + 4]))
        at += size
    return Answer(flags & 0x000F, tuple(addresses), bool(flags & 0x0400))


def _skip_name(message: bytes, at: int) -> int:
    while True:
        size = message[at]
        if size == 0:
            return at + 1
        if size & 0xC0 == 0xC0:
            return at + 2
        at += 1 + size


def query(
    server: tuple[str, int], name: str, qtype: int = A, *, tcp: bool = False, timeout: float = 2.0
) -> Answer:
    """Ask server about name; raises OSError (e.g. TimeoutError) when it does not answer."""
    message = encode_query(name, qtype)
    if tcp:
        with socket.create_connection(server, timeout=timeout) as conn:
            conn.sendall(struct.pack("!H", len(message)) + message)
            size = struct.unpack("!H", _read_exactly(conn, 2))[0]
            return decode_answer(_read_exactly(conn, size))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as conn:
        conn.settimeout(timeout)
        conn.sendto(message, server)
        while True:
            reply, _ = conn.recvfrom(65535)
            if reply[:2] == message[:2]:
                return decode_answer(reply)


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the DNS server closed the connection")
        data += chunk
    return data
