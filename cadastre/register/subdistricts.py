"""Cadastral subdistricts (地籍子区): the polygons new parcels take the first 12 characters of
their code from (county, 地籍区, 地籍子区; GB/T 37346)."""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import shapely
from shapely.geometry import MultiPolygon, Polygon

from cadastre.errors import InvalidInput

__all__ = ["add_subdistrict", "list_subdistricts", "seed_from_parcels"]

_ZONE = re.compile(r"\d{12}")


def add_subdistrict(conn: psycopg.Connection, zone_code: str, geometry: dict[str, Any] | str,
                    srid: int, actor: str, name: str | None = None) -> None:
    """Add (or redraw) a subdistrict from a GeoJSON polygon (or WKT) in ``srid``."""
    if not _ZONE.fullmatch(zone_code):
        raise InvalidInput("SUBDISTRICT_CODE_INVALID", "地籍子区代码应为12位数字（县6+地籍区3+"
                           "地籍子区3）/ a subdistrict code has 12 digits (county 6, district 3, "
                           "subdistrict 3)")
    try:
        geom = (shapely.from_wkt(geometry) if isinstance(geometry, str)
                else shapely.geometry.shape(geometry))
    except (shapely.errors.ShapelyError, ValueError, TypeError, KeyError, AttributeError):
        raise InvalidInput("GEOMETRY_INVALID", "地籍子区图形无法读取 / the subdistrict geometry "
                           "cannot be read") from None
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    if not isinstance(geom, MultiPolygon) or not geom.is_valid or geom.is_empty:
        raise InvalidInput("GEOMETRY_INVALID", "地籍子区应为有效的面 / a subdistrict is a valid "
                           "polygon")
    conn.execute(
        "INSERT INTO cad.cadastral_subdistrict (zone_code, name, srid, geom, created_by) "
        "VALUES (%s, %s, %s, ST_SetSRID(ST_GeomFromWKB(%s), %s), %s) "
        "ON CONFLICT (zone_code) DO UPDATE SET name = excluded.name, srid = excluded.srid, "
        "geom = excluded.geom, created_by = excluded.created_by, created_at = now()",
        (zone_code, name, srid, shapely.to_wkb(geom), srid, actor))


def list_subdistricts(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT zone_code, name, srid, round(ST_Area(geom)::numeric, 2)::float8, "
        "ST_AsGeoJSON(ST_Transform(ST_Envelope(geom), 4326), 6) "
        "FROM cad.cadastral_subdistrict ORDER BY zone_code").fetchall()
    return [{"zone_code": z, "name": n, "srid": s, "area_m2": a, "bbox": json.loads(b)}
            for z, n, s, a, b in rows]


def seed_from_parcels(conn: psycopg.Connection, margin_m: float, actor: str) -> int:
    """One subdistrict per code prefix of the registered parcels: the box around its parcels
    grown by ``margin_m`` (half the narrowest road between blocks: neighbours only touch)."""
    cur = conn.execute(
        "INSERT INTO cad.cadastral_subdistrict (zone_code, srid, geom, created_by) "
        "SELECT left(parcel_code, 12), srid, "
        "       ST_Multi(ST_Expand(ST_Envelope(ST_Collect(geom)), %s)), %s "
        "FROM cad.parcel GROUP BY 1, 2 ON CONFLICT (zone_code) DO NOTHING", (margin_m, actor))
    return cur.rowcount
