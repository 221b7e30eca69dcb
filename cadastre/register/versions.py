"""Registrar edits as new versions: the current row is closed, a new one written, nothing deleted.

Triggers on the tables queue the touched extents for the tile cache (migration 0002).
"""

from __future__ import annotations

import uuid

import psycopg
from shapely import wkt as shapely_wkt
from shapely.geometry import MultiPolygon, Polygon

from cadastre.codes import county_of
from cadastre.errors import InvalidInput, NotFound
from cadastre.register.boundary import clockwise, ring_points


def new_change(conn: psycopg.Connection, kind: str, actor: str, note: str | None = None) -> int:
    row = conn.execute("INSERT INTO cad.change_set (kind, actor, note) VALUES (%s, %s, %s) "
                       "RETURNING id", (kind, actor, note)).fetchone()
    assert row is not None
    return int(row[0])


def replace_parcel_geometry(conn: psycopg.Connection, parcel_code: str, geometry_wkt: str,
                            actor: str, note: str | None = None) -> int:
    """New version of a parcel with a new boundary (same code), boundary points and lines
    re-derived. Returns the change set id. Runs in one transaction."""
    geom = shapely_wkt.loads(geometry_wkt)
    if isinstance(geom, MultiPolygon) and len(geom.geoms) == 1:
        geom = geom.geoms[0]
    if not isinstance(geom, Polygon) or not geom.is_valid or geom.is_empty:
        raise InvalidInput("GEOMETRY_INVALID", "宗地边界须为有效的单个多边形 / the boundary must "
                           "be one valid polygon")
    geom = clockwise(geom)
    with conn.transaction():
        row = conn.execute(
            "SELECT version_id, srid FROM cad.parcel WHERE parcel_code = %s AND valid_to IS NULL "
            "FOR UPDATE", (parcel_code,)).fetchone()
        if row is None:
            raise NotFound("PARCEL_NOT_FOUND", "无此现势宗地 / no current parcel with that code")
        version_id, srid = row
        change = new_change(conn, "edit", actor, note)
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
        conn.execute(
            "UPDATE cad.parcel SET valid_to = %s, retired_by = %s WHERE version_id = %s",
            (now, change, version_id))
        conn.execute(
            """INSERT INTO cad.parcel (feature_id, parcel_code, seat, compound_name, land_use,
                   right_type, right_nature, registered_area, neighbour_north, neighbour_east,
                   neighbour_south, neighbour_west, map_sheet, srid, geom, valid_from, change_id)
               SELECT feature_id, parcel_code, seat, compound_name, land_use, right_type,
                   right_nature, registered_area, neighbour_north, neighbour_east, neighbour_south,
                   neighbour_west, map_sheet, srid,
                   ST_Multi(ST_GeomFromText(%s, %s)), %s, %s
               FROM cad.parcel WHERE version_id = %s""",
            (geom.wkt, srid, now, change, version_id))
        replace_boundary(conn, parcel_code, geom, srid, now, change)
    return change


def replace_boundary(conn: psycopg.Connection, parcel_code: str, geom: Polygon, srid: int,
                      now: object, change: int) -> None:
    for table in ("cad.boundary_point", "cad.boundary_line"):
        conn.execute(f"UPDATE {table} SET valid_to = %s, retired_by = %s "
                     "WHERE parcel_code = %s AND valid_to IS NULL", (now, change, parcel_code))
    pts = ring_points(geom)
    for k, (x, y) in enumerate(pts, start=1):
        nx, ny = pts[k % len(pts)]
        conn.execute(
            "INSERT INTO cad.boundary_point (feature_id, parcel_code, county_code, point_no, "
            "seq, ring_no, point_type, x_north, y_east, srid, geom, valid_from, change_id) "
            "VALUES (%s, %s, %s, %s, %s, 1, 1, round(%s::numeric, 3), round(%s::numeric, 3), "
            "%s, ST_SetSRID(ST_MakePoint(%s, %s), %s), %s, %s)",
            (uuid.uuid4(), parcel_code, county_of(parcel_code), f"J{k}", k, y, x, srid, x, y,
             srid, now, change))
        conn.execute(
            "INSERT INTO cad.boundary_line (feature_id, parcel_code, start_point_no, "
            "end_point_no, length, line_nature, srid, geom, valid_from, change_id) VALUES "
            "(%s, %s, %s, %s, round(ST_Length(ST_SetSRID(ST_MakeLine(ST_MakePoint(%s, %s), "
            "ST_MakePoint(%s, %s)), %s))::numeric, 3), 1, %s, ST_SetSRID(ST_MakeLine("
            "ST_MakePoint(%s, %s), ST_MakePoint(%s, %s)), %s), %s, %s)",
            (uuid.uuid4(), parcel_code, f"J{k}", f"J{k % len(pts) + 1}", x, y, nx, ny, srid, srid,
             x, y, nx, ny, srid, now, change))
