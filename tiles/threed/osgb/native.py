"""One .osgb decoded in-process (``stream.py`` + ``wrappers.py``) → its LOD nodes.

Produces exactly what ``reader.read_osgb`` gets from the ``osgconv`` path (same PagedLOD
centres, ranges, child files, geometry arrays bit for bit, textures): the scene walk mirrors
``reader._FileReader.walk``. Anything the decoder cannot read raises :class:`OsgbUnsupported`
and the caller converts that file with ``osgconv`` instead (counted in the build report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tiles.threed.errors import BuildReport
from tiles.threed.osgb.reader import (
    F64,
    Geometry,
    LodNode,
    _triangulate,
    fill_centres,
    resolve_image,
)
from tiles.threed.osgb.stream import OsgbStream, OsgbUnsupported
from tiles.threed.osgb.wrappers import Decoder, ImageRef, Obj, Primitive

_MODES = {4: "TRIANGLES", 5: "TRIANGLE_STRIP", 6: "TRIANGLE_FAN", 7: "QUADS"}
_PIXEL_SIZE_ON_SCREEN = 1

__all__ = ["OsgbUnsupported", "read_osgb_native"]


class _Scene:
    def __init__(self, path: Path, report: BuildReport) -> None:
        self.path, self.report = path, report
        self.nodes: list[LodNode] = []
        self.loose: LodNode | None = None
        self.textures: dict[int, tuple[bytes, str] | None] = {}

    def walk(self, obj: Obj | None, lod: LodNode | None, matrix: F64 | None) -> None:
        if obj is None:
            return
        cls = obj.cls
        if cls == "osg::PagedLOD":
            lod = self._lod(obj, matrix)
            self.nodes.append(lod)
        elif cls == "osg::MatrixTransform":
            m = obj.get("Matrix")
            if m is not None:
                mt = np.asarray(m, dtype=np.float64).reshape(4, 4)
                matrix = mt if matrix is None else mt @ matrix
        elif cls == "osg::Geometry":
            geom = self._geometry(obj, matrix)
            if geom is not None:
                if lod is None:
                    if self.loose is None:
                        self.loose = LodNode(None, 0.0, "", None)
                        self.nodes.append(self.loose)
                    lod = self.loose
                lod.geometries.append(geom)
            return
        for key in ("Children", "Drawables"):
            for child in obj.get(key) or []:
                self.walk(child, lod, matrix)

    def _lod(self, obj: Obj, matrix: F64 | None) -> LodNode:
        uc = obj.get("UserCenter")
        center: tuple[float, float, float] | None = None
        radius = 0.0
        if uc is not None:
            c = np.array(uc[:3], dtype=np.float64)
            if matrix is not None:
                c = (np.append(c, 1.0) @ matrix)[:3]
            center, radius = (float(c[0]), float(c[1]), float(c[2])), float(uc[3])
        pixel = obj.get("RangeMode") == _PIXEL_SIZE_ON_SCREEN
        mode = "PIXEL_SIZE_ON_SCREEN" if pixel else "DISTANCE_FROM_EYE_POINT"
        ranges = [(float(a), float(b)) for a, b in obj.get("RangeList") or []]
        files, threshold = [], None
        for k, name in enumerate(obj.get("RangeDataList") or []):
            if name and k < len(ranges):
                files.append(name)
                lo, hi = ranges[k]
                t = lo if pixel else hi
                threshold = t if threshold is None else min(threshold, t)
        return LodNode(center, radius, mode, threshold, files)

    def _geometry(self, obj: Obj, matrix: F64 | None) -> Geometry | None:
        texture = self._texture(obj.get("StateSet"))
        tris = []
        for prim in obj.get("PrimitiveSetList") or []:
            if prim is None or prim.indices is None:
                continue
            t = _triangles(prim)
            if t is not None and len(t):
                tris.append(t)
        pos = _array(obj.get("VertexArray", obj.get("VertexData")))
        coords = obj.get("TexCoordArrayList") or obj.get("TexCoordData") or []
        uv = _array(coords[0]) if coords else None
        if pos is None or not tris:
            return None
        positions = np.asarray(pos, dtype=np.float64)
        if matrix is not None:
            positions = positions @ matrix[:3, :3] + matrix[3, :3]
        triangles = np.vstack(tris).astype(np.uint32)
        if triangles.max() >= len(positions):
            self.report.warn(
                "OSGB_BAD_INDEX",
                "索引越界，几何已跳过 / index out of range, geometry skipped",
                self.path,
            )
            return None
        geom = Geometry(positions, triangles)
        if texture is not None and uv is not None and len(uv) == len(positions):
            geom.uvs = np.asarray(uv, dtype=np.float32)
            geom.image, geom.image_mime = texture
        return geom

    def _texture(self, stateset: Obj | None) -> tuple[bytes, str] | None:
        if stateset is None:
            return None
        key = id(stateset)
        if key not in self.textures:
            image = _first_image(stateset)
            self.textures[key] = None if image is None else self._image(image)
        return self.textures[key]

    def _image(self, image: ImageRef) -> tuple[bytes, str] | None:
        key = id(image)
        if key not in self.textures:
            self.textures[key] = resolve_image(
                self.path, image.name, image.decision, image.data, self.report
            )
        return self.textures[key]


def _first_image(stateset: Obj) -> ImageRef | None:
    for unit in stateset.get("TextureAttributeList") or []:
        for attr in unit or []:
            if attr is not None and isinstance(attr.get("Image"), ImageRef):
                return attr.get("Image")  # type: ignore[no-any-return]
    return None


def _array(value: Any) -> Any:
    if isinstance(value, Obj):
        return value.get("vector")
    return value


def _triangles(prim: Primitive) -> Any:
    mode = _MODES.get(prim.mode)
    if mode is None:
        return None
    return _triangulate(mode, np.asarray(prim.indices, dtype=np.uint32))


def read_osgb_native(path: Path, report: BuildReport, data: bytes | None = None) -> list[LodNode]:
    """LOD nodes of one .osgb decoded natively; :class:`OsgbUnsupported` if it cannot be."""
    stream = OsgbStream(data if data is not None else path.read_bytes())
    decoder = Decoder(stream)
    try:
        root = decoder.object()
    except (IndexError, ValueError, KeyError, TypeError) as exc:  # corrupt or unexpected bytes
        raise OsgbUnsupported(f"decoding failed: {exc}") from exc
    scene = _Scene(path, report)
    scene.walk(root, None, None)
    return fill_centres(scene.nodes)
