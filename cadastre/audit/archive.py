"""Archiving old months of the audit log (migration 0027: the log is partitioned by Beijing month).

``archive_before(conn, key, month)`` takes every live month before ``month`` (never the current
month) out of the live log, oldest first, in one transaction under the chain's lock:

1. each month's rows are verified, continuing the chain from the newest archived month (a
   tampered or missing row refuses the whole archive: nothing changes);
2. with ``out``, they are written to ``audit-YYYY-MM.jsonl.gz`` (the export's columns, so the
   file can be re-verified offline) with a ``.json`` record beside it, and the partition is
   dropped; without ``out`` the partition is detached as the plain table
   ``audit.archived_YYYYMM`` for ``pg_dump`` (drop it once dumped);
3. ``audit.archive`` gets the month's record, sealed with the audit key: first and last seq,
   rows, the hash its first row links to and its last row's hash. ``cadastre audit verify``
   starts after the newest record, so the live chain still verifies end to end;
4. the archive itself is an audit row.

``verify_file`` checks an exported month against its sealed record.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cadastre import audit
from cadastre.audit import serialize
from cadastre.errors import Conflict, InvalidInput, NotFound

AHEAD_MONTHS = 24
_PART = re.compile(r"^log_(\d{4})(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class ArchivedMonth:
    month: str            # YYYY-MM (Beijing time)
    rows: int
    first_seq: int | None
    last_seq: int | None
    file: Path | None     # the export, when written
    table: str | None     # the detached table, when kept


def parse_month(value: str) -> datetime:
    """``YYYY-MM`` → the first instant of that Beijing-time month."""
    m = _MONTH.match(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise InvalidInput("AUDIT_MONTH", "月份应为 YYYY-MM / the month is YYYY-MM (e.g. 2026-01)")
    return datetime(int(m.group(1)), int(m.group(2)), 1, tzinfo=audit.BEIJING)


def ensure_months(conn: psycopg.Connection, ahead: int = AHEAD_MONTHS) -> int:
    """Monthly partitions up to ``ahead`` months from now (rows waiting in the default partition
    move into theirs); returns the partitions made."""
    row = conn.execute("SELECT audit.ensure_months(%s)", (ahead,)).fetchone()
    return int(row[0]) if row else 0


def _live_months(conn: psycopg.Connection) -> list[tuple[str, datetime]]:
    """(partition name, month start) of the live monthly partitions, oldest first."""
    out = []
    for (name,) in conn.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                                "ON c.oid = i.inhrelid WHERE i.inhparent = 'audit.log'::regclass"
                                ).fetchall():
        m = _PART.match(name)
        if m:
            out.append((name, datetime(int(m.group(1)), int(m.group(2)), 1,
                                       tzinfo=audit.BEIJING)))
    return sorted(out, key=lambda p: p[1])


def _rows(conn: psycopg.Connection, table: str) -> Iterator[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql.SQL(audit.ROWS_SQL.replace("audit.log", "{}") + " ORDER BY seq").format(
            sql.Identifier("audit", table)))
        while chunk := cur.fetchmany(5000):
            yield from chunk


def _write_atomically(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def archive_before(conn: psycopg.Connection, key: bytes, before: str, actor: str,
                   out: Path | None = None,
                   progress: Callable[[str, int], None] | None = None) -> list[ArchivedMonth]:
    """Archive every live month before ``before`` (YYYY-MM); see the module docstring."""
    cutoff = parse_month(before)
    done: list[ArchivedMonth] = []
    written: list[Path] = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (audit.LOCK,))
            now_month = conn.execute("SELECT audit.month_start(now())").fetchone()[0]  # type: ignore[index]
            if cutoff > now_month:
                raise InvalidInput("AUDIT_MONTH_CURRENT", "不能归档当月或未来月份 / the current "
                                   "month (and later ones) cannot be archived")
            ensure_months(conn)
            stray = conn.execute("SELECT count(*) FROM audit.log_default WHERE at < %s",
                                 (cutoff,)).fetchone()
            if stray and stray[0]:
                raise Conflict("AUDIT_ROWS_OUTSIDE_MONTHS", f"{stray[0]} 条审计记录不在月分区中"
                               f" / {stray[0]} audit rows before that month lie outside the "
                               "monthly partitions (their months were archived before they were "
                               "written)")
            prev, expected, _, _, bad = audit.archive_start(conn, key)
            if bad is not None:
                raise Conflict("AUDIT_CHAIN_BROKEN", "审计链已损坏，不能归档 / the chain is "
                               f"broken: seq {bad.first_bad_seq}: {bad.reason}")
            walk = audit.ChainWalk(prev, expected)
            for table, month in _live_months(conn):
                if month >= cutoff:
                    continue
                label = month.astimezone(audit.BEIJING).strftime("%Y-%m")
                first_seq, first_prev, rows_before = walk.expected, walk.prev, walk.rows
                records: list[tuple[Any, ...]] = []
                for rec in _rows(conn, table):
                    if not walk.step(key, rec):
                        assert walk.bad is not None
                        raise Conflict("AUDIT_CHAIN_BROKEN", f"{label} 的审计链已损坏 / the chain "
                                       f"is broken in {label}: seq {walk.bad.first_bad_seq}: "
                                       f"{walk.bad.reason}")
                    records.append(rec)
                n = walk.rows - rows_before
                if progress:
                    progress(label, n)
                if n == 0:       # an empty month: nothing to vouch for
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("audit", table)))
                    done.append(ArchivedMonth(label, 0, None, None, None, None))
                    continue
                assert walk.last_hash is not None
                record = audit.Archived(month, first_seq, walk.expected - 1, n, first_prev,
                                        walk.last_hash, "", b"")
                file = kept = None
                conn.execute(sql.SQL("ALTER TABLE audit.log DETACH PARTITION {}").format(
                    sql.Identifier("audit", table)))
                if out is not None:
                    file = out / f"audit-{label}.jsonl.gz"
                    _write_atomically(file, partial(_gzip_lines, records=records), binary=True)
                    _write_atomically(out / f"audit-{label}.json", partial(
                        _dump_json, data=_record_json(record)))
                    written += [file, out / f"audit-{label}.json"]
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("audit", table)))
                    detached_as = f"file:{file.name}"
                else:
                    kept = f"archived_{table[4:]}"
                    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                        sql.Identifier("audit", table), sql.Identifier(kept)))
                    detached_as = f"audit.{kept}"
                conn.execute(
                    "INSERT INTO audit.archive (month, first_seq, last_seq, rows, first_prev_hash, "
                    "last_hash, archived_by, detached_as, seal) VALUES (%s, %s, %s, %s, %s, %s, "
                    "%s, %s, %s)",
                    (month, record.first_seq, record.last_seq, n, first_prev, record.last_hash,
                     actor, detached_as, audit.archive_seal(key, month, record.first_seq,
                                                            record.last_seq, n, first_prev,
                                                            record.last_hash)))
                done.append(ArchivedMonth(label, n, record.first_seq, record.last_seq, file,
                                          f"audit.{kept}" if kept else None))
            if not done:
                raise NotFound("AUDIT_NOTHING_TO_ARCHIVE", "没有可归档的月份 / no live month "
                               "before that one")
            audit.append(conn, key, audit.Entry(
                actor=actor, role="operator", action="audit.archive",
                target=",".join(m.month for m in done)[:200],
                result_count=sum(m.rows for m in done)))
    except BaseException:
        for path in written:          # the transaction rolled back: no file claims otherwise
            path.unlink(missing_ok=True)
        raise
    return done


def _dump_json(fh: Any, data: dict[str, Any]) -> None:
    json.dump(data, fh, ensure_ascii=False, indent=1)


def _gzip_lines(fh: Any, records: list[tuple[Any, ...]]) -> None:
    with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        for rec in records:
            gz.write(serialize.json_line(audit.row_dict(rec)).encode("utf-8"))


def _record_json(r: audit.Archived) -> dict[str, Any]:
    return {"month": r.label, "first_seq": r.first_seq, "last_seq": r.last_seq, "rows": r.rows,
            "first_prev_hash": r.first_prev_hash.hex(), "last_hash": r.last_hash.hex()}


def verify_file(conn: psycopg.Connection, key: bytes, path: Path) -> audit.Verification:
    """An exported month (``audit-YYYY-MM.jsonl.gz``) against its sealed record in the live
    database (the record, not the ``.json`` beside the file, is what vouches for it)."""
    m = re.match(r"^audit-(\d{4}-\d{2})\.jsonl\.gz$", path.name)
    if not m:
        raise InvalidInput("AUDIT_ARCHIVE_FILE", "文件名应为 audit-YYYY-MM.jsonl.gz / the file "
                           "is named audit-YYYY-MM.jsonl.gz")
    month = parse_month(m.group(1))
    record = next((a for a in audit.archived(conn) if a.month == month), None)
    if record is None:
        raise NotFound("AUDIT_ARCHIVE_NOT_FOUND", f"{m.group(1)} 未归档 / {m.group(1)} has no "
                       "archive record")

    def rows() -> Iterator[tuple[Any, ...]]:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                yield (d["seq"], datetime.fromisoformat(d["at"]),
                       *(d[f] for f in audit.FIELDS), bytes.fromhex(d["prev_hash"]),
                       bytes.fromhex(d["row_hash"]))

    try:
        return audit.verify_rows(key, record, rows())
    except (OSError, ValueError, KeyError, EOFError) as exc:
        return audit.Verification(False, 0, None, None, record.first_seq,
                                  f"unreadable archive file: {type(exc).__name__}")
