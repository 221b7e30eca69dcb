"""Compression of tile content, chosen per dataset: Draco geometry and re-encoded textures.

Geometry: ``KHR_draco_mesh_compression`` with the DracoPy encoder (Google's Draco, the encoder
CesiumJS's decoder is built from). Positions are quantised to ``position_bits`` over the
content's extent (16 bits over a 200 m tile: 3 mm), texture coordinates to 12 bits (a quarter
texel of a 1024 px atlas), normals to 10 bits; feature IDs are stored losslessly as a generic
attribute. Draco may drop duplicate vertices and renumber them, so each buffer is decoded once
after encoding to read the decoded vertex count and the attribute IDs the glTF must name.

Textures: JPEG/PNG re-encoded as JPEG at ``texture_quality`` (Pillow), kept when that would
not be smaller; images with transparency stay PNG. KTX2/Basis is not offered: no maintained
Basis encoder installs from PyPI or Debian 12 here (``pyktx`` needs libktx, which Debian 12
does not package).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

GEOMETRY = ("none", "draco")
_TYPES = {0: "POSITION", 1: "NORMAL", 3: "TEXCOORD_0", 4: "_FEATURE_ID_0"}


@dataclass(frozen=True)
class Compression:
    geometry: str = "none"  # "none" | "draco"
    texture_quality: int | None = None  # JPEG quality 1–95; None keeps the source bytes
    position_bits: int = 16

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRY:
            raise ValueError(f"geometry compression must be one of {GEOMETRY}")
        if self.texture_quality is not None and not 1 <= self.texture_quality <= 95:
            raise ValueError("texture quality must be between 1 and 95")
        if not 8 <= self.position_bits <= 24:
            raise ValueError("position bits must be between 8 and 24")

    @property
    def active(self) -> bool:
        return self.geometry != "none" or self.texture_quality is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "geometry": self.geometry,
            "texture_quality": self.texture_quality,
            "position_bits": self.position_bits,
        }


NONE = Compression()


@dataclass
class DracoPrimitive:
    data: bytes
    count: int  # decoded vertices
    indices: int  # decoded indices (3 per face)
    attributes: dict[str, int]  # glTF attribute name → Draco unique ID


def draco_encode(
    positions: NDArray[np.float32],
    indices: NDArray[Any],
    *,
    bits: int,
    uvs: NDArray[Any] | None = None,
    normals: NDArray[Any] | None = None,
    feature_ids: NDArray[Any] | None = None,
) -> DracoPrimitive:
    import DracoPy

    generic = None
    if feature_ids is not None:
        generic = {0: np.asarray(feature_ids, dtype=np.float32).reshape(-1, 1)}
    data = DracoPy.encode(
        np.asarray(positions, dtype=np.float64),
        np.asarray(indices, dtype=np.uint32).reshape(-1, 3),
        quantization_bits=bits,
        compression_level=7,
        tex_coord=None if uvs is None else np.asarray(uvs, dtype=np.float64),
        normals=None if normals is None else np.asarray(normals, dtype=np.float64),
        generic_attributes=generic,
        tex_coord_quantization_bits=12,
        normal_quantization_bits=10,
    )
    mesh = DracoPy.decode(data)
    attributes = {_TYPES[a["attribute_type"]]: int(a["unique_id"]) for a in mesh.attributes}
    return DracoPrimitive(data, len(mesh.points), int(np.asarray(mesh.faces).size), attributes)


def reencode_image(data: bytes, mime: str, quality: int) -> tuple[bytes, str]:
    """JPEG at ``quality`` unless the image has transparency or gets no smaller."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if im.mode in ("RGBA", "LA", "P") and "A" in im.getbands():
            return data, mime
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=quality, optimize=True)
    encoded = out.getvalue()
    return (encoded, "image/jpeg") if len(encoded) < len(data) else (data, mime)
