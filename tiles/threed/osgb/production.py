"""An OSGB production (``metadata.xml`` + ``Data/Tile_*/Tile_*.osgb``) → a 3D Tiles 1.1 tileset.

Every ``Tile_+xxx_+yyy`` becomes an external tileset (``data/<tile>/tileset.json``) built in a
worker process (``--jobs``; tiles are independent, a worker holds one file's geometry at a
time); the main ``tileset.json`` references them. Files are decoded in-process (``native.py``)
and only a file the decoder refuses goes through ``osgconv`` (``reader.py``), counted. A tile
writes ``done.json`` last; a re-run into the same folder with the same parameters and
unchanged source files keeps it (resumable builds). Inside a tile the hierarchy mirrors the
PagedLOD tree: each PagedLOD is a tile whose content is its own geometry and whose children are
the PagedLODs of its child file(s), ``refine: REPLACE``.

Geometric error: OSG switches a PagedLOD to its child file when the node's bounding sphere covers
more than ``T`` pixels (``PIXEL_SIZE_ON_SCREEN``), i.e. when 2r·K/d > T. Cesium refines when
ε·K/d > 16 (its default maximum screen-space error). Equal at the same distance gives
ε = 16·2r/T, independent of the screen constant K. For ``DISTANCE_FROM_EYE_POINT`` (refine when
d < R) ε = 16·R/K with K = 1080 px / (2·tan 30°). ContextCapture doubles T per level, so ε
halves per level; leaves have ε = 0. A missing child file is a warning naming it (the parent is
kept as a leaf); an unreadable file is an error naming it.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import re
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tiles.threed.bounding_volume import Box
from tiles.threed.compress import NONE, Compression
from tiles.threed.content import MeshPart, write_glb
from tiles.threed.errors import BuildReport, BuildWarning, ThreeDInputError
from tiles.threed.georef import ELLIPSOIDAL, EnuFrame, Georeference, HeightDatum, parse_height_datum
from tiles.threed.osgb.metadata import ProductionMetadata, read_metadata
from tiles.threed.osgb.native import OsgbUnsupported, read_osgb_native
from tiles.threed.osgb.reader import LodNode, read_osgb
from tiles.threed.tile import Tile
from tiles.threed.tileset import Tileset

REFERENCE_SSE = 16.0
SCREEN_K = 1080 / (2 * math.tan(math.radians(30)))
_TILE_DIR = re.compile(r"^Tile_[+-]\d+_[+-]\d+")
DONE = "done.json"  # written last in a finished tile's folder: a re-run skips the tile
DECODERS = ("native", "osgconv")

Progress = Callable[[int, int, str], None]  # (bytes done, bytes total, current file)


def lod_geometric_error(node: LodNode) -> float:
    if not node.threshold or node.threshold <= 0 or not node.child_files:
        return 0.0
    if node.range_mode == "PIXEL_SIZE_ON_SCREEN":
        return REFERENCE_SSE * 2 * node.radius / node.threshold
    return REFERENCE_SSE * node.threshold / SCREEN_K


def find_root_tiles(production: Path) -> list[Path]:
    data = production / "Data"
    if not data.is_dir():
        raise ThreeDInputError("OSGB_NO_DATA", f"缺少 Data 目录 / no Data folder in {production}")
    roots = []
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        f = d / f"{d.name}.osgb"
        if f.is_file():
            roots.append(f)
    if not roots:
        raise ThreeDInputError(
            "OSGB_NO_TILES",
            f"Data 下没有 Tile_*/Tile_*.osgb / no "
            f"Data/Tile_*/Tile_*.osgb root tiles in {production}",
        )
    return roots


@dataclass
class _TileJob:
    root_file: Path
    out_dir: Path  # the dataset folder
    meta: ProductionMetadata
    frame_origin: tuple[float, float, float]
    strict: bool
    pipeline: str | None
    decoder: str = "native"  # "osgconv": every file through osgconv (the reference path)
    compression: Compression = NONE
    datum: HeightDatum = ELLIPSOIDAL
    params: dict[str, Any] = field(default_factory=dict)  # what makes a finished tile reusable


@dataclass
class TileResult:
    name: str
    tile: Tile | None
    warnings: list[BuildWarning] = field(default_factory=list)
    files: int = 0
    bytes_in: int = 0
    vertices: int = 0
    fallbacks: list[str] = field(default_factory=list)  # "file: reason" read through osgconv
    resumed: bool = False


@dataclass
class _LodRecord:
    """What a PagedLOD left once its geometry was written: its content, error, child files."""

    box: Box | None
    uri: str | None
    error: float
    children: list[Path]


class _TileBuilder:
    """One ``Tile_*`` folder, read file by file (breadth first down the PagedLOD tree): each
    file is decoded natively (``native.py``; ``osgconv`` only for a file the decoder cannot
    read), its geometry written at once, and the tile tree assembled from the records at the
    end, so a worker holds one file's geometry at a time."""

    def __init__(self, job: _TileJob, queue: Any) -> None:
        self.job, self.queue = job, queue
        self.report = BuildReport(strict=job.strict)
        self.georef = Georeference(job.meta.srs, job.meta.origin, job.pipeline, job.datum)
        self.frame = EnuFrame(job.frame_origin)
        self.name = job.root_file.parent.name
        self.rel = f"data/{self.name}"
        self.result = TileResult(self.name, None)
        self.records: dict[Path, list[_LodRecord]] = {}

    def run(self, work: Path) -> TileResult:
        resumed = _resume(self.job, self.name)
        if resumed is not None:
            if self.queue is not None:
                self.queue.put((resumed.bytes_in, f"{self.name} (done)"))
            return resumed
        root_file = self.job.root_file.resolve()
        seen = {root_file}
        level = [root_file]
        while level:
            following: list[Path] = []
            for path in level:
                following += self._file(path, work, seen)
            level = following
        tiles = self._assemble(root_file)
        folder = self.job.out_dir / self.rel
        if tiles:
            root = (
                tiles[0]
                if len(tiles) == 1
                else Tile(
                    _union([t.box for t in tiles]),
                    max(t.geometric_error for t in tiles) * 2 or 1.0,
                    children=tiles,
                )
            )
            root.refine = "REPLACE"
            Tileset(root, root.geometric_error).write(folder / "tileset.json")
            self.result.tile = root
        self.result.warnings = self.report.warnings
        _mark_done(self.job, folder, self.result)
        return self.result

    def _read(self, path: Path, work: Path) -> list[LodNode]:
        if self.job.decoder == "native":
            try:
                return read_osgb_native(path, self.report)
            except OsgbUnsupported as exc:
                self.result.fallbacks.append(f"{path.name}: {exc}")
        return read_osgb(path, work, self.report)

    def _file(self, path: Path, work: Path, seen: set[Path]) -> list[Path]:
        """Read one file, write its contents; returns its child files not seen before."""
        nodes = self._read(path, work)
        size = path.stat().st_size
        self.result.files += 1
        self.result.bytes_in += size
        if self.queue is not None:
            self.queue.put((size, path.name))
        records, following = [], []
        for k, node in enumerate(nodes):
            box, uri = None, None
            parts = self._parts(node)
            node.geometries = []
            if parts:
                uri = f"{path.stem}_{k}.glb"
                box = write_glb(
                    self.job.out_dir / self.rel / uri, parts, compression=self.job.compression
                )
            children: list[Path] = []
            for name in node.child_files:
                child = path.parent / name
                if not child.is_file():
                    self.report.warn(
                        "OSGB_MISSING_CHILD",
                        f"子节点文件缺失 / missing child file "
                        f"{name} (referenced by {path.name}); the parent stays a leaf",
                        child,
                    )
                    continue
                child = child.resolve()
                if child in seen:
                    continue
                seen.add(child)
                children.append(child)
            following += children
            records.append(_LodRecord(box, uri, lod_geometric_error(node), children))
        self.records[path] = records
        return following

    def _assemble(self, path: Path) -> list[Tile]:
        tiles = []
        for rec in self.records.pop(path, []):
            children = [t for child in rec.children for t in self._assemble(child)]
            box = rec.box
            for c in children:
                box = c.box.union(box) if box is not None else c.box
            if box is None:
                continue
            ge = rec.error if children else 0.0
            _cap(children, ge)
            tiles.append(Tile(box, ge, rec.uri, children))
        return tiles

    def _parts(self, node: LodNode) -> list[MeshPart]:
        parts = []
        for g in node.geometries:
            enu = self.frame.from_ecef(self.georef.to_ecef(g.positions))
            uvs = None
            if g.uvs is not None:
                uvs = np.column_stack([g.uvs[:, 0], 1.0 - g.uvs[:, 1]]).astype(np.float32)
            parts.append(MeshPart(enu, g.triangles, uvs, g.image, g.image_mime))
            self.result.vertices += len(enu)
        return parts


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _cap(children: list[Tile], parent_ge: float) -> None:
    """Geometric error must decrease down the tree, whatever the source ranges say."""
    for c in children:
        if parent_ge > 0 and c.geometric_error >= parent_ge:
            c.geometric_error = parent_ge / 2
            _cap(c.children, c.geometric_error)


