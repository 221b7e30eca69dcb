"""Parcel, building and unit look-ups for the query API: details by opaque id or code,
what-is-here at a point, and a building's unit table (楼盘表). Current versions only.

Each look-up is one SQL statement. Results are plain records keyed by the privacy policy's field
names (``record``), with geometry kept apart (GeoJSON in EPSG:4326, bbox, a point on the surface);
the caller applies the policy to every record before anything leaves the server.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from psycopg import AsyncConnection, AsyncCursor
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from cadastre import labels as L
from cadastre.codes import CODE_COLUMN, COUNTY_OF_REF

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# the shapes of cad.*.CHECK constraints (0001); anything else cannot exist
CODE_SHAPE = {
    "parcel": re.compile(r"^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}$"),
    "building": re.compile(r"^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}F[0-9]{4}$"),
    "unit": re.compile(r"^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}F[0-9]{8}$"),
}


def parse_ref(entity: str, ref: str) -> tuple[str, Any] | None:
    """('id', UUID) for an opaque feature id, ('code', code) for a code, None if neither."""
    if _UUID.match(ref):
        return "id", uuid.UUID(ref)
    if CODE_SHAPE[entity].match(ref):
        return "code", ref
    return None


def _where(entity: str, ref: tuple[str, Any]) -> str:
    if ref[0] == "id":
        return "t.feature_id = %(ref)s"
    if entity == "unit":    # the county too: the planner reads one partition of cad.unit
        return f"t.unit_code = %(ref)s AND {COUNTY_OF_REF}"
    return f"t.{CODE_COLUMN[entity]} = %(ref)s"


@dataclass
class Feature:
    entity: str
    record: dict[str, Any]                       # policy field names
    geometry: dict[str, Any] | None = None       # GeoJSON, EPSG:4326
    bbox: list[float] | None = None              # [w, s, e, n]
    center: list[float] | None = None            # [lon, lat], a point on the surface
    related: dict[str, Any] = field(default_factory=dict)   # entity records, lists of them


T = TypeVar("T")


@dataclass
class Rows(Generic[T]):
    """A look-up executed but not yet loaded. ``digest`` names its rows exactly as the database
    sent them (equal digests, equal rows), so whatever is derived from the rows alone, such as a
    public answer already shaped and encoded, can be reused without loading them again.
    Both are used while the connection is held."""

    cursor: AsyncCursor[Any] | None      # None: the ref cannot name anything
    parse: Callable[[Any], T]            # the first row (None: no row) → the domain object

    @functools.cached_property
    def digest(self) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        res = self.cursor.pgresult if self.cursor is not None else None
        if res is not None:
            for r in range(res.ntuples):
                for c in range(res.nfields):
                    value = res.get_value(r, c)
                    h.update(b"N" if value is None else b"V%d:" % len(value))
                    h.update(value or b"")
        return h.digest()

    async def load(self) -> T:
        return self.parse(await self.cursor.fetchone() if self.cursor is not None else None)


# geometry of t in EPSG:4326: GeoJSON (7 decimals ≈ 1 cm), bbox and a point on the surface
_GEO = """ST_AsGeoJSON(g.g, 7)::json AS geometry,
       round(ST_XMin(g.g)::numeric, 7)::float8 AS west,
       round(ST_YMin(g.g)::numeric, 7)::float8 AS south,
       round(ST_XMax(g.g)::numeric, 7)::float8 AS east,
       round(ST_YMax(g.g)::numeric, 7)::float8 AS north,
       round(ST_X(ST_PointOnSurface(g.g))::numeric, 7)::float8 AS lon,
       round(ST_Y(ST_PointOnSurface(g.g))::numeric, 7)::float8 AS lat"""
_G = "CROSS JOIN LATERAL (SELECT ST_Transform(t.geom, 4326) AS g) g"


def _json_arrays(fields: tuple[tuple[str, str], ...]) -> str:
    """A JSON array of the (name, SQL) ``fields``' values, in order: lists of many records
    (a building's units) travel as arrays, not objects, which is cheaper to build in PostgreSQL
    (the 96 units of a what-is-here: 0.9 instead of 1.05 CPU-ms) and to decode; ``_records``
    names the values again."""
    return "json_build_array(" + ", ".join(sql for _, sql in fields) + ")"


def _records(fields: tuple[tuple[str, str], ...], arrays: list[list[Any]] | None
             ) -> list[dict[str, Any]]:
    names = [name for name, _ in fields]
    return [dict(zip(names, values, strict=True)) for values in arrays or []]


def _feature(entity: str, row: dict[str, Any], related: tuple[str, ...] = ()) -> Feature:
    geometry = row.pop("geometry", None)
    box = [row.pop(k, None) for k in ("west", "south", "east", "north")]
    center = [row.pop("lon", None), row.pop("lat", None)]
    extra = {k: row.pop(k) for k in related}
    if isinstance(row.get("id"), uuid.UUID):
        row["id"] = str(row["id"])
    return Feature(entity, row, geometry, box if box[0] is not None else None,
                   center if center[0] is not None else None, extra)


# ------------------------------------------------------------------ labels
def label_parcel(rec: dict[str, Any]) -> dict[str, Any]:
    rec["land_use_label"] = L.label(L.LAND_USE, rec.get("land_use"))
    rec["right_type_label"] = L.label(L.RIGHT_TYPE, rec.get("right_type"))
    return rec


def label_building(rec: dict[str, Any]) -> dict[str, Any]:
    rec["structure_label"] = L.label(L.STRUCTURE, rec.get("structure"))
    rec["planned_use_label"] = L.label(L.HOUSE_USE, rec.get("planned_use"))
    return rec


def label_unit(rec: dict[str, Any]) -> dict[str, Any]:
    rec["use_label"] = L.label(L.HOUSE_USE, rec.get("use"))
    if "house_type" in rec:
        rec["house_type_label"] = L.label(L.HOUSE_TYPE, rec["house_type"])
    if "house_nature" in rec:
        rec["house_nature_label"] = L.label(L.HOUSE_NATURE, rec["house_nature"])
    rec["registration_status_label"] = L.label(L.REGISTRATION_STATUS,
                                               rec.get("registration_status"))
    if "mortgaged" in rec:
        rec["encumbrance_labels"] = L.encumbrance_labels(rec)
    lo, count = rec.get("floor_no"), rec.get("floor_count") or 1
    if lo is not None:
        rec["floor_span"] = [lo, lo + count - 1]
    return rec


# ------------------------------------------------------------------ parcels
_PARCEL = f"""
SELECT t.feature_id AS id, t.parcel_code::text AS parcel_code, t.seat, t.compound_name,
       t.land_use, t.right_type::int AS right_type, t.right_nature::int AS right_nature,
       t.registered_area::float8 AS registered_area,
       t.neighbour_north, t.neighbour_east, t.neighbour_south, t.neighbour_west, t.map_sheet,
       t.srid, t.valid_from, t.valid_to,
       round(ST_Area(t.geom)::numeric, 2)::float8 AS computed_area,
       round(t.registered_area - ST_Area(t.geom)::numeric, 2)::float8 AS area_difference,
       {_GEO},
       (SELECT coalesce(json_agg(json_build_object('id', b.feature_id,
                   'building_code', b.building_code, 'name', b.name,
                   'floors_above', b.floors_above) ORDER BY b.building_code),
               '[]'::json)
        FROM cad.building_current b WHERE b.parcel_code = t.parcel_code
       ) AS buildings
FROM cad.parcel_current t {_G}
WHERE {{where}}
"""


async def _execute(conn: AsyncConnection, entity: str, ref: str, sql: str,
                   params: dict[str, Any] | None = None) -> AsyncCursor[Any] | None:
    """The current ``entity`` named by ``ref`` (opaque id or code) as ``sql`` selects it: the
    one look-up behind parcels, buildings, units and unit tables (None: ``ref`` names nothing
    that can exist)."""
    parsed = parse_ref(entity, ref)
    if parsed is None:
        return None
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.format(where=_where(entity, parsed)),  # type: ignore[arg-type]
                      {"ref": parsed[1], **(params or {})})
    return cur


async def _row(conn: AsyncConnection, entity: str, ref: str, sql: str,
               params: dict[str, Any] | None = None) -> dict[str, Any] | None:
    cur = await _execute(conn, entity, ref, sql, params)
    return await cur.fetchone() if cur is not None else None


async def parcel(conn: AsyncConnection, ref: str) -> Feature | None:
    row = await _row(conn, "parcel", ref, _PARCEL)
    if row is None:
        return None
    f = _feature("parcel", row, ("buildings",))
    label_parcel(f.record)
    return f


# ------------------------------------------------------------------ buildings
_BUILDING_FIELDS = """t.feature_id AS id, t.building_code::text AS building_code,
       t.parcel_code::text AS parcel_code, t.name, t.project_name,
       t.floors_total::int AS floors_total, t.floors_above::int AS floors_above,
       t.floors_below::int AS floors_below, t.height::float8 AS height,
       t.structure::int AS structure, t.planned_use, t.completion_date,
       extract(year FROM t.completion_date)::int AS completion_year,
       t.floor_area::float8 AS floor_area, t.footprint_area::float8 AS footprint_area,
       t.ground_elevation::float8 AS ground_elevation, t.valid_from, t.valid_to, p.seat"""

_BUILDING = f"""
SELECT {_BUILDING_FIELDS},
       {_GEO},
       (SELECT coalesce(json_agg(json_build_object(
                   'floor_no', f.floor_no, 'floor_label', f.floor_label,
                   'base_elevation', f.base_elevation, 'storey_height', f.storey_height,
                   'floor_area', f.floor_area,
                   'unit_count', (SELECT count(*) FROM cad.unit_current u
                                  WHERE u.building_code = f.building_code
                                    AND u.floor_no <= f.floor_no
                                    AND u.floor_no + u.floor_count > f.floor_no))
                   ORDER BY f.floor_no), '[]'::json)
        FROM cad.floor_current f WHERE f.building_code = t.building_code
       ) AS floors
FROM cad.building_current t
LEFT JOIN cad.parcel_current p ON p.parcel_code = t.parcel_code
{_G}
WHERE {{where}}
"""


async def building(conn: AsyncConnection, ref: str) -> Feature | None:
    """A building with its floors (bottom → top), each with the number of units on it (a unit
    over several floors counts on each)."""
    row = await _row(conn, "building", ref, _BUILDING)
    if row is None:
        return None
    f = _feature("building", row, ("floors",))
    label_building(f.record)
    for fl in f.related["floors"]:
        fl["building_code"] = f.record["building_code"]
    return f


# ------------------------------------------------------------------ units
_UNIT_FIELDS = """t.feature_id AS id, t.unit_code::text AS unit_code,
       t.building_code::text AS building_code, t.parcel_code::text AS parcel_code,
       t.floor_no::int AS floor_no, t.floor_count::int AS floor_count, t.room_no, t.seat, t.use,
       t.house_type::int AS house_type, t.house_nature::int AS house_nature, t.layout,
       t.building_area::float8 AS building_area, t.inner_area::float8 AS inner_area,
       t.shared_area::float8 AS shared_area, t.shared_coefficient::float8 AS shared_coefficient,
       t.base_elevation::float8 AS base_elevation, t.height::float8 AS height,
       t.valid_from, t.valid_to,
       coalesce(s.registration_status, 'unregistered') AS registration_status,
       coalesce(s.mortgaged, false) AS mortgaged, coalesce(s.seized, false) AS seized,
       coalesce(s.pre_noticed, false) AS pre_noticed, coalesce(s.objected, false) AS objected"""

# fetched only for callers whose policy shows them (the query never reads what it cannot send)
_CERTIFICATE = """CASE WHEN %(cert_all)s OR t.unit_code = ANY(%(cert_units)s) THEN
           (SELECT r.certificate_no FROM cad.right_current r
            WHERE r.unit_code = t.unit_code AND r.county_code = t.county_code
              AND r.kind = 'ownership' AND r.status = 1
            ORDER BY r.registered_at DESC LIMIT 1) END"""
_OWNER_COUNT = """CASE WHEN %(owner_count)s THEN
           (SELECT count(DISTINCT rp.party_id) FROM cad.right_current r
            JOIN cad.right_party rp ON rp.right_version_id = r.version_id
                 AND rp.county_code = r.county_code AND rp.role = 1
            WHERE r.unit_code = t.unit_code AND r.county_code = t.county_code
              AND r.kind = 'ownership' AND r.status = 1)::int END"""

_CERTIFICATE_U = (_CERTIFICATE.replace("t.unit_code", "u.unit_code")
                  .replace("t.county_code", "u.county_code"))

_UNIT = f"""
SELECT {_UNIT_FIELDS},
       {_CERTIFICATE} AS certificate_no,
       {_OWNER_COUNT} AS owner_count,
       f.floor_label, f.base_elevation::float8 AS f_base_elevation,
       f.storey_height::float8 AS f_storey_height, f.floor_area::float8 AS f_floor_area,
       b.feature_id AS b_id, b.name AS b_name, b.project_name AS b_project_name,
       {_GEO}
FROM (SELECT * FROM cad.unit_current t WHERE {{where}} LIMIT 1) t   -- one row by its key;
-- LIMIT 1 tells the planner so: with units partitioned by county, a prepared (generic) plan
-- would otherwise count a row per partition and the plan cache would re-plan every call
LEFT JOIN cad.unit_status s ON s.unit_code = t.unit_code
LEFT JOIN cad.floor_current f ON f.building_code = t.building_code AND f.floor_no = t.floor_no
LEFT JOIN cad.building_current b ON b.building_code = t.building_code
{_G}
"""


@dataclass(frozen=True)
class Sensitive:
    """Which sensitive unit fields to read at all (from the caller's policy): the current
    ownership certificate of all units or only of ``certificate_units``, and the owner count."""

    certificate_all: bool = False
    certificate_units: tuple[str, ...] = ()
    owner_count: bool = False

    def params(self) -> dict[str, Any]:
        return {"cert_all": self.certificate_all, "cert_units": list(self.certificate_units),
                "owner_count": self.owner_count}


@contextlib.asynccontextmanager
async def generic_plan(conn: AsyncConnection) -> AsyncIterator[None]:
    """Statements run inside use PostgreSQL's generic plan (on a connection not already in a
    transaction, whose settings are left alone): the unit read here, text search
    (``cadastre.query.search``). The unit read's generic plan prunes the county
    partitions at run time and runs in 0.16 ms, but its estimate counts every partition, so the
    plan cache kept planning a custom plan instead: 1.2 ms of planning a call on the 1M-parcel
    district (1.9 ms a call; 0.85 ms with the generic plan, the transaction included)."""
    if conn.info.transaction_status is not TransactionStatus.IDLE:
        yield
        return
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        yield


async def unit(conn: AsyncConnection, ref: str, sensitive: Sensitive = Sensitive()
               ) -> Feature | None:
    """A unit with its floor (``related['floor']``) and building (``related['building']``)."""
    async with generic_plan(conn):
        row = await _row(conn, "unit", ref, _UNIT, sensitive.params())
    if row is None:
        return None
    floor = {"building_code": row["building_code"], "floor_no": row["floor_no"],
             "floor_label": row["floor_label"], "base_elevation": row.pop("f_base_elevation"),
             "storey_height": row.pop("f_storey_height"), "floor_area": row.pop("f_floor_area")}
    b_id = row.pop("b_id")
    bld = {"id": str(b_id) if b_id else None, "building_code": row["building_code"],
           "name": row.pop("b_name"), "project_name": row.pop("b_project_name")}
    if row["certificate_no"] is None:
        del row["certificate_no"]
    if row["owner_count"] is None:
        del row["owner_count"]
    f = _feature("unit", row)
    label_unit(f.record)
    f.related = {"floor": floor, "building": bld}
    return f


# ------------------------------------------------------------------ 楼盘表
_STATUS = (
    ("registration_status", "coalesce(s.registration_status, 'unregistered')"),
    ("mortgaged", "coalesce(s.mortgaged, false)"), ("seized", "coalesce(s.seized, false)"),
    ("pre_noticed", "coalesce(s.pre_noticed, false)"),
    ("objected", "coalesce(s.objected, false)"))
_TABLE_UNIT = (
    ("id", "u.feature_id"), ("unit_code", "u.unit_code"), ("room_no", "u.room_no"),
    ("floor_no", "u.floor_no"), ("floor_count", "u.floor_count"), ("use", "u.use"),
    ("layout", "u.layout"), ("building_area", "u.building_area"),
    ("inner_area", "u.inner_area"), ("shared_area", "u.shared_area"), *_STATUS,
    ("certificate_no", _CERTIFICATE_U))
_TABLE = f"""
SELECT {_BUILDING_FIELDS},
       (SELECT coalesce(json_agg(json_build_object('floor_no', f.floor_no,
                   'floor_label', f.floor_label) ORDER BY f.floor_no DESC), '[]'::json)
        FROM cad.floor_current f WHERE f.building_code = t.building_code
       ) AS floors,
       (SELECT coalesce(json_agg({_json_arrays(_TABLE_UNIT)}), '[]'::json)
        FROM cad.unit_current u LEFT JOIN cad.unit_status s ON s.unit_code = u.unit_code
        WHERE u.building_code = t.building_code
          AND u.county_code = left(t.building_code, 6)::bpchar
       ) AS units
FROM cad.building_current t
LEFT JOIN cad.parcel_current p ON p.parcel_code = t.parcel_code
WHERE {{where}}
"""

_NUMBER = re.compile(r"(\d+)")


@functools.lru_cache(maxsize=65536)   # a few thousand distinct room numbers in a district
def room_order(room_no: str | None) -> tuple[Any, ...]:
    """Natural order of room numbers (2 < 10, '1203' < '1204'; text after numbers)."""
    parts = _NUMBER.split(room_no or "")
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p)


@dataclass
class BuildingTable:
    building: dict[str, Any]
    floors: list[dict[str, Any]]     # top → down: floor_no, floor_label, units (records)


async def building_table(conn: AsyncConnection, ref: str, sensitive: Sensitive = Sensitive()
                         ) -> BuildingTable | None:
    """Floors top → down, units in room order; a unit over several floors is listed once, on
    the highest floor of its span (``floor_span`` = [lowest, highest])."""
    return await (await building_table_rows(conn, ref, sensitive)).load()


async def building_table_rows(conn: AsyncConnection, ref: str,
                              sensitive: Sensitive = Sensitive()) -> Rows[BuildingTable | None]:
    """``building_table``, executed but not loaded (see ``Rows``)."""
    return Rows(await _execute(conn, "building", ref, _TABLE, sensitive.params()),
                _building_table)


def _building_table(row: dict[str, Any] | None) -> BuildingTable | None:
    if row is None:
        return None
    floors_raw, units = row.pop("floors"), _records(_TABLE_UNIT, row.pop("units"))
    row["id"] = str(row["id"])
    label_building(row)
    floors: dict[int, dict[str, Any]] = {
        f["floor_no"]: {"floor_no": f["floor_no"], "floor_label": f["floor_label"], "units": []}
        for f in floors_raw}
    for u in units:
        if u["certificate_no"] is None:
            del u["certificate_no"]
        label_unit(u)
        lo, hi = u["floor_span"]
        on = [n for n in floors if lo <= n <= hi]
        top = max(on) if on else hi
        floors.setdefault(top, {"floor_no": top, "floor_label": None, "units": []})
        floors[top]["units"].append(u)
    ordered = [floors[n] for n in sorted(floors, reverse=True)]
    for fl in ordered:
        fl["units"].sort(key=lambda u: (room_order(u["room_no"]), u["unit_code"]))
    return BuildingTable(row, ordered)


# ------------------------------------------------------------------ what is here
_HERE_UNIT = (
    ("id", "u.feature_id"), ("unit_code", "u.unit_code"), ("building_code", "u.building_code"),
    ("floor_no", "u.floor_no"), ("floor_count", "u.floor_count"), ("room_no", "u.room_no"),
    ("seat", "u.seat"), ("use", "u.use"), ("building_area", "u.building_area"),
    ("base_elevation", "u.base_elevation"), ("height", "u.height"), *_STATUS,
    ("at_point", "ST_Intersects(u.geom_3857, pt.g)"))   # its plan contains the point
_HERE = f"""
WITH pt AS (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), 3857) AS g),
par AS (
    SELECT t.* FROM cad.parcel_current t, pt
    WHERE ST_Intersects(t.geom_3857, pt.g)
    ORDER BY ST_Area(t.geom_3857), t.parcel_code LIMIT 1
),
bld AS (
    SELECT t.* FROM cad.building_current t, pt
    WHERE ST_Intersects(t.geom_3857, pt.g)
    ORDER BY t.building_code LIMIT 10
),
par_row AS (
    SELECT json_build_object(
        'id', t.feature_id, 'parcel_code', t.parcel_code, 'seat', t.seat,
        'compound_name', t.compound_name, 'land_use', t.land_use, 'right_type', t.right_type,
        'registered_area', t.registered_area, 'geometry', ST_AsGeoJSON(g.g, 7)::json,
        'bbox', json_build_array(round(ST_XMin(g.g)::numeric, 7), round(ST_YMin(g.g)::numeric, 7),
                                 round(ST_XMax(g.g)::numeric, 7), round(ST_YMax(g.g)::numeric, 7)),
        'center', json_build_array(round(ST_X(ST_PointOnSurface(g.g))::numeric, 7),
                                   round(ST_Y(ST_PointOnSurface(g.g))::numeric, 7))) AS j
    FROM par t {_G}
),
bld_rows AS (
    SELECT json_agg(json_build_object(
        'id', t.feature_id, 'building_code', t.building_code, 'parcel_code', t.parcel_code,
        'name', t.name, 'project_name', t.project_name, 'floors_total', t.floors_total,
        'floors_above', t.floors_above, 'floors_below', t.floors_below, 'height', t.height,
        'structure', t.structure, 'planned_use', t.planned_use,
        'completion_year', extract(year FROM t.completion_date)::int,
        'ground_elevation', t.ground_elevation, 'geometry', ST_AsGeoJSON(g.g, 7)::json,
        'bbox', json_build_array(round(ST_XMin(g.g)::numeric, 7), round(ST_YMin(g.g)::numeric, 7),
                                 round(ST_XMax(g.g)::numeric, 7), round(ST_YMax(g.g)::numeric, 7)),
        'center', json_build_array(round(ST_X(ST_PointOnSurface(g.g))::numeric, 7),
                                   round(ST_Y(ST_PointOnSurface(g.g))::numeric, 7)))
        ORDER BY t.building_code) AS j
    FROM bld t {_G}
),
unit_rows AS (
    SELECT json_agg({_json_arrays(_HERE_UNIT)}
                    ORDER BY u.building_code, u.floor_no DESC, u.unit_code) AS j
    FROM cad.unit_current u
    JOIN bld ON u.building_code = bld.building_code
    CROSS JOIN pt
    LEFT JOIN cad.unit_status s ON s.unit_code = u.unit_code
    WHERE (%(floor)s::int IS NULL
           OR (u.floor_no <= %(floor)s::int AND u.floor_no + u.floor_count > %(floor)s::int))
)
SELECT (SELECT j FROM par_row), (SELECT j FROM bld_rows), (SELECT j FROM unit_rows)
"""


@dataclass
class Here:
    parcel: Feature | None
    buildings: list[Feature]
    units: list[dict[str, Any]]      # unit records + 'at_point' (its plan contains the point)


def _json_feature(entity: str, obj: dict[str, Any]) -> Feature:
    geometry, bbox, center = obj.pop("geometry"), obj.pop("bbox"), obj.pop("center")
    return Feature(entity, obj, geometry, [float(v) for v in bbox], [float(v) for v in center])


async def here(conn: AsyncConnection, lon: float, lat: float, floor: int | None = None) -> Here:
    """The parcel at (lon, lat) (the smallest, where parcels overlap), the buildings there and
    their units (only those on ``floor`` when given), top floor first."""
    return await (await here_rows(conn, lon, lat, floor)).load()


async def here_rows(conn: AsyncConnection, lon: float, lat: float,
                    floor: int | None = None) -> Rows[Here]:
    """``here``, executed but not loaded (see ``Rows``)."""
    cur = conn.cursor()
    await cur.execute(_HERE, {"lon": lon, "lat": lat, "floor": floor})
    return Rows(cur, _here)


def _here(row: tuple[Any, ...] | None) -> Here:
    assert row is not None
    par_j, bld_j, unit_j = row
    parcel_f = _json_feature("parcel", par_j) if par_j else None
    if parcel_f:
        label_parcel(parcel_f.record)
    buildings = [_json_feature("building", b) for b in bld_j or []]
    for b in buildings:
        label_building(b.record)
    units = [label_unit(u) for u in _records(_HERE_UNIT, unit_j)]
    units.sort(key=lambda u: (u["building_code"], -u["floor_no"], room_order(u["room_no"])))
    return Here(parcel_f, buildings, units)
