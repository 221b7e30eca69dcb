"""Render-or-serve for vector tiles: the cache first, PostGIS on a miss."""

from __future__ import annotations

import psycopg

from cadastre.access.privacy import Role
from cadastre.query.layers import Layer
from tiles.cache import CachedTile, TileCache, layer_key
from tiles.mvt import TileRequest, tile_params, tile_sql, visible_layers


def render_sync(conn: psycopg.Connection, layers: tuple[Layer, ...], role: Role,
                req: TileRequest) -> bytes:
    shown = visible_layers(layers, req.z)
    if not shown:
        return b""
    row = conn.execute(tile_sql(shown, role), tile_params(req, shown)).fetchone()  # type: ignore[arg-type]
    return bytes(row[0]) if row and row[0] else b""


async def render_async(conn: psycopg.AsyncConnection, layers: tuple[Layer, ...], role: Role,
                       req: TileRequest) -> bytes:
    shown = visible_layers(layers, req.z)
    if not shown:
        return b""
    cur = await conn.execute(tile_sql(shown, role), tile_params(req, shown))  # type: ignore[arg-type]
    row = await cur.fetchone()
    return bytes(row[0]) if row and row[0] else b""


def cache_key(layers: tuple[Layer, ...], req: TileRequest) -> str:
    floor = req.floor if any(layer.floor_filter for layer in layers) else None
    return layer_key((layer.name for layer in layers), floor)


def get_or_render_sync(conn: psycopg.Connection, cache: TileCache, layers: tuple[Layer, ...],
                       role: Role, req: TileRequest) -> CachedTile:
    key = cache_key(layers, req)
    hit = cache.get(role.value, key, req.z, req.x, req.y)
    if hit is not None:
        return hit
    return cache.put(role.value, key, req.z, req.x, req.y, render_sync(conn, layers, role, req))