def _union(boxes: list[Box]) -> Box:
    out = boxes[0]
    for b in boxes[1:]:
        out = out.union(b)
    return out


def _resume(job: _TileJob, name: str) -> TileResult | None:
    """The result of a tile finished by an earlier run with the same parameters, if any."""
    folder = job.out_dir / "data" / name
    try:
        done = json.loads((folder / DONE).read_text(encoding="utf-8"))
        if done.get("params") != job.params or done.get("source") != _fingerprint(job.root_file):
            return None
        tile = Tileset.read(folder / "tileset.json").root if done.get("has_tile") else None
    except (OSError, ValueError, KeyError):
        return None
    warnings = [BuildWarning(w["code"], w["message"], w["path"]) for w in done["warnings"]]
    return TileResult(
        name,
        tile,
        warnings,
        done["files"],
        done["bytes_in"],
        done["vertices"],
        done["fallbacks"],
        resumed=True,
    )


def _fingerprint(root_file: Path) -> list[list[Any]]:
    """Names, sizes and modification times of a tile folder's .osgb files."""
    out = []
    for f in sorted(root_file.parent.glob("*.osgb")):
        st = f.stat()
        out.append([f.name, st.st_size, st.st_mtime_ns])
    return out


def _mark_done(job: _TileJob, folder: Path, r: TileResult) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    body = {
        "params": job.params,
        "source": _fingerprint(job.root_file),
        "has_tile": r.tile is not None,
        "files": r.files,
        "bytes_in": r.bytes_in,
        "vertices": r.vertices,
        "fallbacks": r.fallbacks,
        "warnings": [
            {"code": w.code, "message": w.message, "path": str(w.path)} for w in r.warnings
        ],
    }
    tmp = folder / (DONE + ".tmp")
    tmp.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    tmp.replace(folder / DONE)


