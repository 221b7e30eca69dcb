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
from cadastre.exchange.checks import PARTY_OF_RIGHT, summary
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
           note: str | None = None, timings: dict[str, float] | None = None) -> dict[str, Any]:
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
            written = _write(conn, bid, change, batch["srid"],
                             timings if timings is not None else {})
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


def _write(conn: psycopg.Connection, bid: uuid.UUID, change: int, srid: int,
           timings: dict[str, float]) -> dict[str, int]:
    p = {"b": bid, "c": change, "srid": srid}
    now = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    p["now"] = now

    def run(name: str, sql: str, params: dict[str, Any] = p) -> int:
        t0 = time.perf_counter()
        n = conn.execute(sql, params).rowcount
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        return n

    out = {"parcel": run("parcel", PARCELS)}
    # fresh rows: statistics for the joins that follow (ANALYZE samples; allowed in a transaction)
    run("analyze", "ANALYZE cad.parcel")
    run("boundary_point", BOUNDARY_POINTS)
    run("boundary_line", BOUNDARY_LINES)
    out["building"] = run("building", BUILDINGS)
    run("analyze", "ANALYZE cad.building")
    out["floor"] = run("floor", FLOORS)
    run("analyze", "ANALYZE cad.floor")
    out["unit"] = run("unit", UNITS)
    out["party"] = run("party", PARTIES)
    out["right"] = run("right", RIGHTS)
    for table in sorted(set(DETAIL_TABLE.values())):
        kinds = [k for k, t in DETAIL_TABLE.items() if t == table]
        run(table,
            f"INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table}, x.attrs || "
            "jsonb_build_object('right_version_id', r.version_id, 'county_code', r.county_code, "
            "'cancelled_right_id', "
            "coalesce(x.attrs->>'cancelled_right_id', x.right_id::text)))).* "
            "FROM xchg.import_row x JOIN cad.right_record r ON r.right_id = x.right_id AND "
            "r.change_id = %(c)s WHERE x.batch_id = %(b)s AND x.entity = 'right' "
            "AND r.kind = ANY(%(k)s)", {**p, "k": kinds})
    out["right_party"] = run("right_party", RIGHT_PARTIES)
    return out


_SRID = "coalesce((x.attrs->>'srid')::int, %(srid)s)"
_NEW = ("x.batch_id = %(b)s AND x.entity = '{e}' AND NOT EXISTS (SELECT 1 FROM cad.{t} c "
        "WHERE c.valid_to IS NULL AND c.{col} = x.code::bpchar)")

PARCELS = f"""
WITH pts AS (
    SELECT code, coalesce((attrs->>'ring_no')::int, 1) AS ring, (attrs->>'seq')::int AS seq,
           ST_MakePoint((attrs->>'y_east')::float8, (attrs->>'x_north')::float8) AS pt
    FROM xchg.import_row WHERE batch_id = %(b)s AND entity = 'parcel_point'),
lines AS (
    SELECT code, ring, ST_MakeLine(array_agg(pt ORDER BY seq)) AS line FROM pts
    GROUP BY code, ring),
closed AS (
    SELECT code, ring, CASE WHEN ST_IsClosed(line) THEN line
                            ELSE ST_AddPoint(line, ST_StartPoint(line)) END AS line FROM lines),
polys AS (
    SELECT code, ST_MakePolygon(max(line) FILTER (WHERE ring = 1),
               coalesce(array_agg(line ORDER BY ring) FILTER (WHERE ring > 1), '{{}}')) AS poly
    FROM closed GROUP BY code)
INSERT INTO cad.parcel (feature_id, parcel_code, seat, compound_name, land_use, right_type,
    right_nature, registered_area, neighbour_north, neighbour_east, neighbour_south,
    neighbour_west, map_sheet, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), x.code, v.seat, v.compound_name, v.land_use, v.right_type,
       v.right_nature, v.registered_area, v.neighbour_north, v.neighbour_east,
       v.neighbour_south, v.neighbour_west, v.map_sheet, {_SRID},
       ST_Multi(ST_SetSRID(g.poly, {_SRID})), %(now)s, %(c)s
FROM xchg.import_row x
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.parcel, x.attrs) v
JOIN polys g ON g.code = x.code
WHERE {_NEW.format(e='parcel', t='parcel', col='parcel_code')}
"""

