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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import pq

LOCK = 0x6361_6461  # pg_advisory_xact_lock key: one writer at a time extends the chain
GENESIS = b"\x00" * 32
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")   # the log's months are Beijing months
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


# the chain's head, kept by a trigger on audit.log (migration 0027): one row, whatever the number
# of monthly partitions
_HEAD = "SELECT seq, row_hash FROM audit.head"
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
    archived_rows: int = 0          # rows of archived months, vouched for by their sealed records
    archived_months: tuple[str, ...] = ()


@dataclass(frozen=True)
class Archived:
    """A month taken out of the live log (``audit.archive``)."""

    month: datetime
    first_seq: int
    last_seq: int
    rows: int
    first_prev_hash: bytes
    last_hash: bytes
    detached_as: str
    seal: bytes

    @property
    def label(self) -> str:
        return self.month.astimezone(BEIJING).strftime("%Y-%m")


def archive_seal(key: bytes, month: datetime, first_seq: int, last_seq: int, rows: int,
                 first_prev_hash: bytes, last_hash: bytes) -> bytes:
    body = json.dumps(["audit-archive", month.astimezone(UTC).isoformat(), first_seq, last_seq,
                       rows, first_prev_hash.hex(), last_hash.hex()], separators=(",", ":"))
    return hmac.new(key, body.encode(), hashlib.sha256).digest()


def archived(conn: psycopg.Connection) -> list[Archived]:
    return [Archived(r[0], r[1], r[2], r[3], bytes(r[4]), bytes(r[5]), r[6], bytes(r[7]))
            for r in conn.execute(
                "SELECT month, first_seq, last_seq, rows, first_prev_hash, last_hash, "
                "detached_as, seal FROM audit.archive ORDER BY first_seq")]


def archive_start(conn: psycopg.Connection, key: bytes
                   ) -> tuple[bytes, int, int, tuple[str, ...], Verification | None]:
    """Where live verification starts: after the newest archived month. The archived months
    must be sealed by this key and form an unbroken chain prefix from seq 1."""
    prev, expected, rows = GENESIS, 1, 0
    months: list[str] = []
    for a in archived(conn):
        if not hmac.compare_digest(archive_seal(key, a.month, a.first_seq, a.last_seq, a.rows,
                                                a.first_prev_hash, a.last_hash), a.seal):
            return prev, expected, rows, tuple(months), Verification(
                False, 0, None, None, a.first_seq, f"archive record of {a.label} altered")
        if a.first_seq != expected or a.first_prev_hash != prev:
            return prev, expected, rows, tuple(months), Verification(
                False, 0, None, None, expected,
                f"archived months do not continue the chain at {a.label}")
        prev, expected, rows = a.last_hash, a.last_seq + 1, rows + a.rows
        months.append(a.label)
    return prev, expected, rows, tuple(months), None


@dataclass
class ChainWalk:
    """A walk along the chain: the next expected seq and link, rows seen."""

    prev: bytes
    expected: int
    rows: int = 0
    last_hash: bytes | None = None
    bad: Verification | None = None

    def step(self, key: bytes, rec: tuple[Any, ...]) -> bool:
        """Check one row (seq, at, *FIELDS, prev_hash, row_hash); False once the chain broke."""
        seq, at = rec[0], rec[1]
        entry = Entry(**dict(zip(FIELDS, rec[2:2 + len(FIELDS)], strict=True)))
        stored_prev, stored = bytes(rec[-2]), bytes(rec[-1])
        if seq != self.expected:
            self.bad = Verification(False, self.rows, seq, None, self.expected,
                                    f"missing row(s) {self.expected}..{seq - 1}"
                                    if seq > self.expected else f"row {seq} repeated")
        elif stored_prev != self.prev:
            self.bad = Verification(False, self.rows, seq, None, seq,
                                    "link to previous row broken")
        elif not hmac.compare_digest(seal(key, self.prev, seq, at, entry), stored):
            self.bad = Verification(False, self.rows, seq, None, seq, "row content altered")
        if self.bad is not None:
            return False
        self.prev, self.expected, self.rows, self.last_hash = stored, seq + 1, self.rows + 1, stored
        return True


ROWS_SQL = "SELECT seq, at, " + ", ".join(FIELDS) + ", prev_hash, row_hash FROM audit.log"


def verify(conn: psycopg.Connection, key: bytes, batch: int = 5000) -> Verification:
    """Recompute the chain: the archived months' sealed records, then every live row; the first
    row (or record) whose seal, link or sequence is wrong."""
    prev, expected, archived_rows, months, bad = archive_start(conn, key)
    if bad is not None:
        return bad
    walk = ChainWalk(prev, expected)
    with conn.cursor(name="audit_verify") if not conn.autocommit else conn.cursor() as cur:
        cur.execute(ROWS_SQL + " ORDER BY seq")
        while chunk := cur.fetchmany(batch):
            for rec in chunk:
                if not walk.step(key, rec):
                    assert walk.bad is not None
                    return replace(walk.bad, archived_rows=archived_rows, archived_months=months)
    head = walk.last_hash if walk.rows else (prev if archived_rows else None)
    return Verification(True, walk.rows, walk.expected - 1 if (walk.rows or archived_rows)
                        else None, head.hex() if head else None,
                        archived_rows=archived_rows, archived_months=months)


def verify_rows(key: bytes, record: Archived, rows: Iterator[tuple[Any, ...]]) -> Verification:
    """An archived month's rows (from its export file) against its sealed record."""
    walk = ChainWalk(record.first_prev_hash, record.first_seq)
    for rec in rows:
        if not walk.step(key, rec):
            assert walk.bad is not None
            return walk.bad
    if walk.rows != record.rows or walk.last_hash != record.last_hash:
        return Verification(False, walk.rows, walk.expected - 1, None, walk.expected,
                            f"the file ends at seq {walk.expected - 1}, the record at "
                            f"{record.last_seq}")
    return Verification(True, walk.rows, record.last_seq, record.last_hash.hex())


def export(conn: psycopg.Connection, since: datetime | None = None,
           until: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Rows for auditors (hashes in hex), oldest first."""
    cur = conn.execute(
        ROWS_SQL + " WHERE (%(since)s::timestamptz IS NULL OR at >= %(since)s) "
        "AND (%(until)s::timestamptz IS NULL OR at < %(until)s) ORDER BY seq",
        {"since": since, "until": until},
    )
    for rec in cur:
        yield row_dict(rec)


def row_dict(rec: tuple[Any, ...]) -> dict[str, Any]:
    """A row read by ``ROWS_SQL`` for auditors and archives: time in ISO form, hashes in hex."""
    out: dict[str, Any] = {"seq": rec[0], "at": rec[1].isoformat()}
    out.update(zip(FIELDS, rec[2:2 + len(FIELDS)], strict=True))
    out["prev_hash"], out["row_hash"] = bytes(rec[-2]).hex(), bytes(rec[-1]).hex()
    return out
