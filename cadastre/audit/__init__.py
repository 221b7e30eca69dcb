"""Tamper-evident audit trail: every non-public read and every change, hash-chained.

Each row is sealed with ``HMAC(audit key, prev_hash || canonical row)``. The key lives outside
the database (settings or ``secrets.json``), so someone who can run SQL can alter or delete rows
but cannot re-seal the chain: ``verify`` recomputes it and names the first row that does not
match. Rows get consecutive sequence numbers under a transaction-level advisory lock, so a
deleted row in the middle is a gap that ``verify`` reports too.

The log holds no plaintext PII: actors are account ids, API-key ids or keyed hashes
(``subject_hash``), targets are codes or opaque ids, purposes are codes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import pq

LOCK = 0x6361_6461  # pg_advisory_xact_lock key: one writer at a time extends the chain
GENESIS = b"\x00" * 32
FIELDS = ("actor", "role", "action", "target", "purpose", "case_ref", "result_count", "outcome",
          "client")


@dataclass(frozen=True)
class Entry:
    actor: str
    role: str
    action: str
    target: str | None = None
    purpose: str | None = None
    case_ref: str | None = None
    result_count: int = 0
    outcome: str = "ok"
    client: str | None = None


def subject_hash(key: bytes, value: str, kind: str = "subject") -> str:
    """A stable keyed pseudonym for an identity or client address (hex, 24 chars)."""
    digest = hmac.new(key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return digest[:24]


def _canonical(seq: int, at: datetime, entry: Entry) -> bytes:
    row = [seq, at.astimezone(UTC).isoformat(timespec="microseconds")]
    row += [getattr(entry, f) for f in FIELDS]
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def seal(key: bytes, prev_hash: bytes, seq: int, at: datetime, entry: Entry) -> bytes:
    return hmac.new(key, prev_hash + _canonical(seq, at, entry), hashlib.sha256).digest()


_HEAD = "SELECT seq, row_hash FROM audit.log ORDER BY seq DESC LIMIT 1"
_INSERT = (
    "INSERT INTO audit.log (seq, at, actor, role, action, target, purpose, case_ref, "
    "result_count, outcome, client, prev_hash, row_hash) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _row(seq: int, at: datetime, entry: Entry, prev: bytes, digest: bytes) -> tuple[Any, ...]:
    return (seq, at, *(getattr(entry, f) for f in FIELDS), prev, digest)


def append(conn: psycopg.Connection, key: bytes, entry: Entry) -> int:
    """Append ``entry`` in the caller's transaction (or its own when there is none); its seq.
    Inside a transaction no savepoint is made: the row stands or falls with the caller's."""
    if conn.info.transaction_status == pq.TransactionStatus.INTRANS:
        return _append(conn, key, entry)
    with conn.transaction():
        return _append(conn, key, entry)


def append_in_transaction(conn: psycopg.Connection, key: bytes, entry: Entry) -> int:
    """``append`` for a caller that holds a transaction open (also mid-pipeline, where the
    connection's status says a command is in flight rather than "in a transaction")."""
    return _append(conn, key, entry)


def _append(conn: psycopg.Connection, key: bytes, entry: Entry) -> int:
    # the lock, then the head read in a statement of its own (a snapshot taken after the lock
    # is held), sent together in one round trip (pipelined; also inside a caller's pipeline)
    with conn.pipeline():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        cur = conn.execute(_HEAD)
    head = cur.fetchone()
    seq, prev = (head[0] + 1, bytes(head[1])) if head else (1, GENESIS)
    at = datetime.now(UTC)
    digest = seal(key, prev, seq, at, entry)
    conn.execute(_INSERT, _row(seq, at, entry, prev, digest))
    return seq


async def append_async(conn: psycopg.AsyncConnection, key: bytes, entry: Entry) -> int:
    """``append`` for the API's async pool."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        cur = await conn.execute(_HEAD)
        head = await cur.fetchone()
        seq, prev = (head[0] + 1, bytes(head[1])) if head else (1, GENESIS)
        at = datetime.now(UTC)
        digest = seal(key, prev, seq, at, entry)
        await conn.execute(_INSERT, _row(seq, at, entry, prev, digest))
    return seq


@dataclass(frozen=True)
class Verification:
    ok: bool
    rows: int
    head_seq: int | None
    head_hash: str | None
    first_bad_seq: int | None = None
    reason: str | None = None


def verify(conn: psycopg.Connection, key: bytes, batch: int = 5000) -> Verification:
    """Recompute the whole chain; the first row whose seal, link or sequence is wrong."""
    prev, expected_seq, rows = GENESIS, 1, 0
    last_hash: bytes | None = None
    with conn.cursor(name="audit_verify") if not conn.autocommit else conn.cursor() as cur:
        cur.execute("SELECT seq, at, " + ", ".join(FIELDS) + ", prev_hash, row_hash "
                    "FROM audit.log ORDER BY seq")
        while chunk := cur.fetchmany(batch):
            for rec in chunk:
                seq, at = rec[0], rec[1]
                entry = Entry(**dict(zip(FIELDS, rec[2:2 + len(FIELDS)], strict=True)))
                stored_prev, stored = bytes(rec[-2]), bytes(rec[-1])
                if seq != expected_seq:
                    return Verification(False, rows, seq, None, expected_seq,
                                        f"missing row(s) {expected_seq}..{seq - 1}")
                if stored_prev != prev:
                    return Verification(False, rows, seq, None, seq, "link to previous row broken")
                if not hmac.compare_digest(seal(key, prev, seq, at, entry), stored):
                    return Verification(False, rows, seq, None, seq, "row content altered")
                prev, expected_seq, rows, last_hash = stored, seq + 1, rows + 1, stored
    return Verification(True, rows, expected_seq - 1 if rows else None,
                        last_hash.hex() if last_hash else None)


def export(conn: psycopg.Connection, since: datetime | None = None,
           until: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Rows for auditors (hashes in hex), oldest first."""
    cur = conn.execute(
        "SELECT seq, at, " + ", ".join(FIELDS) + ", prev_hash, row_hash FROM audit.log "
        "WHERE (%(since)s::timestamptz IS NULL OR at >= %(since)s) "
        "AND (%(until)s::timestamptz IS NULL OR at < %(until)s) ORDER BY seq",
        {"since": since, "until": until},
    )
    for rec in cur:
        out: dict[str, Any] = {"seq": rec[0], "at": rec[1].isoformat()}
        out.update(zip(FIELDS, rec[2:2 + len(FIELDS)], strict=True))
        out["prev_hash"], out["row_hash"] = bytes(rec[-2]).hex(), bytes(rec[-1]).hex()
        yield out
