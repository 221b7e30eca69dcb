"""3D cadastre: unit volumes (户) extruded from their plan polygons, as 3D Tiles.

Each current unit polygon is extruded from ``base_elevation`` by ``height`` into a closed,
outward-facing mesh (top and bottom by ear clipping, one quad per edge, flat normals), every
vertex georeferenced exactly (see ``georef.py``). One glb per building carries a feature ID per
vertex (``EXT_mesh_features``) and a property table (``EXT_structural_metadata``) whose columns
are exactly what ``privacy.visible_fields("unit", Role.PUBLIC)`` allows from ``CANDIDATES``: no
party data can reach the tiles. Closed volumes work both as a CesiumJS classification layer over
photogrammetry (``Cesium3DTileset`` with ``classificationType``) and as a standalone 3D view.

Heights: the demo's elevations (orthometric-like metres) are used as ellipsoidal heights.

Classification margin: CesiumJS colours (and picks) only the surfaces *inside* a classification
volume, and a photogrammetry facade or roof lies exactly on the unit's boundary (the unit plans
subdivide the building footprint). So the geometry is grown a little: ``MARGIN_XY`` outward in
plan (mitred), ``MARGIN_Z`` down and up, and the units at the top of their building reach
``ROOF_MARGIN`` above it (parapets, roof noise of a real model). The metadata keeps the exact
values (``base_elevation``, ``height``, ``building_area``); only the drawn volume is padded.

Incremental: ``units-index.json`` keeps the ENU anchor and, per building, a fingerprint of its
current unit versions; only buildings whose fingerprint changed (or those asked for) are rebuilt.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mapbox_earcut
import numpy as np
import psycopg
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.polygon import orient

from cadastre.access.privacy import Role, visible_fields
from tiles.threed.bounding_volume import Box
from tiles.threed.content import MeshPart, PropertyTable, write_glb
from tiles.threed.errors import DatasetNotFound
from tiles.threed.georef import EnuFrame, Georeference, SpatialReference
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

CANDIDATES = (
    "unit_code",
    "building_code",
    "floor_no",
    "room_no",
    "use",
    "building_area",
    "base_elevation",
    "height",
)
TYPES = {
    "unit_code": "STRING",
    "building_code": "STRING",
    "floor_no": "INT16",
    "room_no": "STRING",
    "use": "STRING",
    "building_area": "FLOAT64",
    "base_elevation": "FLOAT64",
    "height": "FLOAT64",
}
INDEX = "units-index.json"
FORMAT = 2  # bump when the geometry or the glb layout changes: published buildings are rebuilt
CELL = 500.0  # metres: grouping of building tiles
CELL_ERROR, ROOT_ERROR = 100.0, 2000.0
COLOUR = (0.30, 0.62, 0.95, 1.0)
MARGIN_XY, MARGIN_Z, ROOF_MARGIN = 0.3, 0.1, 1.5  # metres, see the module docstring

FINGERPRINTS = """
SELECT building_code, md5(string_agg(version_id::text, ',' ORDER BY version_id)), count(*)
FROM cad.unit_current GROUP BY building_code
"""
UNITS = """
SELECT building_code, {columns}, srid, ST_AsBinary(geom)
FROM cad.unit_current WHERE building_code = ANY(%s)
ORDER BY building_code, floor_no, unit_code
"""


@dataclass
class UnitStats:
    rebuilt: int = 0
    removed: int = 0
    unchanged: int = 0
    units: int = 0


def public_columns() -> tuple[str, ...]:
    """The unit attributes that may go into 3D metadata (the privacy policy decides)."""
    return visible_fields("unit", Role.PUBLIC, CANDIDATES)


def _triangulate(poly: Polygon) -> np.ndarray:
    rings = [np.asarray(poly.exterior.coords)[:-1, :2]]
    rings += [np.asarray(r.coords)[:-1, :2] for r in poly.interiors]
    verts = np.vstack(rings)
    ends = np.cumsum([len(r) for r in rings]).astype(np.uint32)
    tri = np.asarray(mapbox_earcut.triangulate_float64(verts, ends), dtype=np.int64).reshape(-1, 3)
    p = verts[tri]
    area = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 2, 0] - p[:, 0, 0]) * (
        p[:, 1, 1] - p[:, 0, 1]
    )
    tri[area < 0] = tri[area < 0][:, [0, 2, 1]]  # counter-clockwise seen from above
    return verts[tri]  # (T, 3, 2)


def extrude(geom: Polygon | MultiPolygon, base: float, height: float) -> np.ndarray:
    """Closed volume as unindexed triangles (T, 3, 3) in source coordinates."""
    out = []
    polys = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
    top_z = base + height
    for poly in polys:
        poly = orient(poly, 1.0)  # exterior CCW, holes CW: edge a→b has the solid on its left
        caps = _triangulate(poly)
        if len(caps):
            top = np.concatenate([caps, np.full((*caps.shape[:2], 1), top_z)], axis=2)
            bottom = np.concatenate([caps[:, ::-1], np.full((*caps.shape[:2], 1), base)], axis=2)
            out += [top, bottom]
        for ring in [poly.exterior, *poly.interiors]:
            c = np.asarray(ring.coords)[:, :2]
            a, b = c[:-1], c[1:]
            a0, b0 = (
                np.column_stack([a, np.full(len(a), base)]),
                np.column_stack([b, np.full(len(b), base)]),
            )
            a1, b1 = a0.copy(), b0.copy()
            a1[:, 2] = b1[:, 2] = top_z
            out += [np.stack([a0, b0, b1], axis=1), np.stack([a0, b1, a1], axis=1)]
    return np.concatenate(out) if out else np.zeros((0, 3, 3))


class _Builder:
    def __init__(self, out_dir: Path, index: dict[str, Any]) -> None:
        self.out_dir, self.index = out_dir, index
        self.georefs: dict[int, Georeference] = {}
        self.frame = EnuFrame(tuple(index["anchor"])) if index.get("anchor") else None

    def georef(self, srid: int) -> Georeference:
        if srid not in self.georefs:
            from pyproj import CRS

            self.georefs[srid] = Georeference(SpatialReference(f"EPSG:{srid}", CRS.from_epsg(srid)))
        return self.georefs[srid]

    def building(self, code: str, rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> dict:
        tris, fids = [], []
        srid = rows[0][len(columns)]
        recs = [dict(zip(columns + ("srid", "wkb"), row, strict=True)) for row in rows]
        spans = [
            (float(r.get("base_elevation") or 0), float(r.get("height") or 3)) for r in recs
        ]
        roof = max(b + h for b, h in spans)
        for k, (row, (base, height)) in enumerate(zip(rows, spans, strict=True)):
            geom = shapely.from_wkb(bytes(row[-1]))
            grown = geom.buffer(MARGIN_XY, join_style="mitre", mitre_limit=2.0)
            top = base + height + (ROOF_MARGIN if base + height >= roof - 1e-6 else MARGIN_Z)
            t = extrude(grown, base - MARGIN_Z, top - (base - MARGIN_Z))
            tris.append(t)
            fids.append(np.full(len(t) * 3, k))
        tri = np.concatenate(tris)
        georef = self.georef(int(srid))
        if self.frame is None:
            self.frame = georef.frame_at(tri.reshape(-1, 3).mean(axis=0))
            self.index["anchor"] = list(self.frame.origin)
        enu = self.frame.from_ecef(georef.to_ecef(tri.reshape(-1, 3)))
        t3 = enu.reshape(-1, 3, 3)
        n = np.cross(t3[:, 1] - t3[:, 0], t3[:, 2] - t3[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        table = PropertyTable(
            "unit",
            {
                c: (
                    TYPES[c],
                    [
                        (
                            float(r[i])
                            if TYPES[c] == "FLOAT64"
                            else int(r[i])
                            if TYPES[c] == "INT16"
                            else str(r[i]).strip()
                        )
                        for r in rows
                    ],
                )
                for i, c in enumerate(columns)
            },
        )
        part = MeshPart(
            enu,
            np.arange(len(enu), dtype=np.uint32).reshape(-1, 3),
            normals=np.repeat(n, 3, axis=0),
            feature_ids=np.concatenate(fids),
            color=COLOUR,
        )
        uri = f"buildings/{code}.glb"
        tmp = self.out_dir / (uri + ".tmp")
        box = write_glb(tmp, [part], unlit=False, table=table)
        tmp.replace(self.out_dir / uri)
        return {"uri": uri, "box": [list(box.lo), list(box.hi)], "units": len(rows)}


def _tileset(index: dict[str, Any]) -> Tileset:
    cells: dict[tuple[int, int], list[Tile]] = {}
    for entry in sorted(index["buildings"].values(), key=lambda e: e["uri"]):
        box = Box(tuple(entry["box"][0]), tuple(entry["box"][1]))
        key = (int(box.center[0] // CELL), int(box.center[1] // CELL))
        cells.setdefault(key, []).append(Tile(box, 0.0, entry["uri"]))
    children = []
    for key in sorted(cells):
        tiles = cells[key]
        box = tiles[0].box
        for t in tiles[1:]:
            box = box.union(t.box)
        children.append(Tile(box, CELL_ERROR, children=tiles))
    box = children[0].box
    for c in children[1:]:
        box = box.union(c.box)
    root = Tile(
        box,
        ROOT_ERROR,
        children=children,
        refine="ADD",
        transform=EnuFrame(tuple(index["anchor"])).matrix(),
    )
    return Tileset(root, ROOT_ERROR, extras={"source": "cad.unit", "columns": index["columns"]})


def build_unit_volumes(
    conn: psycopg.Connection, out_dir: Path, buildings: list[str] | None = None, force: bool = False
) -> UnitStats:
    """(Re)build unit-volume tiles in ``out_dir``: ``buildings`` given → those; else the
    buildings whose current units changed since the last build (all with ``force``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "buildings").mkdir(exist_ok=True)
    index_path = out_dir / INDEX
    columns = public_columns()
    index: dict[str, Any] = json.loads(index_path.read_text()) if index_path.is_file() else {}
    previous: set[str] = set()
    if index.get("columns") != list(columns) or index.get("format") != FORMAT:
        # the policy or the tile layout changed: everything published is rebuilt
        previous = set(index.get("buildings", {}))
        for entry in index.get("buildings", {}).values():
            (out_dir / entry["uri"]).unlink(missing_ok=True)
        index, force = {}, True
    index.setdefault("buildings", {})
    index["columns"], index["format"] = list(columns), FORMAT
    current = {r[0].strip(): (r[1], r[2]) for r in conn.execute(FINGERPRINTS)}
    stats = UnitStats(units=sum(c for _, c in current.values()))
    todo = (
        (set(buildings) | previous) & set(current)
        if buildings
        else {
            code
            for code, (fp, _) in current.items()
            if force or index["buildings"].get(code, {}).get("fingerprint") != fp
        }
    )
    for code in [c for c in index["buildings"] if c not in current]:
        (out_dir / index["buildings"].pop(code)["uri"]).unlink(missing_ok=True)
        stats.removed += 1
    builder = _Builder(out_dir, index)
    sql = UNITS.format(columns=", ".join(columns))
    rows_by_building: dict[str, list[tuple[Any, ...]]] = {}
    for row in conn.execute(sql, (sorted(todo),)):
        rows_by_building.setdefault(row[0].strip(), []).append(row[1:])
    for code in sorted(rows_by_building):
        entry = builder.building(code, rows_by_building[code], columns)
        entry["fingerprint"] = current[code][0]
        index["buildings"][code] = entry
        stats.rebuilt += 1
    stats.unchanged = len(index["buildings"]) - stats.rebuilt
    if index["buildings"]:
        _tileset(index).write(out_dir / "tileset.json")
    index_path.write_text(json.dumps(index, separators=(",", ":")))
    return stats


def publish_unit_volumes(
    conn: psycopg.Connection,
    data_dir: Path,
    name: str = "demo-units",
    buildings: list[str] | None = None,
    force: bool = False,
) -> tuple[DatasetInfo, UnitStats]:
    """Build (incrementally) into ``<data_dir>/3dtiles/<name>/`` and update its registry entry."""
    started = time.monotonic()
    folder = dataset_dir(data_dir, name)
    stats = build_unit_volumes(conn, folder, buildings, force)
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
        extra={"units": stats.units, "columns": list(public_columns())},
    )
    info.tiles = Tileset.read(folder / "tileset.json").root.count()
    write_entry(folder, info)
    return info, stats
