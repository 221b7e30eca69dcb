"""Streaming the audit trail out for auditors: CSV or JSON lines, in seq order, bounded memory.

Rows are read through a server-side cursor in batches (``cadastre.audit.serialize`` reads the whole
result at once), so a log of millions of rows streams in constant memory. The columns are the
chain's own (``cadastre.audit.FIELDS``) plus seq, time and both hashes, so an export can be
re-verified offline by whoever holds the audit key.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg

from cadastre import audit
from cadastre.errors import InvalidInput

COLUMNS = ("seq", "at", *audit.FIELDS, "prev_hash", "row_hash")
FORMATS = ("csv", "jsonl", "json")


def parse_time(value: str | None, what: str) -> datetime | None:
    """ISO date or date-time (naive = server time zone) for since/until."""
    if value is None or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("INVALID_TIME", f"{what} 应为 ISO 日期或时间 / {what} must be an ISO "
                           "date or date-time (2026-01-31 or 2026-01-31T08:00:00+08:00)") from None


def count(conn: psycopg.Connection, since: datetime | None = None,
          until: datetime | None = None) -> int:
    row = conn.execute(
        "SELECT count(*) FROM audit.log WHERE (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR at < %(until)s)",
        {"since": since, "until": until}).fetchone()
    return int(row[0]) if row else 0


def rows(conn: psycopg.Connection, since: datetime | None = None, until: datetime | None = None,
         batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Rows oldest first, hashes in hex. Runs in a transaction of its own on ``conn`` (a named
    cursor needs one); ``conn`` must not be in autocommit mode."""
    with conn.cursor(name="audit_export") as cur:
        cur.itersize = batch
        cur.execute(
            audit.ROWS_SQL + " WHERE (%(since)s::timestamptz IS NULL OR at >= %(since)s) "
            "AND (%(until)s::timestamptz IS NULL OR at < %(until)s) ORDER BY seq",
            {"since": since, "until": until})
        for rec in cur:
            yield audit.row_dict(rec)


def csv_header() -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(COLUMNS)
    return buf.getvalue()


def csv_line(row: dict[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        ["" if row[c] is None else row[c] for c in COLUMNS])
    return buf.getvalue()


def json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
