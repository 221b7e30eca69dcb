"""A registrar's decision on an import batch.

``accept`` writes the register in ONE transaction, set-based from the staged rows: change set of
kind ``import``, parcels (outline from their ZD_K_103 points) with boundary points and lines,
buildings, floors, units, parties (already encrypted at staging, matched to existing parties by
their keyed hashes), rights with their details and party links; then the outbox event, the
audit row and, last, the batch's decision. What the register already holds (codes, right ids)
is left as it is, so accepting the same data again writes nothing.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg

from cadastre import audit
from cadastre.errors import InvalidInput
from cadastre.exchange import accept_sql as q
from cadastre.exchange import bulk
from cadastre.exchange.checks import summary
from cadastre.exchange.staging import get_batch
from cadastre.register.rights import DETAIL_TABLE
from cadastre.register.versions import new_change
from cadastre.sharing import events


class ImportState(InvalidInput):
    code = "IMPORT_STATE"


def _decide(conn: psycopg.Connection, bid: uuid.UUID, status: str, allowed: tuple[str, ...],
            registrar: str, reason: str | None, change: int | None = None) -> None:
    cur = conn.execute(
        "UPDATE xchg.import_batch SET status = %s, decided_by = %s, decided_at = now(), "
        "decision_reason = %s, change_id = %s WHERE batch_id = %s AND status = ANY(%s)",
        (status, registrar, reason, change, bid, list(allowed)))
    if cur.rowcount != 1:
        raise ImportState(message="导入批次状态已变化 / the import batch changed meanwhile")


def _require(conn: psycopg.Connection, bid: uuid.UUID, allowed: tuple[str, ...]
             ) -> dict[str, Any]:
    batch = get_batch(conn, bid)
    conn.execute("SELECT 1 FROM xchg.import_batch WHERE batch_id = %s FOR UPDATE", (bid,))
    if batch["status"] not in allowed:
        raise ImportState(message=f"导入批次状态为 {batch['status']}，不能执行该操作 / the batch "
                          f"is {batch['status']}; expected {', '.join(allowed)}")
    return batch


def reject(conn: psycopg.Connection, bid: uuid.UUID, registrar: str, reason: str,
           audit_key: bytes) -> None:
    if not reason or not reason.strip():
        raise InvalidInput("REASON_REQUIRED", "驳回须说明理由 / a rejection needs a reason")
    allowed = ("validated", "invalid")
    with conn.transaction():
        _require(conn, bid, allowed)
        conn.execute("DELETE FROM xchg.import_row WHERE batch_id = %s", (bid,))
        audit.append(conn, audit_key, audit.Entry(actor=registrar, role="registrar",
                                                  action="import.reject", target=f"import:{bid}"))
        _decide(conn, bid, "rejected", allowed, registrar, reason.strip()[:2000])


def accept(conn: psycopg.Connection, bid: uuid.UUID, registrar: str, audit_key: bytes,
           note: str | None = None, timings: dict[str, float] | None = None,
           bulk_min_rows: int = bulk.MIN_ROWS) -> dict[str, Any]:
    """Apply a validated batch; returns the change set id (None: nothing new) and counts."""
    allowed = ("validated",)
    with conn.transaction():
        # accepts one at a time: a later one then skips what an overlapping earlier one wrote
        # (instead of failing on a unique index)
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cadastre.exchange.accept'))")
        batch = _require(conn, bid, allowed)
        report = conn.execute("SELECT report FROM xchg.import_batch WHERE batch_id = %s",
                              (bid,)).fetchone()[0]  # type: ignore[index]
        change: int | None = None
        written: dict[str, int] = {}
        if summary(report):
            change = new_change(conn, "import", registrar, note or f"import {batch['filename']}")
            written = _write(conn, bid, change, batch["srid"], report,
                             timings if timings is not None else {}, bulk_min_rows)
            county = conn.execute(
                "SELECT min(substr(code, 1, 6)) FROM xchg.import_row WHERE batch_id = %s",
                (bid,)).fetchone()[0]  # type: ignore[index]
            events.emit(conn, "register.imported", county=county,
                        refs={"batch_id": str(bid), "change_id": change})
        conn.execute("DELETE FROM xchg.import_row WHERE batch_id = %s", (bid,))
        audit.append(conn, audit_key, audit.Entry(
            actor=registrar, role="registrar", action="import.accept",
            target=f"import:{bid}", result_count=sum(written.values()),
            outcome="ok" if change else "unchanged"))
        _decide(conn, bid, "accepted", allowed, registrar, note, change)
    return {"change_id": change, "written": written}


# tables an accept writes → the report's entity whose new rows they receive
_INCOMING = {"cad.parcel": "parcel", "cad.boundary_point": "parcel", "cad.boundary_line": "parcel",
             "cad.building": "building", "cad.unit": "unit", "pii.party": "party",
             "cad.right_record": "right", "cad.right_party": "right"}


def _write(conn: psycopg.Connection, bid: uuid.UUID, change: int, srid: int,
           report: dict[str, Any], timings: dict[str, float],
           min_rows: int = bulk.MIN_ROWS) -> dict[str, int]:
    p: dict[str, Any] = {"b": bid, "c": change, "srid": srid}
    p["now"] = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]

    def run(name: str, sql: str, params: dict[str, Any] = p) -> int:
        t0 = time.perf_counter()
        n = conn.execute(sql, params).rowcount
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        return n

    t0 = time.perf_counter()
    bulk.tune(conn)
    new = {e: c.get("new", 0) for e, c in report.get("counts", {}).items()}
    deferred = bulk.defer_indexes(conn, {t: new.get(e, 0) for t, e in _INCOMING.items()},
                                  min_rows)
    timings["indexes"] = time.perf_counter() - t0
    for statement in q.NEW_ROWS:
        run("new_rows", statement)
    out = {"parcel": run("parcel", q.PARCELS)}
    # fresh rows: statistics for the joins that follow (ANALYZE samples; allowed in a transaction)
    run("analyze", "ANALYZE cad.parcel")
    run("boundary_point", q.BOUNDARY_POINTS)
    run("boundary_line", q.BOUNDARY_LINES)
    out["building"] = run("building", q.BUILDINGS)
    run("analyze", "ANALYZE cad.building")
    out["floor"] = run("floor", q.FLOORS)
    run("analyze", "ANALYZE cad.floor")
    out["unit"] = run("unit", q.UNITS)
    out["party"] = run("party", q.PARTIES)
    out["right"] = run("right", q.RIGHTS)
    run("analyze", "ANALYZE cad.right_record")
    run("analyze", "ANALYZE pii.party")
    kinds = {k for (k,) in conn.execute(
        "SELECT DISTINCT kind FROM cad.right_record WHERE change_id = %s", (change,))}
    for table in sorted(set(DETAIL_TABLE.values())):
        of_table = [k for k, t in DETAIL_TABLE.items() if t == table and k in kinds]
        if of_table:
            run("details", q.detail_sql(table), {**p, "k": of_table})
    for statement in q.RIGHT_PARTIES:
        out["right_party"] = run("right_party", statement)
    t0 = time.perf_counter()
    bulk.rebuild(conn, deferred)
    timings["indexes"] += time.perf_counter() - t0
    return out
