"""Unit volumes of the whole register as 3D Tiles: a spatial hierarchy with levels of detail,
built in parallel and updated incrementally.

Layout of a units dataset (all in one ENU frame anchored in the register, see ``georef.py``)::

    tileset.json                 root, one child per occupied COARSE cell (1024 m square)
    shells/<i>_<j>.glb           that cell's building shells (far LOD; feature = building)
    cell_<i>_<j>.json            external tileset: FINE cells (256 m) → one tile per building
    buildings/<code>.glb         the unit volumes of one building (near LOD; feature = unit)
    units-index.json             anchor, options, and per building its fingerprint, cell, box

A cell refines (``REPLACE``) from its shells to the unit volumes when its geometric error
(``SHELL_ERROR`` metres) exceeds CesiumJS's 16 px, i.e. nearer than ≈ 1.4 km on a 1080 px
screen; far away only the shells of the cells in view are fetched, and the root tileset lists
cells, not buildings, so its size grows with the area, not with the number of units.

Incremental: a building's fingerprint is the highest version ID and the count of its current
units (every change to a unit writes a new version with a higher ID; a removal changes the
count), read in one grouped scan. Only changed buildings are rebuilt, then the shells and the
external tileset of the cells they left or entered, then the root. A change of the privacy
policy's public columns, of the compression or of the height datum rebuilds everything.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely

from tiles.threed.bounding_volume import Box
from tiles.threed.compress import NONE, Compression
from tiles.threed.errors import DatasetNotFound
from tiles.threed.georef import ELLIPSOIDAL, EnuFrame, HeightDatum, parse_height_datum
from tiles.threed.registry import (
    DatasetInfo,
    dataset_dir,
    extent_of_tileset,
    folder_size,
    now,
    write_entry,
)
from tiles.threed.tile import Tile
from tiles.threed.tileset import Tileset
from tiles.threed.units import BuildingWriter, public_columns

INDEX = "units-index.json"
FORMAT = 3  # bump when the geometry or the layout changes: everything is rebuilt
COARSE, FINE = 1024.0, 256.0
ROOT_ERROR, SHELL_ERROR, CELL_ERROR, FINE_ERROR = 100_000.0, 24.0, 12.0, 6.0
BATCH = 48  # buildings per worker task

FINGERPRINTS = """
SELECT building_code, max(version_id)::text || ':' || count(*)::text, count(*)
FROM cad.unit_current GROUP BY building_code
"""
UNITS = """
SELECT building_code, {columns}, srid, ST_AsBinary(geom)
FROM cad.unit_current WHERE building_code = ANY(%s)
ORDER BY building_code, floor_no, unit_code
"""
FOOTPRINTS = """
SELECT building_code, srid, ST_AsBinary(geom) FROM cad.building_current
WHERE building_code = ANY(%s)
"""
Progress = Callable[[int, int, str], None]  # (units done, units to do, what)


@dataclass
class UnitStats:
    rebuilt: int = 0
    removed: int = 0
    unchanged: int = 0
    units: int = 0
    cells: int = 0


def _options(columns: tuple[str, ...], compression: Compression, datum: HeightDatum) -> dict:
    return {
        "format": FORMAT,
        "columns": list(columns),
        "compression": compression.to_dict(),
        "height_datum": datum.name,
    }


def _cell(box: list[list[float]], size: float) -> str:
    cx, cy = (box[0][0] + box[1][0]) / 2, (box[0][1] + box[1][1]) / 2
    return f"{int(np.floor(cx / size))}_{int(np.floor(cy / size))}"


# ---------------------------------------------------------------- workers
_WRITER: dict[tuple[Any, ...], BuildingWriter] = {}


def _build_batch(args: tuple[Any, ...]) -> list[tuple[str, dict[str, Any]]]:
    out_dir, origin, compression, datum, columns, batch = args
    key = (str(out_dir), tuple(origin), compression, datum.name)
    if key not in _WRITER:
        _WRITER.clear()
        _WRITER[key] = BuildingWriter(out_dir, EnuFrame(tuple(origin)), compression, datum)
    writer = _WRITER[key]
    return [(code, writer.building(code, rows, columns)) for code, rows in batch]


def _batches(cursor: Any, size: int) -> Iterator[list[tuple[str, list[tuple[Any, ...]]]]]:
    batch: list[tuple[str, list[tuple[Any, ...]]]] = []
    code: str | None = None
    rows: list[tuple[Any, ...]] = []
    for row in cursor:
        c = row[0].strip()
        if c != code:
            if code is not None:
                batch.append((code, rows))
                if len(batch) >= size:
                    yield batch
                    batch = []
            code, rows = c, []
        rows.append(row[1:])
    if code is not None:
        batch.append((code, rows))
    if batch:
        yield batch


def _run_batches(
    batches: Iterator[list[Any]], args: tuple[Any, ...], workers: int
) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Results of ``_build_batch`` over ``batches``, at most ``2 × workers`` in flight."""
    if workers <= 1:
        for batch in batches:
            yield _build_batch((*args, batch))
        return
    ctx = mp.get_context("fork" if threading.active_count() == 1 else "spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending: list[Future[list[tuple[str, dict[str, Any]]]]] = []
        for batch in batches:
            pending.append(pool.submit(_build_batch, (*args, batch)))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for f in pending:
            yield f.result()


# ---------------------------------------------------------------- the build
def _load_index(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}  # type: ignore[no-any-return]
    except ValueError:
        return {}


def _anchor(conn: psycopg.Connection, codes: list[str], datum: HeightDatum) -> EnuFrame:
    row = conn.execute(
        "SELECT srid, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)), base_elevation "
        "FROM cad.unit_current WHERE building_code = %s LIMIT 1",
        (codes[0],),
    ).fetchone()
    assert row is not None
    writer = BuildingWriter(Path("."), EnuFrame((0.0, 0.0, 0.0)), datum=datum)
    pts = np.array([[float(row[1]), float(row[2]), float(row[3])]])
    return writer.georef(int(row[0])).frame_at(pts)


def build_unit_volumes(
    conn: psycopg.Connection,
    out_dir: Path,
    buildings: list[str] | None = None,
    force: bool = False,
    *,
    compression: Compression = NONE,
    datum: HeightDatum = ELLIPSOIDAL,
    workers: int = 1,
    progress: Progress | None = None,
) -> UnitStats:
    """(Re)build the unit-volume tiles in ``out_dir``: ``buildings`` given → those; else the
    buildings whose current units changed since the last build (all with ``force``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    index_path = out_dir / INDEX
    columns = public_columns()
    index = _load_index(index_path)
    options = _options(columns, compression, datum)
    if index.get("options") != options:
        for entry in index.get("buildings", {}).values():
            (out_dir / entry["uri"]).unlink(missing_ok=True)
        for cell in index.get("cells", {}):
            _remove_cell(out_dir, cell)
        index, force = {}, True
    index["options"] = options
    entries: dict[str, dict[str, Any]] = index.setdefault("buildings", {})
    current = {r[0].strip(): (r[1], int(r[2])) for r in conn.execute(FINGERPRINTS)}
    stats = UnitStats(units=sum(n for _, n in current.values()))
    if buildings:
        todo = set(buildings) & set(current)
    else:
        todo = {
            c
            for c, (fp, _) in current.items()
            if force or entries.get(c, {}).get("fingerprint") != fp
        }
    dirty: set[str] = set()
    for code in [c for c in entries if c not in current]:
        entry = entries.pop(code)
        (out_dir / entry["uri"]).unlink(missing_ok=True)
        dirty.add(entry["cell"])
        stats.removed += 1
    ordered = sorted(todo)
    if ordered and "anchor" not in index:
        index["anchor"] = list(_anchor(conn, ordered, datum).origin)
    total, done = sum(current[c][1] for c in ordered), 0
    args = (out_dir, index.get("anchor"), compression, datum, columns)
    with conn.transaction(), conn.cursor(name="unit_volumes") as cur:  # streamed
        cur.itersize = 20_000
        cur.execute(UNITS.format(columns=", ".join(columns)), (ordered,))
        for results in _run_batches(_batches(cur, BATCH), args, max(1, workers)):
            for code, entry in results:
                if code in entries:
                    dirty.add(entries[code]["cell"])
                entry["fingerprint"] = current[code][0]
                entry["cell"] = _cell(entry["box"], COARSE)
                dirty.add(entry["cell"])
                entries[code] = entry
                stats.rebuilt += 1
                done += entry["units"]
            if progress:
                progress(done, total, "units")
    stats.unchanged = len(entries) - stats.rebuilt
    if dirty:
        _write_cells(conn, out_dir, index, dirty, compression, datum, progress)
    cells = index.setdefault("cells", {})
    stats.cells = len(cells)
    if cells:
        _root(index).write(out_dir / "tileset.json")
    index_path.write_text(json.dumps(index, separators=(",", ":")))
    return stats


def _remove_cell(out_dir: Path, cell: str) -> None:
    (out_dir / "shells" / f"{cell}.glb").unlink(missing_ok=True)
    (out_dir / f"cell_{cell}.json").unlink(missing_ok=True)


def _write_cells(
    conn: psycopg.Connection,
    out_dir: Path,
    index: dict[str, Any],
    dirty: set[str],
    compression: Compression,
    datum: HeightDatum,
    progress: Progress | None,
) -> None:
    """Shells and external tileset of each dirty cell (or its removal when it is empty)."""
    by_cell: dict[str, list[str]] = {}
    for code, entry in index["buildings"].items():
        if entry["cell"] in dirty:
            by_cell.setdefault(entry["cell"], []).append(code)
    cells = index.setdefault("cells", {})
    writer = BuildingWriter(out_dir, EnuFrame(tuple(index["anchor"])), compression, datum)
    for k, cell in enumerate(sorted(dirty)):
        codes = sorted(by_cell.get(cell, []))
        if not codes:
            cells.pop(cell, None)
            _remove_cell(out_dir, cell)
            continue
        footprints = {
            r[0].strip(): (int(r[1]), shapely.from_wkb(bytes(r[2])))
            for r in conn.execute(FOOTPRINTS, (codes,))
        }
        entries = [index["buildings"][c] for c in codes]
        shells = [
            (c, *footprints[c], *e["z"])
            for c, e in zip(codes, entries, strict=True)
            if c in footprints
        ]
        box = _union([Box(tuple(e["box"][0]), tuple(e["box"][1])) for e in entries])
        if shells:
            box = box.union(writer.shells(f"shells/{cell}.glb", shells))
        _cell_tileset(entries, box).write(out_dir / f"cell_{cell}.json")
        cells[cell] = {"box": [list(box.lo), list(box.hi)], "shells": bool(shells)}
        if progress:
            progress(k + 1, len(dirty), "cells")


def _cell_tileset(entries: list[dict[str, Any]], box: Box) -> Tileset:
    fine: dict[str, list[Tile]] = {}
    for e in entries:
        b = Box(tuple(e["box"][0]), tuple(e["box"][1]))
        fine.setdefault(_cell(e["box"], FINE), []).append(Tile(b, 0.0, e["uri"]))
    children = [
        Tile(_union([t.box for t in tiles]), FINE_ERROR, children=tiles)
        for _, tiles in sorted(fine.items())
    ]
    return Tileset(Tile(box, CELL_ERROR, children=children, refine="REPLACE"), CELL_ERROR)


def _root(index: dict[str, Any]) -> Tileset:
    children = []
    for cell, c in sorted(index["cells"].items()):
        box = Box(tuple(c["box"][0]), tuple(c["box"][1]))
        units = Tile(box, CELL_ERROR, f"cell_{cell}.json")
        shells = f"shells/{cell}.glb" if c["shells"] else None
        children.append(Tile(box, SHELL_ERROR, shells, [units]))
    root = Tile(
        _union([c.box for c in children]),
        ROOT_ERROR,
        children=children,
        refine="REPLACE",
        transform=EnuFrame(tuple(index["anchor"])).matrix(),
    )
    extras = {"source": "cad.unit", **index["options"]}
    return Tileset(root, ROOT_ERROR, extras=extras)


def _union(boxes: list[Box]) -> Box:
    out = boxes[0]
    for b in boxes[1:]:
        out = out.union(b)
    return out


def publish_unit_volumes(
    conn: psycopg.Connection,
    data_dir: Path,
    name: str = "demo-units",
    buildings: list[str] | None = None,
    force: bool = False,
    *,
    compression: Compression | None = None,
    datum: HeightDatum | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> tuple[DatasetInfo, UnitStats]:
    """Build (incrementally) into ``<data_dir>/3dtiles/<name>/`` and update its registry
    entry. ``compression`` / ``datum`` None keep what the dataset was built with (else the
    settings' height datum and no compression)."""
    started = time.monotonic()
    folder = dataset_dir(data_dir, name)
    previous = _load_index(folder / INDEX).get("options", {})
    if compression is None:
        c = previous.get("compression") or {}
        compression = Compression(**c) if c else NONE
    if datum is None:
        datum = parse_height_datum(previous.get("height_datum") or default_height_datum())
    stats = build_unit_volumes(
        conn,
        folder,
        buildings,
        force,
        compression=compression,
        datum=datum,
        workers=workers,
        progress=progress,
    )
    if not (folder / "tileset.json").is_file():
        raise DatasetNotFound(message="没有现势户 / no current units to build")
    extent, heights = extent_of_tileset(folder / "tileset.json")
    info = DatasetInfo(
        name=name,
        kind="units",
        created=now(),
        extent=extent,
        heights=heights,
        source="cad.unit",
        srs="EPSG:4978",
        tiles=0,
        bytes_out=folder_size(folder),
        seconds=round(time.monotonic() - started, 2),
        extra={
            "units": stats.units,
            "columns": list(public_columns()),
            "cells": stats.cells,
            "compression": compression.to_dict(),
            "height_datum": datum.name,
        },
    )
    info.tiles = stats.units and len(_load_index(folder / INDEX).get("buildings", {}))
    write_entry(folder, info)
    return info, stats


def default_height_datum() -> str:
    """``CADASTRE_THREED_HEIGHT_DATUM`` (what the register's floor elevations are)."""
    from cadastre.settings import get_settings

    return get_settings().tiles.threed_height_datum