# J1 is the north-west-most vertex, points clockwise (as cadastre.register.boundary numbers them)
_RING_POINTS = """
WITH ring AS (
    SELECT parcel_code, srid, ST_ExteriorRing(ST_ForcePolygonCW(ST_GeometryN(geom, 1))) AS r
    FROM cad.parcel WHERE change_id = %(c)s),
pts AS (
    SELECT parcel_code, srid, (d).path[1] AS k, (d).geom AS g, ST_NPoints(r) - 1 AS n
    FROM ring, ST_DumpPoints(r) d),
start AS (
    SELECT DISTINCT ON (parcel_code) parcel_code, k AS k0 FROM pts WHERE k <= n
    ORDER BY parcel_code, ST_Y(g) DESC, ST_X(g) ASC),
num AS (
    SELECT pts.*, ((k - k0 + n) %% n) + 1 AS seq FROM pts JOIN start USING (parcel_code)
    WHERE k <= n)
"""
BOUNDARY_POINTS = _RING_POINTS + """
INSERT INTO cad.boundary_point (feature_id, parcel_code, county_code, point_no, seq, ring_no,
    point_type, x_north, y_east, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), parcel_code, left(parcel_code, 6), 'J' || seq, seq, 1, 1,
       round(ST_Y(g)::numeric, 3),
       round(ST_X(g)::numeric, 3), srid, ST_SetSRID(g, srid), %(now)s, %(c)s FROM num
"""
BOUNDARY_LINES = _RING_POINTS + """
INSERT INTO cad.boundary_line (feature_id, parcel_code, start_point_no, end_point_no, length,
    line_nature, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), a.parcel_code, 'J' || a.seq, 'J' || b.seq,
       round(ST_Distance(a.g, b.g)::numeric, 3), 1, a.srid,
       ST_SetSRID(ST_MakeLine(a.g, b.g), a.srid), %(now)s, %(c)s
FROM num a JOIN num b ON b.parcel_code = a.parcel_code AND b.seq = a.seq %% a.n + 1
"""

BUILDINGS = f"""
INSERT INTO cad.building (feature_id, building_code, name, project_name, floors_total,
    floors_above, floors_below, height, ground_elevation, structure, planned_use,
    completion_date, floor_area, footprint_area, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), x.code, v.name, v.project_name,
       coalesce(v.floors_above, v.floors_total - coalesce(v.floors_below, 0))
         + coalesce(v.floors_below, 0),
       coalesce(v.floors_above, v.floors_total - coalesce(v.floors_below, 0)),
       coalesce(v.floors_below, 0), v.height, coalesce(v.ground_elevation, 0), v.structure,
       v.planned_use, v.completion_date, v.floor_area, v.footprint_area, {_SRID},
       coalesce(ST_Multi(ST_GeomFromText(x.attrs->>'geom', {_SRID})), par.geom), %(now)s, %(c)s
FROM xchg.import_row x
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.building, x.attrs - 'geom') v
LEFT JOIN cad.parcel par ON par.valid_to IS NULL
    AND par.parcel_code = substr(x.code, 1, 19)::bpchar
WHERE {_NEW.format(e='building', t='building', col='building_code')}
"""

FLOORS = f"""
INSERT INTO cad.floor (feature_id, building_code, floor_no, floor_label, base_elevation,
    storey_height, floor_area, srid, geom, valid_from, change_id)
SELECT gen_random_uuid(), x.code, v.floor_no, v.floor_label,
       coalesce(v.base_elevation, b.ground_elevation
                + (v.floor_no - CASE WHEN v.floor_no > 0 THEN 1 ELSE 0 END)
                  * coalesce(v.storey_height, 3)),
       coalesce(v.storey_height, 3), v.floor_area, {_SRID},
       coalesce(ST_Multi(ST_GeomFromText(x.attrs->>'geom', {_SRID})), b.geom), %(now)s, %(c)s
FROM xchg.import_row x
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.floor, x.attrs - 'geom') v
JOIN cad.building b ON b.valid_to IS NULL AND b.building_code = x.code::bpchar
WHERE x.batch_id = %(b)s AND x.entity = 'floor' AND NOT EXISTS (SELECT 1 FROM cad.floor c
    WHERE c.valid_to IS NULL AND c.building_code = x.code::bpchar AND c.floor_no = v.floor_no)
"""

