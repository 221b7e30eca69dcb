"""Tile content: binary glTF (glb).

Positions arrive in the tileset's ENU frame (float64, z up). The glb has one node whose
``translation`` is the content centre, and float32 vertices relative to it (no float32 jitter);
axes follow glTF (y up), which 3D Tiles turns back to z up at load time. Textures are embedded as
they came (JPEG/PNG bytes, never re-encoded). Photogrammetry uses ``KHR_materials_unlit`` (the
light is baked into the texture). Per-feature metadata uses ``EXT_mesh_features`` (a feature ID
per vertex) and ``EXT_structural_metadata`` (one property table).

The glTF JSON is built as a dict and packed into the GLB container here (12-byte header, JSON
chunk, BIN chunk): pygltflib's dataclass round trip costs ~40 ms per file, more than reading,
georeferencing and writing the geometry together. Tests read every glb back with pygltflib and
run the Khronos glTF validator on it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles.threed.bounding_volume import Box
from tiles.threed.compress import NONE, Compression, draco_encode, reencode_image

FLOAT, UBYTE, USHORT, UINT = 5126, 5121, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
LINEAR, LINEAR_MIPMAP_LINEAR, CLAMP, REPEAT = 9729, 9987, 33071, 10497
_COMPONENT = {
    "INT8": "b",
    "UINT8": "B",
    "INT16": "<i2",
    "UINT16": "<u2",
    "INT32": "<i4",
    "UINT32": "<u4",
    "INT64": "<i8",
    "FLOAT32": "<f4",
    "FLOAT64": "<f8",
}


@dataclass
class MeshPart:
    """One primitive: triangles, optional texture (glTF uv convention) and feature IDs."""

    positions: NDArray[np.float64]  # (N, 3) ENU metres
    indices: NDArray[np.integer[Any]]  # (M, 3) or flat
    uvs: NDArray[np.floating[Any]] | None = None
    image: bytes | None = None
    image_mime: str = "image/jpeg"
    normals: NDArray[np.floating[Any]] | None = None
    feature_ids: NDArray[np.integer[Any]] | None = None
    color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    double_sided: bool = False


@dataclass
class PropertyTable:
    """EXT_structural_metadata property table: column name → (type, values)."""

    class_name: str
    columns: dict[str, tuple[str, Sequence[Any]]]
    descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(next(iter(self.columns.values()))[1]) if self.columns else 0


def to_gltf_axes(enu: NDArray[np.float64]) -> NDArray[np.float64]:
    """ENU (z up) → glTF (y up): (e, n, u) → (e, u, −n)."""
    return np.column_stack([enu[:, 0], enu[:, 2], -enu[:, 1]])


class _Blob:
    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def view(self, raw: bytes, target: int | None = None, align: int = 8) -> int:
        self.data.extend(b"\0" * (-len(self.data) % align))
        v: dict[str, Any] = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(raw)}
        if target:
            v["target"] = target
        self.data.extend(raw)
        self.views.append(v)
        return len(self.views) - 1

    def accessor(
        self,
        arr: NDArray[Any],
        component: int,
        kind: str,
        target: int | None,
        minmax: bool | tuple[NDArray[Any], NDArray[Any]] = False,
    ) -> int:
        a: dict[str, Any] = {
            "bufferView": self.view(arr.tobytes(), target),
            "componentType": component,
            "count": int(arr.shape[0]),
            "type": kind,
        }
        if isinstance(minmax, tuple):
            a["min"], a["max"] = [float(v) for v in minmax[0]], [float(v) for v in minmax[1]]
        elif minmax:
            flat = arr.reshape(arr.shape[0], -1)
            a["min"] = [float(v) for v in flat.min(axis=0)]
            a["max"] = [float(v) for v in flat.max(axis=0)]
        self.accessors.append(a)
        return len(self.accessors) - 1

    def virtual(
        self, component: int, kind: str, count: int, arr: NDArray[Any] | None = None
    ) -> int:
        """An accessor without a bufferView (its data comes from a Draco buffer)."""
        a: dict[str, Any] = {"componentType": component, "count": count, "type": kind}
        if arr is not None:
            a["min"] = [float(v) for v in arr.min(axis=0)]
            a["max"] = [float(v) for v in arr.max(axis=0)]
        self.accessors.append(a)
        return len(self.accessors) - 1


def _draco_primitive(
    blob: _Blob,
    rel: NDArray[np.float32],
    idx: NDArray[Any],
    part: MeshPart,
    uv: NDArray[np.float32] | None,
    normals: NDArray[np.float32] | None,
    bits: int,
) -> dict[str, Any]:
    dp = draco_encode(rel, idx, bits=bits, uvs=uv, normals=normals, feature_ids=part.feature_ids)
    attrs: dict[str, int] = {"POSITION": blob.virtual(FLOAT, "VEC3", dp.count, rel)}
    if normals is not None:
        attrs["NORMAL"] = blob.virtual(FLOAT, "VEC3", dp.count)
    if uv is not None:
        attrs["TEXCOORD_0"] = blob.virtual(FLOAT, "VEC2", dp.count)
    if part.feature_ids is not None:
        attrs["_FEATURE_ID_0"] = blob.virtual(FLOAT, "SCALAR", dp.count)
    icomp = USHORT if dp.count < 65535 else UINT
    return {
        "attributes": attrs,
        "indices": blob.virtual(icomp, "SCALAR", dp.indices),
        "mode": 4,
        "extensions": {
            "KHR_draco_mesh_compression": {
                "bufferView": blob.view(dp.data),
                "attributes": {k: dp.attributes[k] for k in attrs},
            }
        },
    }


def _metadata(blob: _Blob, table: PropertyTable) -> dict[str, Any]:
    props_schema: dict[str, Any] = {}
    props_table: dict[str, Any] = {}
    for name, (kind, values) in table.columns.items():
        if kind == "STRING":
            encoded = [str(v if v is not None else "").encode("utf-8") for v in values]
            offsets = np.zeros(len(encoded) + 1, dtype="<u4")
            offsets[1:] = np.cumsum([len(e) for e in encoded])
            props_schema[name] = {"type": "STRING"}
            props_table[name] = {
                "values": blob.view(b"".join(encoded)),
                "stringOffsets": blob.view(offsets.tobytes()),
                "stringOffsetType": "UINT32",
            }
        else:
            arr = np.asarray(values, dtype=_COMPONENT[kind])
            props_schema[name] = {"type": "SCALAR", "componentType": kind}
            props_table[name] = {"values": blob.view(arr.tobytes())}
        if name in table.descriptions:
            props_schema[name]["description"] = table.descriptions[name]
    return {
        "schema": {"id": "cadastre", "classes": {table.class_name: {"properties": props_schema}}},
        "propertyTables": [
            {"class": table.class_name, "count": table.count, "properties": props_table}
        ],
    }


def glb_bytes(
    parts: list[MeshPart],
    *,
    unlit: bool = True,
    table: PropertyTable | None = None,
    compression: Compression = NONE,
) -> tuple[bytes, Box]:
    """The glb for ``parts`` and its bounding box in the ENU frame."""
    parts = [p for p in parts if len(p.positions) and np.asarray(p.indices).size]
    if not parts:
        raise ValueError("empty content")
    bounds = [(p.positions.min(axis=0), p.positions.max(axis=0)) for p in parts]
    lo = np.min([b[0] for b in bounds], axis=0)
    hi = np.max([b[1] for b in bounds], axis=0)
    box = Box(tuple(float(v) for v in lo), tuple(float(v) for v in hi))  # type: ignore[arg-type]
    centre = box.center
    blob = _Blob()
    images: list[dict[str, Any]] = []
    textures: list[dict[str, Any]] = []
    materials: list[dict[str, Any]] = []
    primitives: list[dict[str, Any]] = []
    draco = compression.geometry == "draco"
    image_index: dict[int, int] = {}
    for part, (plo, phi) in zip(parts, bounds, strict=True):
        rel = to_gltf_axes(part.positions - centre).astype(np.float32)
        # float32 rounding is monotonic: the accessor bounds follow from the part's bounds
        a, b = to_gltf_axes(np.array([plo - centre, phi - centre]))
        rel_bounds = (np.minimum(a, b).astype(np.float32), np.maximum(a, b).astype(np.float32))
        idx = np.asarray(part.indices).reshape(-1)
        n = len(rel)
        textured = part.image is not None and part.uvs is not None
        uv = np.asarray(part.uvs, dtype=np.float32) if textured else None
        nrm = None
        if part.normals is not None:
            nrm = to_gltf_axes(np.asarray(part.normals, dtype=np.float64)).astype(np.float32)
        if draco:
            prim = _draco_primitive(blob, rel, idx, part, uv, nrm, compression.position_bits)
        else:
            itype, icomp = (np.uint16, USHORT) if n < 65535 else (np.uint32, UINT)
            prim = {
                "attributes": {
                    "POSITION": blob.accessor(rel, FLOAT, "VEC3", ARRAY_BUFFER, rel_bounds)
                },
                "indices": blob.accessor(idx.astype(itype), icomp, "SCALAR", ELEMENT_ARRAY_BUFFER),
                "mode": 4,
            }
            if nrm is not None:
                prim["attributes"]["NORMAL"] = blob.accessor(nrm, FLOAT, "VEC3", ARRAY_BUFFER)
        pbr: dict[str, Any] = {"metallicFactor": 0.0, "roughnessFactor": 1.0}
        if textured and part.image is not None and uv is not None:
            if not draco:
                prim["attributes"]["TEXCOORD_0"] = blob.accessor(uv, FLOAT, "VEC2", ARRAY_BUFFER)
            key = id(part.image)
            if key not in image_index:
                data, mime = part.image, part.image_mime
                if compression.texture_quality is not None:
                    data, mime = reencode_image(data, mime, compression.texture_quality)
                images.append({"bufferView": blob.view(data), "mimeType": mime})
                textures.append({"sampler": 0, "source": len(images) - 1})
                image_index[key] = len(textures) - 1
            pbr["baseColorTexture"] = {"index": image_index[key]}
        else:
            pbr["baseColorFactor"] = [float(c) for c in part.color]
        material: dict[str, Any] = {"pbrMetallicRoughness": pbr, "doubleSided": part.double_sided}
        if unlit:
            material["extensions"] = {"KHR_materials_unlit": {}}
        materials.append(material)
        prim["material"] = len(materials) - 1
        if part.feature_ids is not None:
            fid = np.asarray(part.feature_ids)
            count = table.count if table is not None else int(fid.max()) + 1
            if not draco:
                # FLOAT: exact up to 2^24 features and 4-byte aligned (glTF vertex attributes)
                prim["attributes"]["_FEATURE_ID_0"] = blob.accessor(
                    fid.astype(np.float32), FLOAT, "SCALAR", ARRAY_BUFFER
                )
            feature: dict[str, Any] = {"featureCount": count, "attribute": 0}
            if table is not None:
                feature["propertyTable"] = 0
            prim.setdefault("extensions", {})["EXT_mesh_features"] = {"featureIds": [feature]}
        primitives.append(prim)
    used: list[str] = []
    doc: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "cadastre-server tiles.threed"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": [float(v) for v in to_gltf_axes(centre[None])[0]]}],
        "meshes": [{"primitives": primitives}],
        "materials": materials,
    }
    if unlit:
        used.append("KHR_materials_unlit")
    if images:
        doc["images"], doc["textures"] = images, textures
        doc["samplers"] = [
            {"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR, "wrapS": CLAMP, "wrapT": CLAMP}
        ]
    if any("EXT_mesh_features" in p.get("extensions", {}) for p in primitives):
        used.append("EXT_mesh_features")
    if draco:
        used.append("KHR_draco_mesh_compression")
        doc["extensionsRequired"] = ["KHR_draco_mesh_compression"]
    if table is not None:
        doc["extensions"] = {"EXT_structural_metadata": _metadata(blob, table)}
        used.append("EXT_structural_metadata")
    if used:
        doc["extensionsUsed"] = used
    blob.data.extend(b"\0" * (-len(blob.data) % 4))
    doc["buffers"] = [{"byteLength": len(blob.data)}]
    doc["bufferViews"], doc["accessors"] = blob.views, blob.accessors
    return pack_glb(doc, bytes(blob.data)), box


def pack_glb(doc: dict[str, Any], binary: bytes) -> bytes:
    """GLB 2.0 container: header, JSON chunk (space-padded), BIN chunk (zero-padded)."""
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    js += b" " * (-len(js) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<III", 0x46546C67, 2, total),
            struct.pack("<II", len(js), 0x4E4F534A),
            js,
            struct.pack("<II", len(binary), 0x004E4942),
            binary,
        ]
    )


def write_glb(
    path: Path,
    parts: list[MeshPart],
    *,
    unlit: bool = True,
    table: PropertyTable | None = None,
    compression: Compression = NONE,
) -> Box:
    data, box = glb_bytes(parts, unlit=unlit, table=table, compression=compression)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return box
