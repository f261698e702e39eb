"""A loopback webhook receiver for the alert tests: it keeps every request and can fail some."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from typing import ClassVar


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers the first `fail` POSTs with `status` (and `location`, if set: a redirect), the
    rest with 204; keeps every request (a GET too: where a followed redirect would land), and
    counts requests as they arrive (`arrived`), before any `delay_s`."""

    fail = 0
    status = 503
    delay_s = 0.0
    location: str | None = None
    arrived: ClassVar[threading.Event]
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).arrived.set()
        time.sleep(type(self).delay_s)
        type(self).received.append((dict(self.headers), body))
        failing = len(type(self).received) <= type(self).fail
        self.send_response(type(self).status if failing else 204)
        if failing and type(self).location:
            self.send_header("location", str(type(self).location))
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def receiver(
    fail: int, status: int = 503, delay_s: float = 0.0, location: str | None = None
) -> Iterator[type[Receiver]]:
    attributes = {
        "fail": fail,
        "status": status,
        "delay_s": delay_s,
        "location": location,
        "received": [],
        "arrived": threading.Event(),
    }
    handler = type("Handler", (Receiver,), attributes)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hook"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()


def main() -> None:
    """`python -m tests.serving.receiver --port 9000`: print each alert and its signature check."""
    import argparse
    import hashlib
    import hmac
    import json
    import os

    parser = argparse.ArgumentParser(prog="python -m tests.serving.receiver")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret-env", default="FLUSHCAST_WEBHOOK_SECRET")
    args = parser.parse_args()
    secret = os.environ[args.secret_env].encode()

    class Printer(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(expected, self.headers.get("X-Flushcast-Signature", ""))
            alert = json.loads(body)
            print(
                f"alert {alert['alert_id']}: {alert['symbol']} {alert['horizon_hours']} h "
                f"p_flush {alert['p_flush']:.3f} ({alert['risk_band']}) at {alert['as_of']}, "
                f"signature {'ok' if ok else 'BAD'}",
                flush=True,
            )
            self.send_response(204 if ok else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    print(f"receiving alerts on http://127.0.0.1:{args.port}/", flush=True)
    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Printer).serve_forever()


if __name__ == "__main__":
    main()
