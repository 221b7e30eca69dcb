"""Seeding the tile cache and exporting tiles to MBTiles / PMTiles archives."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mercantile
import psycopg
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from cadastre.access.privacy import Role
from cadastre.errors import InvalidInput
from cadastre.query.layers import Layer
from tiles.cache import TileCache
from tiles.mvt import MAX_ZOOM, TileRequest
from tiles.service import get_or_render_sync

Tile = tuple[int, int, int]
Bbox = tuple[float, float, float, float]


def parse_bbox(text: str) -> Bbox:
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInput("BBOX_INVALID", "bbox 应为 lon1,lat1,lon2,lat2 / bbox must be "
                           "lon1,lat1,lon2,lat2") from None
    if not (-180 <= w < e <= 180 and -85.06 <= s < n <= 85.06):
        raise InvalidInput("BBOX_INVALID",
                           "bbox 超出范围或顺序颠倒 / bbox out of range or reversed")
    return w, s, e, n


def parse_zooms(text: str) -> list[int]:
    try:
        if "-" in text:
            a, b = (int(v) for v in text.split("-", 1))
        else:
            a = b = int(text)
    except ValueError:
        raise InvalidInput("ZOOMS_INVALID", "zooms 应为 12-16 或 14 / zooms like 12-16 or 14"
                           ) from None
    if not 0 <= a <= b <= MAX_ZOOM:
        raise InvalidInput("ZOOMS_INVALID",
                           f"缩放级别应在 0–{MAX_ZOOM} / zooms must be 0–{MAX_ZOOM}")
    return list(range(a, b + 1))


def data_bbox(conn: psycopg.Connection) -> Bbox:
    row = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Transform("
        "ST_SetSRID(ST_Extent(geom_3857), 3857), 4326) e FROM cad.parcel WHERE valid_to IS NULL) s"
    ).fetchone()
    if not row or row[0] is None:
        raise InvalidInput("NO_DATA", "没有宗地数据 / the registry has no parcels")
    return row  # type: ignore[return-value]


def tiles_in_bbox(conn: psycopg.Connection, bbox: Bbox | None, zooms: Sequence[int]) -> list[Tile]:
    w, s, e, n = bbox or data_bbox(conn)
    return [(t.z, t.x, t.y) for t in mercantile.tiles(w, s, e, n, list(zooms))]


@dataclass
class SeedStats:
    rendered: int = 0
    cached: int = 0
    empty: int = 0
    bytes: int = 0


def seed_tiles(conn: psycopg.Connection, cache: TileCache, layers: tuple[Layer, ...], role: Role,
               tiles: Sequence[Tile], floor: int | None = None,
               progress: Callable[[int], None] | None = None) -> SeedStats:
    stats = SeedStats()
    from tiles.service import cache_key

    for i, (z, x, y) in enumerate(tiles, start=1):
        req = TileRequest(z, x, y, floor)
        if cache.get(role.value, cache_key(layers, req), z, x, y) is not None:
            stats.cached += 1
        else:
            tile = get_or_render_sync(conn, cache, layers, role, req)
            stats.rendered += 1
            stats.empty += tile.empty
            stats.bytes += len(tile.data)
        if progress:
            progress(i)
    return stats


def export_tiles(conn: psycopg.Connection, cache: TileCache, layers: tuple[Layer, ...],
                 tiles: Sequence[Tile], out: Path,
                 progress: Callable[[int], None] | None = None) -> int:
    """Public tiles only (the archive leaves the server). Returns the number of tiles written."""
    suffix = out.suffix.lower()
    if suffix not in (".mbtiles", ".pmtiles"):
        raise InvalidInput("EXPORT_FORMAT",
                           "只支持 .mbtiles 或 .pmtiles / use .mbtiles or .pmtiles")
    found: list[tuple[int, int, int, bytes]] = []
    for i, (z, x, y) in enumerate(tiles, start=1):
        tile = get_or_render_sync(conn, cache, layers, Role.PUBLIC, TileRequest(z, x, y))
        if not tile.empty:
            found.append((z, x, y, tile.data))
        if progress:
            progress(i)
    w, s, e, n = data_bbox(conn)
    zooms = [t[0] for t in tiles] or [0]
    meta = {
        "name": "cadastre", "format": "pbf", "description": "不动产登记矢量瓦片 / cadastre tiles",
        "attribution": "不动产登记数据", "vector_layers": [
            {"id": layer.name, "description": layer.title, "minzoom": layer.minzoom,
             "maxzoom": layer.maxzoom,
             "fields": {f.name: f.type for f in layer.visible(Role.PUBLIC)}} for layer in layers],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.unlink(missing_ok=True)
    if suffix == ".mbtiles":
        _write_mbtiles(tmp, found, meta, (w, s, e, n), min(zooms), max(zooms))
    else:
        _write_pmtiles(tmp, found, meta, (w, s, e, n), min(zooms), max(zooms))
    tmp.replace(out)
    return len(found)


def _write_mbtiles(path: Path, tiles: list[tuple[int, int, int, bytes]], meta: dict,
                   bounds: Bbox, minzoom: int, maxzoom: int) -> None:
    db = sqlite3.connect(path)
    try:
        db.executescript(
            "CREATE TABLE metadata (name text, value text);"
            "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, "
            "tile_data blob);"
            "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);")
        rows = [("name", meta["name"]), ("format", "pbf"), ("description", meta["description"]),
                ("attribution", meta["attribution"]), ("type", "overlay"),
                ("bounds", ",".join(f"{v:.6f}" for v in bounds)),
                ("minzoom", str(minzoom)), ("maxzoom", str(maxzoom)),
                ("json", json.dumps({"vector_layers": meta["vector_layers"]},
                                    ensure_ascii=False))]
        db.executemany("INSERT INTO metadata VALUES (?, ?)", rows)
        # MBTiles rows count from the south (TMS); tiles stay gzip-compressed as the spec expects
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                       [(z, x, (1 << z) - 1 - y, data) for z, x, y, data in tiles])
        db.commit()
    finally:
        db.close()


def _write_pmtiles(path: Path, tiles: list[tuple[int, int, int, bytes]], meta: dict,
                   bounds: Bbox, minzoom: int, maxzoom: int) -> None:
    if not tiles:
        raise InvalidInput("EXPORT_EMPTY", "范围内没有瓦片 / no tiles in that range")
    entries = sorted((zxy_to_tileid(z, x, y), data) for z, x, y, data in tiles)
    w, s, e, n = bounds
    with path.open("wb") as fh:
        writer = Writer(fh)
        for tile_id, data in entries:
            writer.write_tile(tile_id, data)
        writer.finalize(
            {"tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
             "min_zoom": minzoom, "max_zoom": maxzoom,
             "min_lon_e7": int(w * 1e7), "min_lat_e7": int(s * 1e7),
             "max_lon_e7": int(e * 1e7), "max_lat_e7": int(n * 1e7),
             "center_zoom": minzoom, "center_lon_e7": int((w + e) / 2 * 1e7),
             "center_lat_e7": int((s + n) / 2 * 1e7)},
            meta,
        )
