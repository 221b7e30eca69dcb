"""Pushing events to subscribers: at least once, in order per subscriber, signed.

The dispatcher (threads of ``cadastre serve`` and of ``cadastre worker``) fans new events out to
the matching subscriptions (one ``share.delivery`` row each) and sends each subscription's oldest
pending event: HTTP POST of the JSON payload with

    Idempotency-Key: <event id>            (the receiver drops what it has processed)
    X-Cadastre-Event: <type>
    X-Cadastre-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

A 2xx delivers it; anything else (or no answer) is retried with exponential backoff and jitter;
after the subscription's ``max_attempts`` it becomes a dead letter and the next event goes
(``replay`` sends dead letters again). One dispatcher at a time owns a subscription (row lock,
SKIP LOCKED), so several processes never reorder or double-send its events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from cadastre.access.pii import PiiCipher, load_cipher
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.settings import Settings
from cadastre.sharing import payloads
from cadastre.sharing.events import CHANNEL
from cadastre.store.db import connect

log = logging.getLogger(__name__)
BATCH = 200
TIMEOUT_S = 10.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(attempt: int, rng: random.Random, base: float = 1.0, cap: float = 3600.0) -> float:
    """Seconds before attempt ``attempt + 1``: exponential, capped, with full jitter on half."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


@dataclass(frozen=True)
class Target:
    subscription_id: uuid.UUID
    url: str
    secret: str
    principal: Principal
    holder_hash: bytes | None
    max_attempts: int


def _target(conn: psycopg.Connection, cipher: PiiCipher, sub: dict[str, Any]) -> Target:
    counties = tuple(c.strip() for c in sub["counties"]) or tuple(
        c.strip() for c in sub["key_counties"])
    who = Principal(Role.DEPARTMENT, counties=counties, subject=str(sub["api_key_id"]),
                    fields=tuple(sub["fields"]))
    return Target(sub["subscription_id"], sub["url"], cipher.decrypt(sub["secret_enc"]) or "",
                  who, bytes(sub["holder_hash"]) if sub["holder_hash"] else None,
                  sub["max_attempts"])


_SUBS = """
SELECT s.subscription_id, s.url, s.secret_enc, s.event_types, s.counties, s.last_event_id,
       s.max_attempts, s.api_key_id, k.counties AS key_counties, k.fields, k.holder_hash,
       k.disabled OR (k.expires_at IS NOT NULL AND k.expires_at < now()) AS key_dead
FROM share.subscription s JOIN auth.api_key k ON k.key_id = s.api_key_id
WHERE s.status = 'active' {where}
FOR UPDATE OF s SKIP LOCKED
"""


def fan_out(conn: psycopg.Connection, cipher: PiiCipher, sub: dict[str, Any]) -> int:
    """Delivery rows for the events after the subscription's cursor that concern it."""
    target = _target(conn, cipher, sub)
    with conn.cursor(row_factory=dict_row) as cur:
        events = cur.execute(
            "SELECT event_id, type, occurred_at, county_code, unit_codes, case_no, refs "
            "FROM share.event WHERE event_id > %s ORDER BY event_id LIMIT %s",
            (sub["last_event_id"], BATCH)).fetchall()
    if not events:
        return 0
    wanted = set(sub["event_types"])
    counties = set(target.principal.counties)
    keep = [e["event_id"] for e in events
            if (not wanted or e["type"] in wanted)
            and (not counties or (e["county_code"] or "").strip() in counties)
            and payloads.concerns(conn, e, target.holder_hash)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO share.delivery (subscription_id, event_id) VALUES (%s, %s) "
                        "ON CONFLICT DO NOTHING",
                        [(sub["subscription_id"], e) for e in keep])
    conn.execute("UPDATE share.subscription SET last_event_id = %s WHERE subscription_id = %s",
                 (events[-1]["event_id"], sub["subscription_id"]))
    return len(keep)


