"""Vector tiles and TileJSON. Properties per caller role come from the privacy policy."""

from __future__ import annotations

import gzip
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import Principal, principal
from cadastre.errors import InvalidInput
from cadastre.privacy import Role
from tiles.layers import parse_layers
from tiles.mvt import TileRequest, TileOutOfRange
from tiles.service import cache_key, render_async

router = APIRouter(tags=["tiles"])

MVT_TYPE = "application/vnd.mapbox-vector-tile"


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise TileOutOfRange(message=f"{what} 应为整数 / {what} must be an integer") from None


def _headers(etag: str, who: Principal) -> dict[str, str]:
    cache = "public, max-age=300" if who.role is Role.PUBLIC else "private, max-age=60"
    return {"ETag": etag, "Cache-Control": cache, "Vary": "Authorization, Accept-Encoding",
            "Access-Control-Expose-Headers": "ETag"}


@router.get("/tiles/{layers}/{z}/{x}/{y}.mvt", summary="矢量瓦片 / vector tile (MVT)",
            responses={200: {"content": {MVT_TYPE: {}}}, 204: {"description": "empty tile"}})
async def vector_tile(
    request: Request, layers: str, z: str, x: str, y: str,
    floor: int | None = Query(None, ge=-9, le=200, description="楼层 (units layer)"),
    who: Principal = Depends(principal),
) -> Response:
    chosen = parse_layers(layers)
    req = TileRequest(_int(z, "z"), _int(x, "x"), _int(y, "y"), floor)
    if any(layer.floor_filter for layer in chosen) and floor is None:
        raise InvalidInput("FLOOR_REQUIRED", "分层图层需要 floor 参数 / the units layer needs ?floor=N")
    state = request.app.state
    cache = state.tile_cache
    key = cache_key(chosen, req)
    tile = cache.get(who.audience, key, req.z, req.x, req.y)
    if tile is None:
        epoch = state.tile_epoch
        async with state.pool.connection() as conn:
            mvt = await render_async(conn, chosen, who.role, req)
        if epoch == state.tile_epoch:   # no invalidation ran while we rendered
            tile = cache.put(who.audience, key, req.z, req.x, req.y, mvt)
        else:   # an invalidation ran meanwhile: serve it, don't cache a possibly stale tile
            tile = cache.encode(mvt)
    headers = _headers(tile.etag, who)
    if request.headers.get("if-none-match") == tile.etag:
        return Response(status_code=304, headers=headers)
    if tile.empty:
        return Response(status_code=204, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(tile.data, media_type=MVT_TYPE, headers=headers)
    return Response(gzip.decompress(tile.data), media_type=MVT_TYPE, headers=headers)


@router.get("/tiles/{layers}/tilejson.json", summary="TileJSON 3.0")
async def tilejson(request: Request, layers: str,
                   floor: int | None = Query(None, ge=-9, le=200),
                   who: Principal = Depends(principal)) -> dict[str, Any]:
    chosen = parse_layers(layers)
    base = str(request.base_url).rstrip("/")
    query = f"?floor={floor}" if floor is not None and any(
        layer.floor_filter for layer in chosen) else ""
    bounds = await _bounds(request)
    minzoom = min(layer.minzoom for layer in chosen)
    return {
        "tilejson": "3.0.0",
        "name": ",".join(layer.name for layer in chosen),
        "description": " / ".join(layer.title for layer in chosen),
        "attribution": "不动产登记数据 / cadastre",
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{','.join(layer.name for layer in chosen)}/{{z}}/{{x}}/{{y}}.mvt"
                  + query],
        "minzoom": minzoom,
        "maxzoom": max(layer.maxzoom for layer in chosen),
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, max(minzoom, 15)],
        "vector_layers": [
            {"id": layer.name, "description": layer.title, "minzoom": layer.minzoom,
             "maxzoom": layer.maxzoom,
             "fields": {f.name: f.type for f in layer.visible(who.role)}}
            for layer in chosen
        ],
    }


async def _bounds(request: Request) -> list[float]:
    state = request.app.state
    cached = getattr(state, "data_bounds", None)
    if cached is None:
        async with state.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                "ST_Transform(ST_SetSRID(ST_Extent(geom_3857), 3857), 4326) e FROM cad.parcel "
                "WHERE valid_to IS NULL) s")
            row = await cur.fetchone()
        cached = [round(v, 6) for v in row] if row and row[0] is not None else [
            -180.0, -85.05, 180.0, 85.05]
        state.data_bounds = cached
    return list(cached)
