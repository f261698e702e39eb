"""A loopback webhook receiver for the alert tests: it keeps every request and can fail some."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from typing import ClassVar


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers the first `fail` POSTs with `status`, the rest with 204; keeps every request."""

    fail = 0
    status = 503
    delay_s = 0.0
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        time.sleep(type(self).delay_s)
        type(self).received.append((dict(self.headers), body))
        failing = len(type(self).received) <= type(self).fail
        self.send_response(type(self).status if failing else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def receiver(fail: int, status: int = 503, delay_s: float = 0.0) -> Iterator[type[Receiver]]:
    attributes = {"fail": fail, "status": status, "delay_s": delay_s, "received": []}
    handler = type("Handler", (Receiver,), attributes)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hook"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
