"""Textured meshes (OBJ+MTL+textures, PLY, GLB/glTF) with a given CRS and origin → 3D Tiles.

Axes: OBJ/PLY are read as x = easting, y = northing, z = up (photogrammetry exports); glTF/GLB
is y-up by definition and is turned to z-up first. ``origin`` is added before georeferencing.
Small meshes become one tile; larger ones are cut into grid cells of at most ~``MAX_TRIANGLES``
triangles (leaves, geometric error 0) under a root without content.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from tiles.threed.bounding_volume import Box
from tiles.threed.compress import NONE, Compression
from tiles.threed.content import MeshPart, write_glb
from tiles.threed.errors import BuildReport, ThreeDInputError
from tiles.threed.georef import EnuFrame, Georeference
from tiles.threed.tile import Tile
from tiles.threed.tileset import Tileset

MESH_SUFFIXES = {".obj", ".ply", ".glb", ".gltf"}
MAX_TRIANGLES = 200_000


def is_mesh_ply(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(4096)
    return b"element face" in head and b"element face 0" not in head


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _load(path: Path, report: BuildReport) -> list[trimesh.Trimesh]:
    try:
        loaded = trimesh.load(path, process=False, maintain_order=True)
    except Exception as exc:  # trimesh raises many kinds
        raise ThreeDInputError(
            "MESH_UNREADABLE", f"无法读取网格 / cannot read mesh {path}: {exc}"
        ) from exc
    if isinstance(loaded, trimesh.Scene):
        meshes = [g for g in loaded.dump(concatenate=False) if isinstance(g, trimesh.Trimesh)]
    else:
        meshes = [loaded] if isinstance(loaded, trimesh.Trimesh) else []
    meshes = [m for m in meshes if len(m.faces)]
    if not meshes:
        raise ThreeDInputError("MESH_EMPTY", f"网格没有三角形 / no triangles in {path}")
    if path.suffix.lower() == ".obj":
        for mtl_ref in _missing_textures(path):
            report.warn(
                "THREED_TEXTURE_MISSING",
                f"纹理缺失 / texture {mtl_ref} not found: untextured",
                path,
            )
    return meshes


def _missing_textures(obj: Path) -> list[str]:
    missing = []
    for line in obj.read_text(errors="replace").splitlines()[:200]:
        if line.startswith("mtllib"):
            mtl = obj.parent / line.split(None, 1)[1].strip()
            if mtl.is_file():
                for ml in mtl.read_text(errors="replace").splitlines():
                    if ml.strip().startswith("map_Kd"):
                        ref = ml.strip().split(None, 1)[1]
                        if not (mtl.parent / ref).is_file():
                            missing.append(ref)
    return missing


def _part(mesh: trimesh.Trimesh, enu: np.ndarray) -> MeshPart:
    part = MeshPart(enu, np.asarray(mesh.faces, dtype=np.uint32))
    visual = mesh.visual
    uv = getattr(visual, "uv", None)
    material = getattr(visual, "material", None)
    image = getattr(material, "image", None) or getattr(material, "baseColorTexture", None)
    if uv is not None and len(uv) == len(enu) and image is not None:
        part.uvs = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]]).astype(np.float32)
        part.image = _jpeg(image)
    else:
        colour = getattr(material, "main_color", None)
        if colour is not None:
            part.color = tuple(float(c) / 255 for c in colour[:4])  # type: ignore[assignment]
    return part


def build_mesh(
    source: Path,
    out_dir: Path,
    georef: Georeference,
    report: BuildReport,
    compression: Compression = NONE,
) -> tuple[Path, EnuFrame, Box, int]:
    meshes = _load(source, report)
    yup = source.suffix.lower() in (".glb", ".gltf")
    local = []
    for m in meshes:
        v = np.asarray(m.vertices, dtype=np.float64)
        local.append(np.column_stack([v[:, 0], -v[:, 2], v[:, 1]]) if yup else v)
    allpts = np.vstack(local)
    frame = georef.frame_at((allpts.min(axis=0) + allpts.max(axis=0)) / 2)
    parts = [
        _part(m, frame.from_ecef(georef.to_ecef(v))) for m, v in zip(meshes, local, strict=True)
    ]
    ntri = sum(len(p.indices) for p in parts)
    cells = _cells(parts, max(1, int(np.ceil(np.sqrt(ntri / MAX_TRIANGLES)))))
    tiles = []
    for k, cell in enumerate(cells):
        uri = f"mesh_{k}.glb"
        tiles.append(Tile(write_glb(out_dir / uri, cell, compression=compression), 0.0, uri))
    if len(tiles) == 1:
        root = tiles[0]
        root.geometric_error = 0.0
    else:
        box = tiles[0].box
        for t in tiles[1:]:
            box = box.union(t.box)
        root = Tile(box, box.diagonal / 8, children=tiles)
    root.refine, root.transform = "REPLACE", frame.matrix()
    path = out_dir / "tileset.json"
    Tileset(
        root,
        max(root.geometric_error, root.box.diagonal / 4),
        extras={"source": source.suffix.lower().lstrip(".")},
    ).write(path)
    return path, frame, root.box, int(sum(len(p.positions) for p in parts))


def _cells(parts: list[MeshPart], n: int) -> list[list[MeshPart]]:
    """Split triangles into n×n grid cells by centroid (vertices copied per cell)."""
    if n == 1:
        return [parts]
    pts = np.vstack([p.positions for p in parts])
    lo, hi = pts.min(axis=0)[:2], pts.max(axis=0)[:2]
    size = np.maximum((hi - lo) / n, 1e-9)
    out: dict[tuple[int, int], list[MeshPart]] = {}
    for p in parts:
        tri = np.asarray(p.indices).reshape(-1, 3)
        cen = p.positions[tri].mean(axis=1)[:, :2]
        ij = np.clip(((cen - lo) / size).astype(int), 0, n - 1)
        for key in {tuple(k) for k in ij.tolist()}:
            sel = tri[(ij[:, 0] == key[0]) & (ij[:, 1] == key[1])]
            used, remap = np.unique(sel, return_inverse=True)
            sub = MeshPart(
                p.positions[used],
                remap.reshape(-1, 3).astype(np.uint32),
                p.uvs[used] if p.uvs is not None else None,
                p.image,
                p.image_mime,
                color=p.color,
            )
            out.setdefault((key[0], key[1]), []).append(sub)
    return list(out.values())
