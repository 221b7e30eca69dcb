"""Real webhook receivers on loopback for the sharing tests: they verify the signature with the
documented recipe (``docs/webhook_receiver.py``), record every attempt, process each
Idempotency-Key once, and can be told to fail."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cadastre.settings import PROJECT_ROOT

_spec = importlib.util.spec_from_file_location("webhook_receiver",
                                               PROJECT_ROOT / "docs" / "webhook_receiver.py")
assert _spec and _spec.loader
recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recipe)


class Receiver:
    """``fail_first`` attempts answer 500; ``down`` refuses to answer at all (not listening)."""

    def __init__(self, secret: str = "", fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.attempts: list[dict[str, Any]] = []
        self.processed: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                key = self.headers.get("Idempotency-Key", "")
                ok = recipe.verify(outer.secret, self.headers.get("X-Cadastre-Signature", ""),
                                   body)
                with outer.lock:
                    outer.attempts.append({"key": key, "at": time.time(), "signed": ok,
                                           "type": self.headers.get("X-Cadastre-Event")})
                    if not ok:
                        outer.bad_signatures += 1
                        status = 401
                    elif len(outer.attempts) <= outer.fail_first:
                        status = 500
                    else:
                        if key not in outer.processed:
                            outer.processed[key] = json.loads(body)
                        status = 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, fmt: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.processed) >= n:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{len(self.processed)} of {n} events processed: {self.attempts}")
