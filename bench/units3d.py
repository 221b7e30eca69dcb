"""Unit volumes of a scaled district as 3D Tiles: build time, size, and bytes a viewer fetches.

    python -m bench.units3d --scale 20000                 # full district of 20k parcels (units)
    python -m bench.units3d --scale 20000 --compress draco

The database is the benchmarks' scaled demo (``bench.build_scaled``, with units). Measured:

* full build (``--workers``), units per second, output size and files; projection to 10 M
  units (the build is linear in units: one pass over the rows, buildings in parallel);
* an incremental run with nothing changed (the grouped fingerprint scan) and one after a
  building's units changed (that building and its cell only);
* bytes a viewer fetches for a district view and a street view: the tileset is traversed the
  way CesiumJS does it — a tile in the view frustum refines when its screen-space error
  ``geometricError · 1080 / (2 · d · tan 30°)`` exceeds 16 px, for a camera looking straight
  down (60° vertical field of view, 16:9) — and every tileset JSON (gzip, as served) and content
  it would request is counted. Parents are counted as well as their children (CesiumJS's
  default traversal loads them first), so this is an upper bound.

Peer in the same run: ``SELECT`` of the same unit rows with ``ST_AsBinary`` (the floor of any
builder reading the register).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from bench.common import console, scaled_demo
from cadastre.settings import PROJECT_ROOT
from tiles.threed.compress import Compression
from tiles.threed.unit_tiles import build_unit_volumes

OUT = PROJECT_ROOT / "var" / "bench" / "units3d"
TAN30 = math.tan(math.radians(30))


def _box(tile: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(tile["boundingVolume"]["box"], dtype=np.float64)
    c, axes = b[:3], b[3:].reshape(3, 3)
    half = np.abs(axes).sum(axis=0)
    return c - half, c + half


def fetched_bytes(folder: Path, camera: tuple[float, float, float]) -> dict[str, Any]:
    """What a viewer at ``camera`` (ENU x, y, height above the ENU origin) looking down loads."""
    cx, cy, h = camera
    half_y = h * TAN30
    half_x = half_y * 16 / 9
    counted: dict[str, Any] = {"json_gzip": 0, "json_raw": 0, "content": 0, "contents": 0,
                               "tilesets": 0}

    def visible(lo: np.ndarray, hi: np.ndarray) -> bool:
        return bool(lo[0] <= cx + half_x and hi[0] >= cx - half_x
                    and lo[1] <= cy + half_y and hi[1] >= cy - half_y and lo[2] <= h)

    def distance(lo: np.ndarray, hi: np.ndarray) -> float:
        p = np.clip(np.array([cx, cy, h]), lo, hi)
        return max(float(np.linalg.norm(p - np.array([cx, cy, h]))), 1.0)

    def load(path: Path) -> dict[str, Any]:
        raw = path.read_bytes()
        counted["json_raw"] += len(raw)
        counted["json_gzip"] += len(gzip.compress(raw, 6))
        counted["tilesets"] += 1
        return json.loads(raw)  # type: ignore[no-any-return]

    def visit(tile: dict[str, Any], base: Path) -> None:
        lo, hi = _box(tile)
        if not visible(lo, hi):
            return
        uri = (tile.get("content") or {}).get("uri")
        if uri and uri.endswith(".json"):
            sub = load(base / uri)
            visit(sub["root"], (base / uri).parent)
        elif uri:
            counted["content"] += (base / uri).stat().st_size
            counted["contents"] += 1
        sse = tile["geometricError"] * 1080 / (2 * distance(lo, hi) * TAN30)
        if sse > 16:
            for child in tile.get("children", []):
                visit(child, base)

    root = load(folder / "tileset.json")
    visit(root["root"], folder)
    counted["total_mb"] = round((counted["json_gzip"] + counted["content"]) / 1e6, 2)
    return counted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scale", type=int, default=20_000, help="parcels of the scaled district")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--compress", default="draco", choices=("none", "draco"))
    args = ap.parse_args()
    url = scaled_demo(args.scale, units=True)
    out = OUT / f"{args.scale}-{args.compress}"
    shutil.rmtree(out, ignore_errors=True)
    with psycopg.connect(url) as conn:
        n_units = conn.execute("SELECT count(*) FROM cad.unit_current").fetchone()[0]
        t0 = time.monotonic()
        rows = sum(1 for _ in conn.execute(
            "SELECT building_code, ST_AsBinary(geom) FROM cad.unit_current"))
        peer = time.monotonic() - t0
        t0 = time.monotonic()
        stats = build_unit_volumes(conn, out, workers=args.workers,
                                   compression=Compression(args.compress))
        full = time.monotonic() - t0
        t0 = time.monotonic()
        again = build_unit_volumes(conn, out, workers=args.workers,
                                   compression=Compression(args.compress))
        noop = time.monotonic() - t0
        code = conn.execute("SELECT building_code FROM cad.unit_current LIMIT 1").fetchone()[0]
        t0 = time.monotonic()
        one = build_unit_volumes(conn, out, buildings=[code.strip()], workers=1,
                                 compression=Compression(args.compress))
        single = time.monotonic() - t0
    files = [p for p in out.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    root = json.loads((out / "tileset.json").read_text())["root"]
    lo, hi = _box(root)
    centre = (lo + hi) / 2
    views = {name: fetched_bytes(out, (float(centre[0]), float(centre[1]), h))
             for name, h in (("district_1500m", 1500.0), ("district_3000m", 3000.0),
                             ("street_300m", 300.0))}
    per_unit = full / max(n_units, 1)
    result = {
        "scale_parcels": args.scale, "units": n_units, "buildings": stats.rebuilt,
        "cells": stats.cells, "workers": args.workers, "compress": args.compress,
        "full_build_s": round(full, 1), "units_per_s": round(n_units / full),
        "projected_10M_units_min": round(per_unit * 10_000_000 / 60, 1),
        "noop_incremental_s": round(noop, 2), "noop_rebuilt": again.rebuilt,
        "one_building_s": round(single, 2), "one_building_rebuilt": one.rebuilt,
        "size_mb": round(size / 1e6, 1), "files": len(files),
        "root_tileset_kb": round((out / "tileset.json").stat().st_size / 1e3, 1),
        "extent_m": [round(float(v)) for v in hi - lo],
        "views": views,
        "peer_select_rows_s": round(peer, 1), "peer_rows": rows,
        "build_vs_select": round(full / peer, 1) if peer else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    console.print(f"[bold]units3d[/]: {n_units} units, {stats.rebuilt} buildings, {stats.cells} "
                  f"cells in {full:.1f} s ({n_units / full:.0f} units/s, {args.workers} workers) "
                  f"→ 10 M units ≈ {per_unit * 1e7 / 60:.0f} min; {size / 1e6:.1f} MB in "
                  f"{len(files)} files; no-change run {noop:.1f} s; one building {single:.2f} s")
    for name, v in views.items():
        console.print(f"  {name}: {v['total_mb']} MB ({v['contents']} contents, "
                      f"{v['tilesets']} tileset JSONs)")
    console.print(f"peer: SELECT of the unit rows {peer:.1f} s (build = {full / peer:.1f}×)")
    console.print_json(json.dumps(result))


if __name__ == "__main__":
    main()
