"""One .osgb file → its LOD nodes (PagedLOD centre, ranges, child files) and their geometry.

Geometry keeps the file's local coordinates (exact float32 from the binary, see ``osgt.py``),
with any MatrixTransform applied; georeferencing happens in ``production.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tiles.threed.errors import BuildReport
from tiles.threed.osgb.binary import INCLUDE_DATA, JPEG, PNG, OsgbBytes
from tiles.threed.osgb.osgt import OsgNode, read_structure

F64 = NDArray[np.float64]
_ELEMENTS = {
    "osg::DrawElementsUInt": "<u4",
    "osg::DrawElementsUShort": "<u2",
    "osg::DrawElementsUByte": "u1",
}
_VEC = {
    "osg::Vec3Array": ("<f4", 3),
    "osg::Vec3dArray": ("<f8", 3),
    "osg::Vec2Array": ("<f4", 2),
    "osg::Vec2dArray": ("<f8", 2),
}


@dataclass
class Geometry:
    positions: F64  # (N, 3) file-local coordinates
    triangles: NDArray[np.uint32]  # (M, 3)
    uvs: NDArray[np.float32] | None = None  # OSG convention (v = 0 at the image bottom)
    image: bytes | None = None
    image_mime: str = "image/jpeg"


@dataclass
class LodNode:
    center: tuple[float, float, float] | None
    radius: float
    range_mode: str
    threshold: float | None  # pixel size / distance where the child files take over
    child_files: list[str] = field(default_factory=list)
    geometries: list[Geometry] = field(default_factory=list)


def _floats(line: str) -> F64:
    return np.array(line.split(), dtype=np.float64)


def _triangulate(mode: str, idx: NDArray[np.uint32]) -> NDArray[np.uint32] | None:
    if mode == "TRIANGLES":
        return idx[: len(idx) // 3 * 3].reshape(-1, 3)
    if mode == "TRIANGLE_STRIP" and len(idx) >= 3:
        a, b, c = idx[:-2], idx[1:-1], idx[2:]
        odd = np.arange(len(a)) % 2 == 1
        tri = np.column_stack([a, np.where(odd, c, b), np.where(odd, b, c)])
        return tri[(tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])]
    if mode == "TRIANGLE_FAN" and len(idx) >= 3:
        return np.column_stack([np.full(len(idx) - 2, idx[0]), idx[1:-1], idx[2:]])
    if mode == "QUADS":
        q = idx[: len(idx) // 4 * 4].reshape(-1, 4)
        return np.vstack([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
    return None


class _FileReader:
    def __init__(self, path: Path, blob: OsgbBytes, report: BuildReport) -> None:
        self.path, self.blob, self.report = path, blob, report
        self.nodes: list[LodNode] = []
        self.loose: LodNode | None = None
        self.arrays: dict[str, NDArray[np.generic]] = {}
        self.textures: dict[str, tuple[bytes, str] | None] = {}
        self.precision_warned = False

    # ------------------------------------------------------------------ scene graph
    def walk(self, obj: OsgNode, lod: LodNode | None, matrix: F64 | None) -> None:
        cls = obj.name
        if cls == "osg::PagedLOD":
            lod = self._lod(obj, matrix)
            self.nodes.append(lod)
        elif cls == "osg::MatrixTransform":
            m = obj.child("Matrix")
            if m is not None and len(m.children) == 4:
                mt = np.array(
                    [[float(m.children[r].name), *map(float, m.children[r].args)] for r in range(4)]
                )
                matrix = mt if matrix is None else mt @ matrix  # OSG: row vectors, v·M
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
            block = obj.child(key)
            if block is not None:
                for child in block.objects():
                    self.walk(child, lod, matrix)

    def _lod(self, obj: OsgNode, matrix: F64 | None) -> LodNode:
        uc = obj.value("UserCenter")
        center: tuple[float, float, float] | None = None
        radius = 0.0
        if uc and len(uc) >= 4:
            c = np.array([float(v) for v in uc[:3]])
            if matrix is not None:
                c = (np.append(c, 1.0) @ matrix)[:3]
            center, radius = (float(c[0]), float(c[1]), float(c[2])), float(uc[3])
        mode = (obj.value("RangeMode") or ["DISTANCE_FROM_EYE_POINT"])[0]
        rl = obj.child("RangeList")
        ranges = [(float(r.name), float(r.args[0])) for r in rl.children] if rl else []
        files_block = obj.child("RangeDataList")
        names = [r.name for r in files_block.children] if files_block else []
        files, threshold = [], None
        for k, name in enumerate(names):
            if name and k < len(ranges):
                files.append(name)
                lo, hi = ranges[k]
                t = lo if mode == "PIXEL_SIZE_ON_SCREEN" else hi
                threshold = t if threshold is None else min(threshold, t)
        return LodNode(center, radius, mode, threshold, files)

    # ------------------------------------------------------------------ geometry
    def _vector(
        self, holder: OsgNode | None, integer_dtype: str | None = None
    ) -> NDArray[np.generic] | None:
        """The array of an ``osg::Vec*Array`` object (or a DrawElements' vector)."""
        if holder is None:
            return None
        uid = (holder.value("UniqueID") or [""])[0]
        vec = holder.child("vector")
        if vec is None or vec.data is None:
            return self.arrays.get(uid)
        count = int(vec.args[0])
        body = vec.data.strip()
        head = body[: body.find("\n")] if "\n" in body else body
        tail = body[body.rfind("\n") + 1 :]
        if count == 0 or not head:
            return None
        if integer_dtype is not None:
            dtype, ncomp = integer_dtype, 1
            first = np.array([float(head.split()[0])])
            last = np.array([float(tail.split()[-1])])
        else:
            dtype, ncomp = _VEC.get(holder.name, ("<f4", 3))
            first, last = _floats(head), _floats(tail)
        arr = self.blob.array(count, dtype, ncomp, first, last)
        if arr is None:
            if not self.precision_warned and integer_dtype is None:
                self.report.warn(
                    "OSGB_PRECISION",
                    "数组未在二进制中找到，使用 osgt 的 6 位有效数字 / "
                    "array not found in the binary (compressed .osgb?): using the "
                    "osgt's 6 significant digits",
                    self.path,
                )
                self.precision_warned = True
            flat = np.array(body.split(), dtype=np.float64)
            arr = flat.reshape(count, ncomp) if ncomp > 1 else flat
        if uid:
            self.arrays[uid] = arr
        return arr

    def _geometry(self, obj: OsgNode, matrix: F64 | None) -> Geometry | None:
        texture = self._texture(obj.child("StateSet"))
        tris: list[NDArray[np.uint32]] = []
        prims = obj.child("PrimitiveSetList")
        for p in prims.objects() if prims else []:
            mode = (p.value("Mode") or ["TRIANGLES"])[0]
            if p.name in _ELEMENTS:
                idx = self._vector(p, _ELEMENTS[p.name])
            elif p.name == "osg::DrawArrays":
                first = int((p.value("First") or ["0"])[0])
                idx = np.arange(first, first + int((p.value("Count") or ["0"])[0]))
            else:
                idx = None
            t = _triangulate(mode, np.asarray(idx, dtype=np.uint32)) if idx is not None else None
            if t is not None and len(t):
                tris.append(t)
        va = obj.child("VertexArray")
        pos = self._vector(va.objects()[0] if va and va.objects() else None)
        tc = obj.child("TexCoordArrayList")
        uv = self._vector(tc.objects()[0] if tc and tc.objects() else None)
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

    def _texture(self, stateset: OsgNode | None) -> tuple[bytes, str] | None:
        if stateset is None:
            return None
        objs = stateset.objects()
        if not objs:
            return None
        ss = objs[0]
        uid = (ss.value("UniqueID") or [""])[0]
        if uid in self.textures and len(ss.children) <= 1:
            return self.textures[uid]
        image = _find(ss, "Image")
        result = None
        if image is not None:
            iuid = (image.value("UniqueID") or [""])[0]
            if iuid in self.textures and image.child("FileName") is None:
                result = self.textures[iuid]
            else:
                result = self._image((image.value("FileName") or [""])[0])
                self.textures[iuid] = result
        self.textures[uid] = result
        return result

    def _image(self, name: str) -> tuple[bytes, str] | None:
        rec = self.blob.image(name) if name else None
        data = rec.data if rec is not None else None
        decision = rec.decision if rec is not None else None
        return resolve_image(self.path, name, decision, data, self.report)


def resolve_image(
    path: Path, name: str, decision: int | None, data: bytes | None, report: BuildReport
) -> tuple[bytes, str] | None:
    """An image's bytes and mime type: embedded (IncludeFile) JPEG/PNG bytes, else the file
    ``name`` next to ``path``; otherwise a warning naming the texture and ``None``."""
    if data is not None and (data.startswith(JPEG) or data.startswith(PNG)):
        return data, "image/jpeg" if data.startswith(JPEG) else "image/png"
    external = path.parent / name if name else None
    if external is not None and external.is_file():
        raw = external.read_bytes()
        if raw.startswith(JPEG) or raw.startswith(PNG):
            return raw, "image/jpeg" if raw.startswith(JPEG) else "image/png"
    if decision == INCLUDE_DATA:
        report.warn(
            "THREED_TEXTURE_MISSING",
            f"纹理以原始像素存储，暂不支持 / texture {name!r} "
            "is stored as raw pixels (not supported yet): untextured",
            path,
        )
    else:
        report.warn(
            "THREED_TEXTURE_MISSING",
            f"纹理缺失 / texture {name!r} not embedded "
            f"and not found next to the file: untextured",
            path,
        )
    return None


def fill_centres(nodes: list[LodNode]) -> list[LodNode]:
    """A PagedLOD without a user centre gets its geometry's bounding sphere (box centre)."""
    for node in nodes:
        if node.center is None and node.geometries:
            pts = np.vstack([g.positions for g in node.geometries])
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            c = (lo + hi) / 2
            node.center = (float(c[0]), float(c[1]), float(c[2]))
            node.radius = float(np.linalg.norm(hi - lo) / 2)
    return nodes


def _find(node: OsgNode, name: str) -> OsgNode | None:
    for c in node.children:
        if c.name == name:
            return c
        hit = _find(c, name)
        if hit is not None:
            return hit
    return None


def read_osgb(path: Path, work_dir: Path, report: BuildReport) -> list[LodNode]:
    """LOD nodes of one .osgb through osgconv (the reference path, and the fallback of the
    native decoder); osgconv errors raise :class:`OsgbUnreadable` naming ``path``."""
    tree, missing_images = read_structure(path, work_dir)
    for name in missing_images:
        report.warn(
            "THREED_TEXTURE_MISSING",
            f"外部纹理缺失 / external texture {name!r} not found next to the file: untextured",
            path,
        )
    reader = _FileReader(path, OsgbBytes(path.read_bytes()), report)
    for obj in tree.objects():
        reader.walk(obj, None, None)
    return fill_centres(reader.nodes)
