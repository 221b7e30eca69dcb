"""OGC API – Features over the published layer catalogue: collections, request parsing, SQL.

A collection is a catalogue layer that has a feature table (``cadastre.query.layers``); its
properties are the layer's ``LayerField`` expressions that the caller's role may see
(``Layer.visible``), plus the version interval where the privacy policy lists it. Values are
always bound parameters; SQL identifiers and expressions come only from the catalogue and the
constants below.

Every query carries the caller (``Principal``): properties and filters are the policy's fields for
the role narrowed to an API key's field grants (``api.auth.view``), and county-scoped callers
(keys, staff with counties) only match features whose code starts with one of their counties.
Error messages never quote the request's values.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cadastre.access.principal import Principal, view
from cadastre.access.privacy import Role, visible_fields
from cadastre.errors import InvalidInput, NotFound
from cadastre.query.layers import LAYERS, Layer

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MERCATOR_MAX_LAT = 85.05112878   # Web Mercator is undefined beyond this latitude


class CollectionNotFound(NotFound):
    code = "COLLECTION_NOT_FOUND"


class FeatureNotFound(NotFound):
    code = "FEATURE_NOT_FOUND"


class BboxInvalid(InvalidInput):
    code = "BBOX_INVALID"


class LimitInvalid(InvalidInput):
    code = "LIMIT_INVALID"


class OffsetInvalid(InvalidInput):
    code = "OFFSET_INVALID"


class DatetimeInvalid(InvalidInput):
    code = "DATETIME_INVALID"


class FilterInvalid(InvalidInput):
    code = "FILTER_INVALID"


class ParameterUnknown(InvalidInput):
    code = "PARAMETER_UNKNOWN"


# ------------------------------------------------------------------ collections
@dataclass(frozen=True)
class PropertyFilter:
    """An exact-match query parameter; ``sql`` is an expression over alias t."""

    name: str
    sql: str
    integer: bool = False


@dataclass(frozen=True)
class Collection:
    id: str
    layer: Layer
    description: str
    filters: tuple[PropertyFilter, ...] = field(default_factory=tuple)

    @property
    def entity(self) -> str:
        return self.layer.entity

    def granted(self, who: Principal, names: list[str]) -> list[str]:
        """``names`` that ``who`` may receive: the role's policy, then the key's field grants."""
        allowed = visible_fields(self.entity, who.role, names)
        return [n for n in allowed if not who.fields or f"{self.entity}.{n}" in who.fields]

    def filters_for(self, who: Principal) -> dict[str, PropertyFilter]:
        """Filters on fields the caller may see (filtering on a hidden field would leak it)."""
        allowed = set(self.granted(who, [f.name for f in self.filters]))
        return {f.name: f for f in self.filters if f.name in allowed}


def _layer_filter(layer: Layer, name: str, integer: bool = False) -> PropertyFilter:
    """A filter on one of the layer's own fields, with the catalogue's SQL expression."""
    sql = next(f.sql for f in layer.fields if f.name == name)
    return PropertyFilter(name, sql, integer)


def _collection(name: str, description: str, *filters: tuple[str, str | None]) -> Collection:
    """``filters``: (name, column) where column None means "the layer field of that name"."""
    layer = LAYERS[name]
    built = tuple(_layer_filter(layer, n) if col is None else PropertyFilter(n, col)
                  for n, col in filters)
    return Collection(name, layer, description, built)


_UNITS = LAYERS["units"]
COLLECTIONS: dict[str, Collection] = {
    c.id: c for c in (
        _collection("parcels", "宗地（现势与历史版本）/ land parcels, current and past versions",
                    ("parcel_code", None), ("land_use", None)),
        _collection("buildings", "自然幢 / buildings", ("building_code", None),
                    ("parcel_code", "t.parcel_code")),
        Collection("units", _UNITS, "户（按层号过滤：floor_no）/ units; filter by floor_no",
                   (_layer_filter(_UNITS, "unit_code"),
                    PropertyFilter("building_code", "t.building_code"),
                    PropertyFilter("parcel_code", "t.parcel_code"),
                    _layer_filter(_UNITS, "floor_no", integer=True))),
        _collection("boundary_points", "界址点 / parcel boundary points",
                    ("parcel_code", None), ("point_no", None)),
    )
}

# version interval: exposed where the policy lists it (NATURAL for parcels, buildings, units)
VERSION_PROPERTIES = (("valid_from", "t.valid_from"), ("valid_to", "t.valid_to"))


def get_collection(collection_id: str) -> Collection:
    found = COLLECTIONS.get(collection_id)
    if found is None:
        raise CollectionNotFound(message="未知要素集 / unknown collection; known: "
                                 + ", ".join(COLLECTIONS))
    return found


def property_columns(collection: Collection, who: Principal) -> list[tuple[str, str]]:
    """(name, SQL expression) of every property ``who`` may receive, in catalogue order."""
    cols = [(f.name, f.sql) for f in collection.layer.fields] + list(VERSION_PROPERTIES)
    shown = set(collection.granted(who, [n for n, _ in cols]))
    return [(n, sql) for n, sql in cols if n in shown]


# ------------------------------------------------------------------ request parameters
@dataclass(frozen=True)
class TimeFilter:
    """No datetime: current versions. Instant: the version valid then. Interval: overlapping."""

    instant: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    interval: bool = False

    def clauses(self) -> tuple[list[str], dict[str, Any]]:
        if self.instant is not None:
            return (["t.valid_from <= %(at)s AND (t.valid_to IS NULL OR t.valid_to > %(at)s)"],
                    {"at": self.instant})
        if not self.interval:
            return ["t.valid_to IS NULL"], {}
        where: list[str] = []
        params: dict[str, Any] = {}
        if self.end is not None:
            where.append("t.valid_from <= %(dt_end)s")
            params["dt_end"] = self.end
        if self.start is not None:
            where.append("(t.valid_to IS NULL OR t.valid_to > %(dt_start)s)")
            params["dt_start"] = self.start
        return where, params


# RFC 3339 date-time, or a full date (GDAL sends date-only values as "2020-01-01T")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[Tt](?:\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?"
                      r"(?:[Zz]|[+-]\d{2}:\d{2})?)?)?$")


def _instant(text: str) -> datetime:
    value = text.strip()
    invalid = DatetimeInvalid(message="datetime 格式无效，应为 RFC 3339 时间 / invalid datetime: "
                              "expected RFC 3339, e.g. 2024-01-31T00:00:00Z")
    if not _RFC3339.match(value):
        raise invalid
    if value.endswith(("T", "t")):
        value = value[:-1]
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise invalid from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_datetime(value: str | None) -> TimeFilter:
    if value is None:
        return TimeFilter()
    if "/" not in value:
        return TimeFilter(instant=_instant(value))
    parts = value.split("/")
    if len(parts) != 2:
        raise DatetimeInvalid(message="datetime 区间应为 a/b / an interval is start/end")
    start, end = (None if p in ("", "..") else _instant(p) for p in parts)
    if start is not None and end is not None and start > end:
        raise DatetimeInvalid(message="datetime 区间起点晚于终点 / interval start is after its end")
    return TimeFilter(start=start, end=end, interval=True)


def parse_bbox(value: str | None, crs: str | None) -> tuple[float, float, float, float] | None:
    if crs not in (None, CRS84):
        raise BboxInvalid(message=f"bbox-crs 仅支持 / only supported: {CRS84}")
    if value is None:
        return None
    try:
        nums = [float(v) for v in value.split(",")]
    except ValueError:
        nums = []
    if len(nums) == 6:                      # minx,miny,minz,maxx,maxy,maxz: heights ignored
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or not all(math.isfinite(n) for n in nums):
        raise BboxInvalid(message="bbox 应为 4 个数：minx,miny,maxx,maxy / bbox must be "
                          "4 numbers minx,miny,maxx,maxy (CRS84)")
    minx, miny, maxx, maxy = nums
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise BboxInvalid(message="bbox 超出范围或最小值大于最大值 / bbox out of range, or min "
                          "greater than max (antimeridian crossing is not supported)")
    return (minx, max(miny, -MERCATOR_MAX_LAT), maxx, min(maxy, MERCATOR_MAX_LAT))


def _int_param(value: str | None, default: int, low: int, high: int,
               error: type[InvalidInput], name: str) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise error(message=f"{name} 应为 {low}–{high} 的整数 / {name} must be an integer "
                    f"from {low} to {high}")
    return number


@dataclass(frozen=True)
class ItemsQuery:
    collection: Collection
    who: Principal
    bbox: tuple[float, float, float, float] | None = None
    time: TimeFilter = TimeFilter()
    filters: tuple[tuple[PropertyFilter, object], ...] = ()
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @property
    def role(self) -> Role:
        return self.who.role


ITEMS_PARAMETERS = {"bbox", "bbox-crs", "datetime", "limit", "offset", "f"}


def parse_items_query(collection: Collection, who: Principal, params: Mapping[str, str]
                      ) -> ItemsQuery:
    filters = collection.filters_for(who)
    unknown = sorted(set(params) - ITEMS_PARAMETERS - set(filters))
    if unknown:
        raise ParameterUnknown(message="不支持的查询参数 / unknown query parameter; filters "
                               f"here: {', '.join(filters) or '-'}")
    chosen: list[tuple[PropertyFilter, object]] = []
    for name, spec in filters.items():
        raw = params.get(name)
        if raw is None:
            continue
        value: object = raw
        if spec.integer:
            try:
                value = int(raw)
            except ValueError:
                value = None
            if value is None or not -(2**31) <= value < 2**31:   # an int4 column
                raise FilterInvalid(message=f"{name} 应为整数 / {name} must be an integer")
        chosen.append((spec, value))
    return ItemsQuery(
        collection, who,
        bbox=parse_bbox(params.get("bbox"), params.get("bbox-crs")),
        time=parse_datetime(params.get("datetime")),
        filters=tuple(chosen),
        limit=_int_param(params.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT, LimitInvalid, "limit"),
        offset=_int_param(params.get("offset"), 0, 0, 10**9, OffsetInvalid, "offset"),
    )


# ------------------------------------------------------------------ SQL
_ENVELOPE_CTE = ("WITH q AS (SELECT ST_Transform(ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, "
                 "%(maxy)s, 4326), 3857) AS env)\n")


def _from_where(q: ItemsQuery) -> tuple[str, str, dict[str, Any]]:
    """(prefix CTE, FROM … WHERE …, parameters) shared by the page and the count."""
    layer = q.collection.layer
    where, params = q.time.clauses()
    if layer.extra_where and not layer.floor_filter:   # units: floor_no is a filter instead
        where.append(layer.extra_where)
    source, cte = layer.from_sql, ""
    if q.bbox is not None:
        cte = _ENVELOPE_CTE
        source += ", q"
        where.append(f"{layer.geom_sql} && q.env AND ST_Intersects({layer.geom_sql}, q.env)")
        params.update(zip(("minx", "miny", "maxx", "maxy"), q.bbox, strict=True))
    for spec, value in q.filters:
        where.append(f"{spec.sql} = %(f_{spec.name})s")
        params[f"f_{spec.name}"] = value
    if q.who.counties:   # county-scoped keys and staff: their counties only
        where.append(f"{q.collection.layer.county_sql} = ANY(%(scope_counties)s)")
        params["scope_counties"] = list(q.who.counties)
    return cte, f"FROM {source}\nWHERE {' AND '.join(where) or 'true'}", params


def _select(q: ItemsQuery) -> str:
    cols = "".join(f',\n       {sql} AS "{name}"' for name, sql in property_columns(
        q.collection, q.who))
    return ("SELECT t.feature_id::text AS \"__fid\", "
            "ST_AsGeoJSON(ST_Transform(t.geom, 4326), 7) AS \"__geom\"" + cols)


def items_sql(q: ItemsQuery) -> tuple[str, str, dict[str, Any]]:
    """(page SQL, count SQL, parameters)."""
    cte, body, params = _from_where(q)
    page = f"{cte}{_select(q)}\n{body}\nORDER BY t.version_id\nLIMIT %(limit)s OFFSET %(offset)s"
    params.update(limit=q.limit, offset=q.offset)
    return page, f"{cte}SELECT count(*)\n{body}", params


def feature_sql(q: ItemsQuery, feature_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
    """One feature by feature_id: the version the time filter selects (latest if several)."""
    cte, body, params = _from_where(q)
    params["fid"] = feature_id
    return (f"{cte}{_select(q)}\n{body} AND t.feature_id = %(fid)s\n"
            "ORDER BY t.valid_from DESC LIMIT 1", params)


def extent_sql(collection: Collection) -> str:
    layer = collection.layer
    return f"""
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), first_version, srids FROM (
  SELECT ST_Transform(ST_SetSRID(ST_Extent({layer.geom_sql}) FILTER (WHERE t.valid_to IS NULL),
                                 3857), 4326) AS e,
         min(t.valid_from) AS first_version, array_agg(DISTINCT t.srid) AS srids
  FROM {layer.from_sql}) s"""


# ------------------------------------------------------------------ rows → GeoJSON
def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_feature(row: Mapping[str, Any], q: ItemsQuery) -> dict[str, Any]:
    raw = {k: v for k, v in row.items() if not k.startswith("__")}
    # the policy and the key's grants have the last word on every value that leaves
    props = {k: _jsonable(v) for k, v in view(q.who, q.collection.entity, raw).items()}
    return {"type": "Feature", "id": row["__fid"], "geometry": json.loads(row["__geom"]),
            "properties": props}


@dataclass(frozen=True)
class ItemsPage:
    features: list[dict[str, Any]]
    number_matched: int


async def fetch_items(conn: AsyncConnection, q: ItemsQuery) -> ItemsPage:
    page_sql, count_sql, params = items_sql(q)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(page_sql, params)  # type: ignore[arg-type]
        rows = await cur.fetchall()
        await cur.execute(count_sql, params)  # type: ignore[arg-type]
        counted = await cur.fetchone()
    matched = int(counted["count"]) if counted else 0
    return ItemsPage([to_feature(r, q) for r in rows], matched)


async def fetch_feature(conn: AsyncConnection, q: ItemsQuery, feature_id: str
                        ) -> dict[str, Any]:
    try:
        fid = uuid.UUID(feature_id)
    except ValueError:
        fid = None
    not_found = FeatureNotFound(message=f"无此要素 / no such feature in {q.collection.id}")
    if fid is None:
        raise not_found
    sql, params = feature_sql(q, fid)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)  # type: ignore[arg-type]
        row = await cur.fetchone()
    if row is None:
        raise not_found
    return to_feature(row, q)


@dataclass(frozen=True)
class Extent:
    bbox: list[float] | None          # CRS84 of the current versions
    first_version: datetime | None
    srids: list[int]


async def fetch_extent(conn: AsyncConnection, collection: Collection) -> Extent:
    cur = await conn.execute(extent_sql(collection))  # type: ignore[arg-type]
    row = await cur.fetchone()
    if row is None:
        return Extent(None, None, [])
    bbox = [round(v, 7) for v in row[:4]] if row[0] is not None else None
    return Extent(bbox, row[4], sorted(s for s in (row[5] or []) if s is not None))
