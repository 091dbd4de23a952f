"""A TLS proxy in front of the real API server that answers some requests with 429 or 503.

Two kinds of hiccup, both seen in real clusters:
* refused: the request never reaches the API server (429 Too Many Requests, 503);
* lost: a mutation is applied, but its answer is replaced by a 503 (a load balancer timing out),
  so a naive retry meets "already exists" or "not found".
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HOP_HEADERS = {
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "accept-encoding",
}


@dataclass
class Flakiness:
    """Which requests hiccup, decided by counting (not by chance), so every run sees its share.

    Of every ``refuse_every`` reads one is refused; mutations cycle through pass, lose, refuse;
    one watch in ``refuse_every + 1`` is refused.
    """

    refuse_every: int = 5
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: Counter[str] = field(default_factory=Counter)

    def decide(self, method: str, path: str) -> str:
        with self.lock:
            if "watch=true" in path or "watch=1" in path:
                kind, cycle = "watch", ["refuse"] + ["pass"] * self.refuse_every
            elif method == "GET":
                kind, cycle = "read", ["pass"] * (self.refuse_every - 1) + ["refuse"]
            else:
                kind, cycle = "mutation", ["pass", "lose", "refuse"]
            decision = cycle[self._seen[kind] % len(cycle)]
            self._seen[kind] += 1
            self.counts[decision] += 1
            return decision


@contextmanager
def flaky_proxy(upstream: str, pki: Path, flakiness: Flakiness) -> Iterator[str]:
    """Serve a flaky https proxy to upstream; yield its URL."""
    upstream_tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    upstream_tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    client = httpx.Client(base_url=upstream, verify=upstream_tls, timeout=None)

    class Handler(http.server.BaseHTTPRequestHandler):
        # HTTP/1.1 with chunked bodies: a client reads a watch event as soon as it is framed
        # (a close-delimited HTTP/1.0 body would be read to the end: every event at once).
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def refuse(self) -> None:
            status = 429 if flakiness.counts["refuse"] % 2 else 503
            body = (
                b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":'
                b'"injected by the flaky proxy","code":%d}' % status
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(body)

        def forward(self) -> None:
            decision = flakiness.decide(self.command, self.path)
            if decision == "refuse":
                self.refuse()
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            request = client.build_request(self.command, self.path, headers=headers, content=body)
            response = client.send(request, stream=True)
            try:
                if decision == "lose":
                    response.read()
                    self.refuse()
                    return
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    for chunk in response.iter_raw():
                        if chunk:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
            finally:
                response.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward  # noqa: N815

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # clients hang up on watches they stopped: expected, not worth a traceback

    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki / "apiserver.crt"), str(pki / "apiserver.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        client.close()
