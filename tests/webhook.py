"""A real webhook receiver on 127.0.0.1 for the notification tests: it answers as scripted."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Webhook:
    """The receiver's URL, what it received, and how it answers the next requests.

    ``answers`` is consumed one per request: an HTTP status, or ``"hang"`` (read the request,
    never answer until the receiver closes); once empty, every request gets 200.
    """

    url: str
    answers: list[int | str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)


@contextmanager
def webhook(path: str = "/services/T000/B000/secret") -> Iterator[Webhook]:
    """Serve a scripted webhook on an ephemeral loopback port for the block's duration."""
    hook = Webhook(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.received.append(json.loads(body))
            answer = hook.answers.pop(0) if hook.answers else 200
            if answer == "hang":
                hook.closing.wait(60)
                return
            self.send_response(int(answer))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.closing.set()
        server.shutdown()
        server.server_close()
        thread.join()