def _work_root() -> str | None:
    """osgconv's osgt goes to RAM (tmpfs) when there is one: it is written and read once."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _run_job(job: _TileJob, queue: Any) -> TileResult:
    with tempfile.TemporaryDirectory(prefix="osgb-", dir=_work_root()) as work:
        return _TileBuilder(job, queue).run(Path(work))


def _anchor(georef: Georeference, first_root: Path) -> tuple[float, float, float]:
    """The ENU anchor: the first root tile's PagedLOD centre (inside the model)."""
    try:
        nodes = read_osgb_native(first_root, BuildReport())
    except OsgbUnsupported:
        with tempfile.TemporaryDirectory(prefix="osgb-") as work:
            nodes = read_osgb(first_root, Path(work), BuildReport())
    centre = next((n.center for n in nodes if n.center is not None), (0.0, 0.0, 0.0))
    return georef.frame_at(np.array(centre)).origin


@dataclass
class ProductionResult:
    tileset: Path
    tiles: int
    files: int
    bytes_in: int
    vertices: int
    frame: EnuFrame
    box: Box
    warnings: list[BuildWarning]
    srs: str
    fallbacks: list[str] = field(default_factory=list)
    resumed_tiles: int = 0


def build_production(
    production: Path,
    out_dir: Path,
    *,
    srs: str | None = None,
    origin: str | None = None,
    strict: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    decoder: str = "native",
    params: dict[str, Any] | None = None,
    compression: Compression = NONE,
    height_datum: str | None = None,
) -> ProductionResult:
    """Build ``production`` into ``out_dir``; tiles already finished there with the same
    ``params`` (an interrupted earlier run) are kept, not rebuilt."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}")
    meta = read_metadata(production, srs, origin)
    roots = find_root_tiles(production)
    total = sum(f.stat().st_size for r in roots for f in r.parent.glob("*.osgb"))
    datum = parse_height_datum(height_datum, meta.srs)
    georef = Georeference(meta.srs, meta.origin, datum=datum)
    frame = EnuFrame(_anchor(georef, roots[0]))
    tile_params = {**(params or {}), "decoder": decoder, "frame": list(frame.origin)}
    jobs = [
        _TileJob(
            r,
            out_dir,
            meta,
            frame.origin,
            strict,
            georef.pipeline,
            decoder,
            compression,
            datum,
            tile_params,
        )
        for r in roots
    ]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    results: list[TileResult] = []
    done = 0
    # fork is cheap (no re-import); spawn when threads run (e.g. inside the API server)
    ctx = mp.get_context("fork" if threading.active_count() == 1 else "spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        queue = manager.Queue()
        futures = [pool.submit(_run_job, job, queue) for job in jobs]
        pending = set(futures)
        while pending:
            try:
                size, name = queue.get(timeout=0.2)
                done += size
                if progress:
                    progress(done, total, name)
            except Exception:  # queue.Empty
                pass
            pending = {f for f in pending if not f.done()}
        while not queue.empty():
            size, name = queue.get()
            done += size
        results = [f.result() for f in futures]
    if progress:
        progress(total, total, "")
    children = []
    for r in results:
        if r.tile is not None:
            children.append(Tile(r.tile.box, r.tile.geometric_error, f"data/{r.name}/tileset.json"))
    if not children:
        raise ThreeDInputError("OSGB_EMPTY", f"没有可用的几何 / no geometry in {production}")
    box = _union([c.box for c in children])
    root_ge = max(max(c.geometric_error for c in children) * 2, box.diagonal / 2)
    root = Tile(box, root_ge, children=children, refine="REPLACE", transform=frame.matrix())
    path = out_dir / "tileset.json"
    extras = {
        "source": "osgb",
        "srs": meta.srs.label,
        "heightDatum": datum.name,
        "compression": compression.to_dict(),
    }
    Tileset(root, root_ge, extras=extras).write(path)
    warnings = [w for r in results for w in r.warnings]
    return ProductionResult(
        path,
        sum(r.tile.count() for r in results if r.tile),
        sum(r.files for r in results),
        sum(r.bytes_in for r in results),
        sum(r.vertices for r in results),
        frame,
        box,
        warnings,
        meta.srs.label,
        [f for r in results for f in r.fallbacks],
        sum(1 for r in results if r.resumed),
    )
