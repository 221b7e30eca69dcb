"""A registrar's decision on a survey submission.

``accept`` applies everything in ONE transaction: old versions closed (never deleted), new
versions written, lineage recorded, boundary points re-derived, the submission marked accepted
with who decided. The submission row is updated last, so a crash or kill at any point before
COMMIT leaves the registry exactly as it was. Triggers queue the touched tiles for invalidation.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from shapely import wkb as shapely_wkb
from shapely.geometry import MultiPolygon, Polygon

from cadastre.codes import county_of
from cadastre.errors import InvalidInput
from cadastre.register.boundary import clockwise
from cadastre.register.versions import new_change, replace_boundary
from cadastre.sharing import events
from cadastre.store.db import scalar
from cadastre.survey.acceptability import require_acceptable
from cadastre.survey.diff import Diff
from cadastre.survey.submission import get_submission


class DecisionConflict(InvalidInput):
    code = "SUBMISSION_STATE"


def _require_status(conn: psycopg.Connection, sid: uuid.UUID, allowed: tuple[str, ...]
                    ) -> dict[str, Any]:
    sub = get_submission(conn, sid)
    if sub["status"] not in allowed:
        raise DecisionConflict(message=f"提交状态为 {sub['status']}，不能执行该操作 / the "
                               f"submission is {sub['status']}; expected {', '.join(allowed)}")
    return sub


def _record_decision(conn: psycopg.Connection, sid: uuid.UUID, status: str,
                     allowed: tuple[str, ...], registrar: str, reason: str | None,
                     change: int | None = None) -> None:
    """The submission row's decision, written last in the decision's transaction, and only if
    nobody decided meanwhile."""
    cur = conn.execute(
        "UPDATE cad.survey_submission SET status = %s, decided_by = %s, decided_at = now(), "
        "decision_reason = %s, change_id = coalesce(%s, change_id) "
        "WHERE submission_id = %s AND status = ANY(%s)",
        (status, registrar, reason, change, sid, list(allowed)))
    if cur.rowcount != 1:
        raise DecisionConflict(message="提交状态已变化 / the submission changed meanwhile")


def reject(conn: psycopg.Connection, sid: uuid.UUID, registrar: str, reason: str) -> None:
    if not reason or not reason.strip():
        raise InvalidInput("REASON_REQUIRED", "驳回须说明理由 / a rejection needs a reason")
    allowed = ("validated", "invalid")
    with conn.transaction():
        _require_status(conn, sid, allowed)
        _record_decision(conn, sid, "rejected", allowed, registrar, reason.strip()[:2000])


def accept(conn: psycopg.Connection, sid: uuid.UUID, registrar: str,
           note: str | None = None) -> dict[str, Any]:
    """Apply a validated submission; returns the diff summary and the change set id."""
    allowed = ("validated",)
    with conn.transaction():
        sub = _require_status(conn, sid, allowed)
        # the same findings validation reported (a new parcel that cannot be coded, values
        # the registry cannot hold): refused with the first one's code
        diff = require_acceptable(conn, sid, bool(sub["options"].get("new_parcels")))
        change = new_change(conn, "survey", registrar, note or f"survey {sub['filename']}")
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
        _apply_parcels(conn, sid, diff, change, now)
        _apply_buildings_and_units(conn, sid, change, now)
        # last: the submission row (a kill before this line's COMMIT changes nothing)
        _record_decision(conn, sid, "accepted", allowed, registrar, note, change)
        codes = [p.code for p in diff.parcels if p.code]
        events.emit(conn, "survey.accepted", county=county_of(codes[0]) if codes else None,
                    refs={"submission_id": str(sid), "change_id": change})
    return {"change_id": change, "diff": diff.summary()}


def _apply_parcels(conn: psycopg.Connection, sid: uuid.UUID, diff: Diff, change: int,
                   now: Any) -> None:
    for p in diff.parcels:
        if p.change in ("changed", "retired") and p.version_id is not None:
            conn.execute("UPDATE cad.parcel SET valid_to = %s, retired_by = %s "
                         "WHERE version_id = %s", (now, change, p.version_id))
        if p.change == "retired":
            for table in ("cad.boundary_point", "cad.boundary_line"):
                conn.execute(f"UPDATE {table} SET valid_to = %s, retired_by = %s "
                             "WHERE parcel_code = %s AND valid_to IS NULL", (now, change, p.code))
    feature_of: dict[str, uuid.UUID] = {}
    for p in diff.parcels:
        if p.change not in ("new", "changed") or p.idx is None:
            continue
        assert p.code is not None
        fid = p.feature_id if (p.change == "changed" and p.feature_id) else uuid.uuid4()
        feature_of[p.code] = fid
        base = p.version_id
        if base is None and p.parents:   # a new parcel inherits attributes from its parent
            base = scalar(conn, "SELECT version_id FROM cad.parcel WHERE parcel_code = %s "
                          "ORDER BY valid_from DESC LIMIT 1", (p.parents[0],))
        row = conn.execute(
            """INSERT INTO cad.parcel (feature_id, parcel_code, seat, compound_name, land_use,
                   right_type, right_nature, registered_area, neighbour_north, neighbour_east,
                   neighbour_south, neighbour_west, map_sheet, srid, geom, valid_from,
                   change_id)
               SELECT %(fid)s, %(code)s,
                   coalesce(f.props->>'seat', b.seat), coalesce(f.props->>'name', b.compound_name),
                   coalesce(f.props->>'land_use', b.land_use, '0701'),
                   coalesce((f.props->>'right_type')::smallint, b.right_type, 3),
                   b.right_nature,
                   coalesce((f.props->>'declared_area')::numeric,
                            round(ST_Area(f.geom)::numeric, 2)),
                   b.neighbour_north, b.neighbour_east, b.neighbour_south, b.neighbour_west,
                   coalesce(f.props->>'map_sheet', b.map_sheet), f.srid,
                   ST_Multi(f.geom), %(now)s, %(change)s
               FROM cad.survey_feature f
               LEFT JOIN cad.parcel b ON b.version_id = %(base)s
               WHERE f.submission_id = %(sid)s AND f.idx = %(idx)s
               RETURNING ST_AsBinary(ST_GeometryN(geom, 1)), srid""",
            {"fid": fid, "code": p.code, "now": now, "change": change, "base": base,
             "sid": sid, "idx": p.idx}).fetchone()
        assert row is not None
        poly = shapely_wkb.loads(bytes(row[0]))
        if isinstance(poly, MultiPolygon):
            poly = poly.geoms[0]
        assert isinstance(poly, Polygon)
        replace_boundary(conn, p.code, clockwise(poly), row[1], now, change)
    for parent, child, event in diff.lineage:
        parent_fid = scalar(conn, "SELECT feature_id FROM cad.parcel WHERE parcel_code = %s "
                            "ORDER BY valid_from DESC LIMIT 1", (parent,))
        child_fid = feature_of.get(child)
        if child_fid is not None and child_fid != parent_fid:
            conn.execute("INSERT INTO cad.lineage (entity, parent_feature_id, child_feature_id, "
                         "event, change_id) VALUES ('parcel', %s, %s, %s, %s) "
                         "ON CONFLICT DO NOTHING", (parent_fid, child_fid, event, change))


def _apply_buildings_and_units(conn: psycopg.Connection, sid: uuid.UUID, change: int,
                               now: Any) -> None:
    """Buildings and units by code: changed ones get a new version, new ones are added."""
    params = {"sid": sid, "now": now, "change": change}
    conn.execute("""
        UPDATE cad.building b SET valid_to = %(now)s, retired_by = %(change)s
        FROM cad.survey_feature f
        WHERE f.submission_id = %(sid)s AND f.kind = 'building' AND b.valid_to IS NULL
          AND b.building_code = f.props->>'building_code'
          AND ST_HausdorffDistance(f.geom, b.geom) > 0.001""", params)
    conn.execute("""
        INSERT INTO cad.building (feature_id, building_code, name, floors_total, floors_above,
            floors_below, height, srid, geom, valid_from, change_id)
        SELECT coalesce(old.feature_id, gen_random_uuid()), f.props->>'building_code',
               coalesce(f.props->>'name', old.name),
               coalesce((f.props->>'floors_above')::int, old.floors_above, 1)
                 + coalesce((f.props->>'floors_below')::int, old.floors_below, 0),
               coalesce((f.props->>'floors_above')::int, old.floors_above, 1),
               coalesce((f.props->>'floors_below')::int, old.floors_below, 0),
               coalesce((f.props->>'height')::numeric, old.height),
               f.srid, ST_Multi(f.geom), %(now)s, %(change)s
        FROM cad.survey_feature f
        LEFT JOIN LATERAL (SELECT * FROM cad.building o
                           WHERE o.building_code = f.props->>'building_code'
                           ORDER BY o.valid_from DESC LIMIT 1) old ON true
        WHERE f.submission_id = %(sid)s AND f.kind = 'building' AND f.props ? 'building_code'
          AND NOT EXISTS (SELECT 1 FROM cad.building c WHERE c.valid_to IS NULL
                          AND c.building_code = f.props->>'building_code')""", params)
    conn.execute("""
        UPDATE cad.unit u SET valid_to = %(now)s, retired_by = %(change)s
        FROM cad.survey_feature f
        WHERE f.submission_id = %(sid)s AND f.kind = 'unit' AND u.valid_to IS NULL
          AND u.unit_code = f.props->>'unit_code'
          AND ST_HausdorffDistance(f.geom, u.geom) > 0.001""", params)
    conn.execute("""
        INSERT INTO cad.unit (feature_id, unit_code, county_code, floor_no, floor_count,
            room_no, seat, use, building_area, inner_area, shared_area, base_elevation, height,
            srid, geom, valid_from, change_id)
        SELECT coalesce(old.feature_id, gen_random_uuid()), f.props->>'unit_code',
               left(f.props->>'unit_code', 6),
               coalesce((f.props->>'floor_no')::int, old.floor_no, 1),
               coalesce((f.props->>'floor_count')::int, old.floor_count, 1),
               coalesce(f.props->>'room_no', old.room_no, right(f.props->>'unit_code', 4)),
               coalesce(f.props->>'seat', old.seat),
               coalesce(f.props->>'use', old.use, '10'),
               coalesce((f.props->>'building_area')::numeric, old.building_area,
                        round(ST_Area(f.geom)::numeric, 2)),
               coalesce((f.props->>'inner_area')::numeric, old.inner_area),
               coalesce((f.props->>'shared_area')::numeric, old.shared_area),
               coalesce((f.props->>'base_elevation')::numeric, old.base_elevation, 0),
               coalesce((f.props->>'height')::numeric, old.height, 3),
               f.srid, ST_Multi(f.geom), %(now)s, %(change)s
        FROM cad.survey_feature f
        LEFT JOIN LATERAL (SELECT * FROM cad.unit o WHERE o.unit_code = f.props->>'unit_code'
                           ORDER BY o.valid_from DESC LIMIT 1) old ON true
        WHERE f.submission_id = %(sid)s AND f.kind = 'unit' AND f.props ? 'unit_code'
          AND NOT EXISTS (SELECT 1 FROM cad.unit c WHERE c.valid_to IS NULL
                          AND c.unit_code = f.props->>'unit_code')""", params)