UNITS = f"""
INSERT INTO cad.unit (feature_id, unit_code, county_code, floor_no, floor_count, room_no, seat,
    use, house_type, house_nature, layout, building_area, inner_area, shared_area,
    shared_coefficient, land_share_area, base_elevation, height, srid, geom, valid_from,
    change_id)
SELECT gen_random_uuid(), x.code, left(x.code, 6), v.floor_no, coalesce(v.floor_count, 1),
       v.room_no, v.seat,
       v.use, v.house_type, v.house_nature, v.layout, v.building_area, v.inner_area,
       v.shared_area, v.shared_coefficient, v.land_share_area,
       coalesce(v.base_elevation, f.base_elevation, 0),
       coalesce(v.height, f.storey_height, 3), {_SRID},
       coalesce(ST_Multi(ST_GeomFromText(x.attrs->>'geom', {_SRID})), f.geom, b.geom),
       %(now)s, %(c)s
FROM xchg.import_row x
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.unit, x.attrs - 'geom') v
JOIN cad.building b ON b.valid_to IS NULL
    AND b.building_code = substr(x.code, 1, 24)::bpchar
LEFT JOIN cad.floor f ON f.valid_to IS NULL AND f.building_code = b.building_code
    AND f.floor_no = v.floor_no
WHERE {_NEW.format(e='unit', t='unit', col='unit_code')}
"""

PARTIES = """
INSERT INTO pii.party (party_id, party_type, id_type, name_enc, name_hash, id_number_enc,
    id_number_hash, phone_enc, phone_hash, address_enc)
SELECT DISTINCT ON (x.name_hash, x.id_number_hash) gen_random_uuid(),
       coalesce((x.attrs->>'party_type')::smallint, 1),
       coalesce((x.attrs->>'id_type')::smallint, 1),
       x.name_enc, x.name_hash, x.id_number_enc, x.id_number_hash, x.phone_enc, x.phone_hash,
       x.address_enc
FROM xchg.import_row x
WHERE x.batch_id = %(b)s AND x.entity = 'party' AND NOT EXISTS (SELECT 1 FROM pii.party p
    WHERE p.id_number_hash = x.id_number_hash AND p.name_hash = x.name_hash)
ORDER BY x.name_hash, x.id_number_hash, x.n
"""

RIGHTS = """
INSERT INTO cad.right_record (right_id, kind, unit_code, business_no, registration_type,
    right_type, registration_reason, certificate_no, registry_office, registrar_name,
    registered_at, right_start, right_end, status, remark, valid_from, change_id, county_code)
SELECT x.right_id, k.kind, x.code, v.business_no, v.registration_type, v.right_type,
       v.registration_reason, v.certificate_no, v.registry_office, v.registrar_name,
       v.registered_at, v.right_start, v.right_end, 1, v.remark,
       least(v.registered_at, %(now)s), %(c)s, left(x.code, 6)
FROM xchg.import_row x
JOIN (VALUES ('QLT_FW_FDCQ_YZ', 'ownership'), ('QLF_QL_JSYDSYQ', 'land_use'),
             ('QLF_QL_DYAQ', 'mortgage'), ('QLF_QL_YGDJ', 'pre_notice'),
             ('QLF_QL_CFDJ', 'seizure'), ('QLF_QL_YYDJ', 'objection'),
             ('QLF_QL_DYIQ', 'easement'), ('QLF_QL_ZXDJ', 'cancellation')) k(tbl, kind)
    ON k.tbl = x.tbl
CROSS JOIN LATERAL jsonb_populate_record(NULL::cad.right_record, x.attrs - 'right_id') v
WHERE x.batch_id = %(b)s AND x.entity = 'right' AND v.status = 1
  AND NOT EXISTS (SELECT 1 FROM cad.right_record c WHERE c.right_id = x.right_id)
"""

RIGHT_PARTIES = f"""
INSERT INTO cad.right_party (right_version_id, county_code, party_id, role, seq, share,
    co_ownership)
SELECT rec.version_id, rec.county_code, p.party_id, coalesce((x.attrs->>'role')::smallint, 1),
       coalesce((x.attrs->>'seq')::smallint, 1), x.attrs->>'share',
       (x.attrs->>'co_ownership')::smallint
FROM xchg.import_row x
JOIN xchg.import_row r ON r.batch_id = x.batch_id AND r.entity = 'right' AND {PARTY_OF_RIGHT}
JOIN cad.right_record rec ON rec.right_id = r.right_id AND rec.change_id = %(c)s
CROSS JOIN LATERAL (SELECT party_id FROM pii.party q WHERE q.id_number_hash = x.id_number_hash
    AND q.name_hash = x.name_hash ORDER BY q.created_at, q.party_id LIMIT 1) p
WHERE x.batch_id = %(b)s AND x.entity = 'party'
ON CONFLICT DO NOTHING
"""