def _head(conn: psycopg.Connection, subscription_id: uuid.UUID) -> dict[str, Any] | None:
    """The subscription's oldest pending delivery, if it is due."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT d.id, d.attempts, d.next_attempt_at <= now() AS due, e.event_id, e.type, "
            "e.occurred_at, e.county_code, e.unit_codes, e.case_no, e.refs "
            "FROM share.delivery d JOIN share.event e ON e.event_id = d.event_id "
            "WHERE d.subscription_id = %s AND d.status = 'pending' "
            "ORDER BY d.event_id LIMIT 1", (subscription_id,)).fetchone()
    return row if row and row["due"] else None


class Dispatcher:
    """Fan-out and delivery loop; ``start`` runs it in a thread, ``stop`` ends it."""

    def __init__(self, url: str, settings: Settings, threads: int = 4,
                 poll_seconds: float = 1.0) -> None:
        self.url = url
        self.cipher = load_cipher(settings)
        self.threads = threads
        self.poll = poll_seconds
        self.stopping = threading.Event()
        self.rng = random.Random()
        self.http = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
        self._thread: threading.Thread | None = None

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(target=self.run, daemon=True, name="event-dispatcher")
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self._thread:
            self._thread.join(timeout)
        self.http.close()

    def run(self) -> None:
        with ThreadPoolExecutor(self.threads, thread_name_prefix="delivery") as pool:
            while not self.stopping.is_set():
                try:
                    with connect(self.url, autocommit=True) as listen:
                        listen.execute(f"LISTEN {CHANNEL}")
                        while not self.stopping.is_set():
                            busy = any(pool.map(self.step, self._subscription_ids()))
                            if not busy:
                                for _ in listen.notifies(timeout=self.poll, stop_after=1):
                                    pass
                except psycopg.Error:
                    log.exception("event dispatcher: database error, retrying")
                    self.stopping.wait(5.0)

    def _subscription_ids(self) -> Iterator[uuid.UUID]:
        with connect(self.url, autocommit=True) as conn:
            yield from (r[0] for r in conn.execute(
                "SELECT subscription_id FROM share.subscription WHERE status = 'active'"))

    def step(self, subscription_id: uuid.UUID) -> bool:
        """Fan out and send what is due for one subscription (if no other dispatcher holds it).
        Returns whether it did anything."""
        did = False
        with connect(self.url) as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                sub = cur.execute(_SUBS.format(where="AND s.subscription_id = %s"),
                                  (subscription_id,)).fetchone()
            if sub is None or sub["key_dead"]:
                return False
            did = fan_out(conn, self.cipher, sub) > 0
            conn.commit()
            target = None
            for _ in range(BATCH):
                with conn.cursor(row_factory=dict_row) as cur:   # keep our hold on it
                    if cur.execute(_SUBS.format(where="AND s.subscription_id = %s"),
                                   (subscription_id,)).fetchone() is None:
                        break
                head = _head(conn, subscription_id)
                if head is None or self.stopping.is_set():
                    break
                target = target or _target(conn, self.cipher, sub)
                self._send(conn, target, head)
                conn.commit()
                did = True
            conn.commit()
        return did

    def _send(self, conn: psycopg.Connection, target: Target, head: dict[str, Any]) -> None:
        body = json.dumps(payloads.render(conn, self.cipher, head, target.principal),
                          ensure_ascii=False, separators=(",", ":")).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Idempotency-Key": str(head["event_id"]), "X-Cadastre-Event": head["type"],
                   "X-Cadastre-Event-Id": str(head["event_id"]),
                   "X-Cadastre-Signature": signature(target.secret, ts, body)}
        t0 = time.perf_counter()
        status, error = None, None
        try:
            r = self.http.post(target.url, content=body, headers=headers)
            status = r.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        ms = int((time.perf_counter() - t0) * 1000)
        attempts = head["attempts"] + 1
        if status is not None and 200 <= status < 300:
            conn.execute("UPDATE share.delivery SET status = 'delivered', attempts = %s, "
                         "last_status = %s, latency_ms = %s, delivered_at = now(), "
                         "last_error = NULL WHERE id = %s", (attempts, status, ms, head["id"]))
            return
        dead = attempts >= target.max_attempts
        conn.execute(
            "UPDATE share.delivery SET status = %s, attempts = %s, last_status = %s, "
            "last_error = %s, latency_ms = %s, next_attempt_at = now() + make_interval("
            "secs => %s) WHERE id = %s",
            ("dead" if dead else "pending", attempts, status, error or f"HTTP {status}", ms,
             backoff(attempts, self.rng), head["id"]))
