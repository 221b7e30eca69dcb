"""Public queries: search, what-is-here, parcel/building/unit details, a building's unit table
(楼盘表). The same endpoints serve every role: each record leaves through ``api.auth.view``
(the privacy policy, narrowed further for API keys), staff and keys see only their counties, and
every non-public read is audited. Domain queries live in ``cadastre.query``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from psycopg import AsyncConnection

from api.answers import Encoded, answer, encode, known_or_loaded
from api.auditing import record
from api.auth import caller
from api.ratelimit import rate_class
from api.state import app_state
from cadastre.access.principal import PUBLIC, Principal, view
from cadastre.access.privacy import Role, visible_fields
from cadastre.codes import CODE_COLUMN
from cadastre.errors import InvalidInput, NotFound
from cadastre.query import features as F
from cadastre.query import search as S

router = APIRouter(prefix="/api/v1", tags=["public"])

VARY = "Authorization, X-API-Key"
Caller = Annotated[Principal, Depends(caller)]

# one answer for an unknown, malformed or out-of-scope ref: no existence oracle
_NOT_FOUND = {
    "parcel": ("PARCEL_NOT_FOUND", "未找到该宗地 / parcel not found"),
    "building": ("BUILDING_NOT_FOUND", "未找到该自然幢 / building not found"),
    "unit": ("UNIT_NOT_FOUND", "未找到该不动产单元 / unit not found"),
}


class PointInvalid(InvalidInput):
    code = "POINT_INVALID"


def _not_found(entity: str) -> NotFound:
    code, message = _NOT_FOUND[entity]
    return NotFound(code, message)


def may_see(who: Principal, entity: str, name: str) -> bool:
    """The policy lets ``who`` see ``entity.name`` (and an API key was granted it)."""
    if not visible_fields(entity, who.role, [name]):
        return False
    return not who.fields or f"{entity}.{name}" in who.fields


def unit_viewer(who: Principal, unit_code: str | None) -> Principal:
    """Owners see their own units as owners and anyone else's as the public does."""
    if who.role is Role.OWNER and unit_code not in who.units:
        return replace(who, role=Role.PUBLIC, fields=())
    return who


def sensitive(who: Principal) -> F.Sensitive:
    """The sensitive unit fields worth reading from the database for ``who`` at all."""
    if who.role is Role.OWNER:
        return F.Sensitive(certificate_units=who.units)
    return F.Sensitive(certificate_all=may_see(who, "unit", "certificate_no"),
                       owner_count=may_see(who, "unit", "owner_count"))


def _geo(f: F.Feature) -> dict[str, Any]:
    return {"geometry": f.geometry, "bbox": f.bbox, "center": f.center}


def _unit(who: Principal, rec: dict[str, Any]) -> dict[str, Any]:
    return view(unit_viewer(who, rec.get("unit_code")), "unit", rec)


def _vary(response: Response) -> None:
    response.headers["Vary"] = VARY


async def _known(request: Request, who: Principal, action: str, known: Encoded) -> Response:
    """An answer already made from the same rows (``api.answers``), read like a new one."""
    await record(request, who, action, target=known.target, result_count=known.count)
    return answer(request, known)


# ------------------------------------------------------------------ search
def _item(who: Principal, hit: S.SearchHit) -> dict[str, Any]:
    rec = view(who, hit.entity, hit.record)
    return {"kind": hit.kind, "id": rec.get("id"), "code": rec.get(CODE_COLUMN[hit.entity]),
            "label": S.item_label(hit.kind, rec), "seat": rec.get("seat"),
            "lon": hit.lon, "lat": hit.lat, "bbox": hit.bbox}


@router.get("/search", summary="搜索：坐落、楼名、小区名、宗地/单元代码 / search by address, name "
            "or code", openapi_extra=rate_class("search"))
async def search(
    request: Request, response: Response, who: Caller,
    q: str = Query("", description="坐落、楼名、小区名（至少2个字；户至少3个字）或代码前缀"
                   "（至少6位） / address or name (2+ characters; units 3+) or a code prefix (6+)"),
    kind: str | None = Query(None, description="unit|building|parcel|compound，可逗号分隔 / "
                             "comma-separated"),
    limit: int = Query(S.DEFAULT_LIMIT, le=1_000_000,
                       description=f"每页条数，最多{S.MAX_LIMIT} / page size, "
                       f"capped at {S.MAX_LIMIT}"),
    cursor: str | None = Query(None, description="上一页返回的 next / the previous page's next"),
) -> dict[str, Any]:
    query = S.parse_query(q, kind, limit, cursor)
    page = await app_state(request).reads.run(lambda conn: S.search(conn, query, who.counties),
                                              replica=who.role is Role.PUBLIC)
    items = [_item(who, h) for h in page.hits]
    # the query text may hold personal data (an address someone typed): not logged
    await record(request, who, "search", result_count=len(items))
    _vary(response)
    nxt = S.encode_cursor(query, page.next_offset) if page.next_offset is not None else None
    return {"items": items, "next": nxt}


# ------------------------------------------------------------------ what is here
@router.get("/here", summary="此处有什么：宗地、自然幢、户 / what is here",
            openapi_extra=rate_class("search"), response_model=dict[str, Any])
