"""Disk cache of rendered tiles, invalidated exactly where the data changed.

Layout: ``<root>/<audience>/<layer key>/<z>/<x>/<y>.mvt.gz`` where the layer key is the requested
layer list plus any floor (``parcels,buildings`` or ``units@3``). Tiles are stored gzip-compressed
(served as is to clients that accept gzip); an empty file means "known empty" (204).

Changes reach the cache through ``cad.tile_invalidation`` (filled by triggers on every published
table): ``drain_queue`` consumes the queue (``FOR UPDATE SKIP LOCKED``, so several workers sharing
the data dir never process an entry twice) and deletes, at every cached zoom, exactly the tiles
whose buffered envelope meets a changed feature's extent.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cadastre.query.layers import layers_for_entity
from tiles.mvt import BUFFER, EXTENT, WORLD

log = logging.getLogger(__name__)

ORIGIN = WORLD / 2


@dataclass(frozen=True)
class CachedTile:
    data: bytes          # gzip-compressed MVT, b"" for an empty tile
    etag: str

    @property
    def empty(self) -> bool:
        return not self.data


def etag_for(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


def layer_key(layer_names: Iterable[str], floor: int | None) -> str:
    key = ",".join(layer_names)
    return f"{key}@{floor}" if floor is not None else key


def key_layers(key: str) -> set[str]:
    return set(key.split("@", 1)[0].split(","))


def tile_range(bbox: tuple[float, float, float, float], z: int,
               buffer_ratio: float = BUFFER / EXTENT) -> tuple[int, int, int, int]:
    """Tiles at zoom z whose envelope, grown by the MVT buffer, meets a 3857 bbox."""
    n = 1 << z
    size = WORLD / n
    pad = size * buffer_ratio
    minx, miny, maxx, maxy = bbox
    x0 = math.floor((minx - pad + ORIGIN) / size)
    x1 = math.floor((maxx + pad + ORIGIN) / size)
    y0 = math.floor((ORIGIN - (maxy + pad)) / size)
    y1 = math.floor((ORIGIN - (miny - pad)) / size)
    clamp = lambda v: max(0, min(n - 1, v))  # noqa: E731
    return clamp(x0), clamp(y0), clamp(x1), clamp(y1)


class TileCache:
    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled

    def path(self, audience: str, key: str, z: int, x: int, y: int) -> Path:
        return self.root / audience / key / str(z) / str(x) / f"{y}.mvt.gz"

    def get(self, audience: str, key: str, z: int, x: int, y: int) -> CachedTile | None:
        if not self.enabled:
            return None
        try:
            data = self.path(audience, key, z, x, y).read_bytes()
        except FileNotFoundError:
            return None
        return CachedTile(data, etag_for(data))

    @staticmethod
    def encode(mvt: bytes) -> CachedTile:
        """The stored form of a rendered tile: gzip-compressed, with its ETag."""
        data = gzip.compress(mvt, compresslevel=6, mtime=0) if mvt else b""
        return CachedTile(data, etag_for(data))

    def put(self, audience: str, key: str, z: int, x: int, y: int, mvt: bytes) -> CachedTile:
        tile = self.encode(mvt)
        if not self.enabled:
            return tile
        target = self.path(audience, key, z, x, y)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(tile.data)
        os.replace(tmp, target)
        return tile

    def clear(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)

    # ------------------------------------------------------------ invalidation
    def _keys_touching(self, layer_names: set[str]) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for audience in self.root.iterdir():
            if not audience.is_dir():
                continue
            for key_dir in audience.iterdir():
                if key_dir.is_dir() and key_layers(key_dir.name) & layer_names:
                    yield key_dir

    def invalidate(self, entity: str, bbox: tuple[float, float, float, float]) -> int:
        """Delete every cached tile of a layer fed by ``entity`` that the bbox touches."""
        removed = 0
        for key_dir in self._keys_touching(layers_for_entity(entity)):
            for zdir in key_dir.iterdir():
                if not zdir.name.isdigit():
                    continue
                z = int(zdir.name)
                x0, y0, x1, y1 = tile_range(bbox, z)
                for x in range(x0, x1 + 1):
                    xdir = zdir / str(x)
                    if not xdir.is_dir():
                        continue
                    for y in range(y0, y1 + 1):
                        try:
                            (xdir / f"{y}.mvt.gz").unlink()
                            removed += 1
                        except FileNotFoundError:
                            pass
        return removed

    def drain_queue(self, conn: psycopg.Connection, batch: int = 5000) -> tuple[int, int]:
        """Consume queued invalidations; returns (entries consumed, tiles removed)."""
        removed = entries = 0
        while True:
            with conn.transaction():
                rows = conn.execute(
                    """DELETE FROM cad.tile_invalidation WHERE id IN (
                           SELECT id FROM cad.tile_invalidation ORDER BY id
                           LIMIT %s FOR UPDATE SKIP LOCKED)
                       RETURNING entity, ST_XMin(bbox), ST_YMin(bbox), ST_XMax(bbox),
                                 ST_YMax(bbox)""",
                    (batch,),
                ).fetchall()
                entries += len(rows)
                for entity, *bbox in rows:
                    removed += self.invalidate(entity, tuple(bbox))  # type: ignore[arg-type]
            if len(rows) < batch:
                break
        if removed:
            log.info("tile cache: %d tiles invalidated", removed)
        return entries, removed
