"""An example receiver of the cadastre server's event webhooks (e.g. a water company moving the
account to the new owner at a transfer: 水电气联动过户). Standard library only.

    python docs/webhook_receiver.py --port 9000 --secret '<the subscription secret>'

Every POST carries the event as JSON and three headers:

    Idempotency-Key: <event id>       deliveries are at least once: process each key once
    X-Cadastre-Event: transfer.recorded
    X-Cadastre-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

Verify the signature over the raw bytes before parsing, refuse stale timestamps (replays), and
answer 2xx only when the event is stored: anything else is retried later with backoff.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 300


def verify(secret: str, header: str, body: bytes, now: float | None = None,
           tolerance: int = TOLERANCE_S) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within ``tolerance`` s."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp, given = int(parts["t"]), parts["v1"]
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


class Receiver(BaseHTTPRequestHandler):
    secret = ""
    seen: set[str] = set()        # processed idempotency keys (keep them in your database)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verify(self.secret, self.headers.get("X-Cadastre-Signature", ""), body):
            self.send_response(401)
            self.end_headers()
            return
        key = self.headers.get("Idempotency-Key", "")
        if key not in self.seen:
            event = json.loads(body)
            if event["type"] == "transfer.recorded":
                for unit in event.get("units", []):
                    holders = [p for r in event.get("rights", []) if r.get("change") == "entered"
                               for p in r.get("parties", []) if p.get("role") == 1]
                    print(f"move the account of {unit.get('seat')} ({unit['unit_code']}) to "
                          f"{', '.join(p.get('name', '?') for p in holders)}")
            self.seen.add(key)
        self.send_response(204)
        self.end_headers()

    def log_message(self, fmt: str, *args: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--secret", required=True)
    args = ap.parse_args()
    Receiver.secret = args.secret
    ThreadingHTTPServer(("127.0.0.1", args.port), Receiver).serve_forever()


if __name__ == "__main__":
    main()