async def here(
    request: Request, response: Response, who: Caller,
    lon: float = Query(..., description="经度 / longitude (EPSG:4326)"),
    lat: float = Query(..., description="纬度 / latitude (EPSG:4326)"),
    floor: int | None = Query(None, ge=-9, le=200,
                              description="只返回该层的户 / only units on this floor"),
) -> Any:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
            and -85 <= lat <= 85):
        raise PointInvalid(message="经纬度超出范围 / lon must be -180..180 and lat -85..85")
    state = app_state(request)
    memo = state.answers if who == PUBLIC else None
    got = await state.reads.run(
        lambda conn: known_or_loaded(memo, "here", F.here_rows(conn, lon, lat, floor)),
        replica=who.role is Role.PUBLIC)
    if got.known is not None:
        return await _known(request, who, "here", got.known)
    found = got.loaded
    assert found is not None
    parcel = found.parcel
    if parcel is not None and not who.in_scope(parcel.record["parcel_code"]):
        parcel = None
    buildings = [b for b in found.buildings if who.in_scope(b.record["building_code"])]
    units = [u for u in found.units if who.in_scope(u["unit_code"])]
    out = {
        "parcel": ({**view(who, "parcel", parcel.record), "kind": "parcel", **_geo(parcel)}
                   if parcel else None),
        "buildings": [{**view(who, "building", b.record), "kind": "building", **_geo(b)}
                      for b in buildings],
        # at_point: the unit's plan contains the point (geometry, not an attribute)
        "units": [{**_unit(who, u), "kind": "unit", "at_point": u["at_point"]} for u in units],
    }
    target = parcel.record["parcel_code"] if parcel else None
    count = (1 if parcel else 0) + len(buildings) + len(units)
    await record(request, who, "here", target=target, result_count=count)
    if memo is not None:
        return answer(request, memo.put("here", got.digest, encode(out, target, count)))
    _vary(response)
    return out


# ------------------------------------------------------------------ details
async def _detail(request: Request, response: Response, who: Principal, entity: str,
                  fetch: Callable[[AsyncConnection], Awaitable[F.Feature | None]],
                  shape: Callable[[F.Feature], dict[str, Any]]) -> dict[str, Any]:
    """The one sequence behind every detail route: fetch, scope (one answer for unknown and
    out-of-scope), shape through the policy, audit the read."""
    async with app_state(request).pool.connection() as conn:
        f = await fetch(conn)
    code = f.record[CODE_COLUMN[entity]] if f is not None else None
    if f is None or not who.in_scope(code):
        raise _not_found(entity)
    out = {**shape(f), "kind": entity, **_geo(f)}
    await record(request, who, f"{entity}.read", target=code, result_count=1)
    _vary(response)
    return out


@router.get("/parcels/{ref}", summary="宗地详情（opaque id 或宗地代码） / parcel by id or code")
async def parcel_detail(ref: str, request: Request, response: Response,
                        who: Caller) -> dict[str, Any]:
    return await _detail(request, response, who, "parcel", lambda conn: F.parcel(conn, ref),
                         lambda f: {**view(who, "parcel", f.record), "buildings": [
                             view(who, "building", b) for b in f.related["buildings"]]})


@router.get("/buildings/{ref}", summary="自然幢详情及各层 / building by id or code, with floors")
async def building_detail(ref: str, request: Request, response: Response,
                          who: Caller) -> dict[str, Any]:
    return await _detail(request, response, who, "building",
                         lambda conn: F.building(conn, ref),
                         lambda f: {**view(who, "building", f.record), "floors": [
                             view(who, "floor", fl) for fl in f.related["floors"]]})


@router.get("/units/{ref}", summary="户详情（opaque id 或不动产单元代码） / unit by id or code")
async def unit_detail(ref: str, request: Request, response: Response,
                      who: Caller) -> dict[str, Any]:
    def shape(f: F.Feature) -> dict[str, Any]:
        seer = unit_viewer(who, f.record["unit_code"])
        return {**view(seer, "unit", f.record),
                "floor": view(seer, "floor", f.related["floor"]),
                "building": view(seer, "building", f.related["building"])}

    return await _detail(request, response, who, "unit",
                         lambda conn: F.unit(conn, ref, sensitive(who)), shape)


@router.get("/buildings/{ref}/table", summary="楼盘表：各层各户 / the building's unit table",
            response_model=dict[str, Any])
async def building_table(ref: str, request: Request, response: Response, who: Caller) -> Any:
    state = app_state(request)
    memo = state.answers if who == PUBLIC else None
    async with state.pool.connection() as conn:
        got = await known_or_loaded(memo, "building.table",
                                    F.building_table_rows(conn, ref, sensitive(who)))
    if got.known is not None:
        return await _known(request, who, "building.table", got.known)
    table = got.loaded
    if table is None or not who.in_scope(table.building["building_code"]):
        raise _not_found("building")
    code = table.building["building_code"]
    floors = []
    count = 0
    for fl in table.floors:
        head = view(who, "floor", {"building_code": code, "floor_no": fl["floor_no"],
                                   "floor_label": fl["floor_label"]})
        head.pop("building_code", None)
        units = [_unit(who, u) for u in fl["units"]]
        count += len(units)
        floors.append({**head, "units": units})
    out = {"building": {**view(who, "building", table.building), "kind": "building"},
           "floors": floors}
    await record(request, who, "building.table", target=code, result_count=count)
    if memo is not None:
        return answer(request, memo.put("building.table", got.digest, encode(out, code, count)))
    _vary(response)
    return out
