"""Vector tiles and TileJSON. Properties per caller come from the privacy policy.

A tile is rendered (and cached) per role, so it cannot be cut field by field for one API key or
one county. The rule (``tile_role``):

* public callers get the public property set (served warm by ``api.fastpath``);
* any other caller gets its role's property set only if (a) it has no field grants, or its
  grants cover every field of each requested layer that the role sees beyond the public set,
  and (b) it has no county scope, or every current feature of the requested layers in the tile
  (with its buffer) has a code in its counties;
* otherwise it gets the public property set: never more than it was granted, and never less
  than anyone may see without credentials.

Reads by non-public callers are audited as ``tiles.read`` (target ``layers/z/x/y`` plus the
floor; result_count 1 for a tile with features, 0 for an empty one); public reads are not.
"""

from __future__ import annotations

import gzip
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auditing import record
from api.auth import caller
from api.httpcache import TILE_PRIVATE, TILE_PUBLIC, respond
from api.state import app_state
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.errors import InvalidInput
from cadastre.query.layers import Layer, LayerField, parse_layers
from tiles.mvt import BUFFER, EXTENT, TileOutOfRange, TileRequest
from tiles.service import cache_key, render_async

router = APIRouter(tags=["tiles"])

MVT_TYPE = "application/vnd.mapbox-vector-tile"


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise TileOutOfRange(message=f"{what} 应为整数 / {what} must be an integer") from None


def grants_cover(who: Principal, layers: tuple[Layer, ...]) -> bool:
    """Whether ``who``'s field grants (if any) include every non-public field its role sees."""
    if not who.fields:
        return True
    for layer in layers:
        public = {f.name for f in layer.visible(Role.PUBLIC)}
        extra = [f.name for f in layer.visible(who.role) if f.name not in public]
        if any(f"{layer.entity}.{name}" not in who.fields for name in extra):
            return False
    return True


def tile_fields(layer: Layer, who: Principal) -> tuple[LayerField, ...]:
    """The most a tile of ``layer`` carries for ``who`` (county scope may reduce a tile)."""
    return layer.visible(who.role if grants_cover(who, (layer,)) else Role.PUBLIC)


async def _all_in_scope(request: Request, who: Principal, layers: tuple[Layer, ...],
                        req: TileRequest) -> bool:
    # the feature tables the layers show, each once, with their county code (layers.Layer.scope)
    sources = dict.fromkeys(source for layer in layers for source in layer.scope)
    outside = " OR ".join(
        f"EXISTS (SELECT 1 FROM {s.table} t, b WHERE t.valid_to IS NULL AND t.geom_3857 && b.qenv "
        f"AND {s.county('t')} <> ALL(%(counties)s))" for s in sources)
    sql = (f"WITH b AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {BUFFER / EXTENT})"
           f" AS qenv) SELECT NOT ({outside})")
    async with app_state(request).pool.connection() as conn:
        cur = await conn.execute(sql, {"z": req.z, "x": req.x, "y": req.y,  # type: ignore[arg-type]
                                       "counties": list(who.counties)})
        row = await cur.fetchone()
    return bool(row and row[0])


async def tile_role(request: Request, who: Principal, layers: tuple[Layer, ...],
                    req: TileRequest) -> Role:
    """The role whose property set this tile carries for ``who`` (see the module docstring)."""
    if who.role is Role.PUBLIC or not grants_cover(who, layers):
        return Role.PUBLIC
    if who.counties and not await _all_in_scope(request, who, layers, req):
        return Role.PUBLIC
    return who.role


@router.get("/tiles/{layers}/{z}/{x}/{y}.mvt", summary="矢量瓦片 / vector tile (MVT)",
            responses={200: {"content": {MVT_TYPE: {}}}, 204: {"description": "empty tile"}})
async def vector_tile(
    request: Request, layers: str, z: str, x: str, y: str,
    floor: int | None = Query(None, ge=-9, le=200, description="楼层 (units layer)"),
    who: Principal = Depends(caller),
) -> Response:
    chosen = parse_layers(layers)
    req = TileRequest(_int(z, "z"), _int(x, "x"), _int(y, "y"), floor)
    if any(layer.floor_filter for layer in chosen) and floor is None:
        raise InvalidInput("FLOOR_REQUIRED",
                           "分层图层需要 floor 参数 / the units layer needs ?floor=N")
    state = app_state(request)
    cache = state.tile_cache
    key = cache_key(chosen, req)
    role = await tile_role(request, who, chosen, req)
    tile = cache.get(role.value, key, req.z, req.x, req.y)
    if tile is None:
        epoch = state.tile_epoch
        mvt = await state.reads.run(lambda conn: render_async(conn, chosen, role, req),
                                    replica=role is Role.PUBLIC)
        if epoch == state.tile_epoch:   # no invalidation ran while we rendered
            tile = cache.put(role.value, key, req.z, req.x, req.y, mvt)
        else:   # an invalidation ran meanwhile: serve it, don't cache a possibly stale tile
            tile = cache.encode(mvt)
    if who.role is not Role.PUBLIC:
        floor_note = f"?floor={req.floor}" if any(x.floor_filter for x in chosen) else ""
        await record(request, who, "tiles.read",
                     f"{','.join(layer.name for layer in chosen)}/{req.z}/{req.x}/{req.y}"
                     f"{floor_note}", 0 if tile.empty else 1)
    policy = TILE_PUBLIC if who.role is Role.PUBLIC else TILE_PRIVATE
    data = tile.data
    return respond(request, tile.etag, policy, MVT_TYPE, identity=lambda: gzip.decompress(data),
                   gzipped=data, empty=tile.empty)


@router.get("/tiles/{layers}/tilejson.json", summary="TileJSON 3.0")
async def tilejson(request: Request, layers: str,
                   floor: int | None = Query(None, ge=-9, le=200),
                   who: Principal = Depends(caller)) -> dict[str, Any]:
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
             "fields": {f.name: f.type for f in tile_fields(layer, who)}}
            for layer in chosen
        ],
    }


async def _bounds(request: Request) -> list[float]:
    state = app_state(request)
    cached = state.data_bounds
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
