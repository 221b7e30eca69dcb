"""Author OSGB files the way ContextCapture lays them out, with ``osgconv`` doing the encoding.

osgconv cannot build PagedLOD trees from OBJ, and its osgt *writer* rounds to 6 digits, but its
osgt *reader* parses full precision. So the scene (PagedLOD → Geode → Geometry with a Texture2D
whose Image names a JPEG next to it) is written here as osgt text with 9 significant digits, and
``osgconv -O WriteImageHint=IncludeFile x.osgt x.osgb`` embeds the JPEG bytes, exactly like a
real production. Used by the demo scene and by the tests' synthetic productions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tiles.threed.osgb.osgt import run_osgconv


@dataclass
class AuthoredGeometry:
    positions: NDArray[np.float64]  # (N, 3) local coordinates
    triangles: NDArray[np.integer]  # (M, 3)
    uvs: NDArray[np.floating] | None  # (N, 2) OSG convention (v = 0 at the image bottom)
    image: str | None  # JPEG file name, next to the .osgt


@dataclass
class AuthoredLod:
    center: tuple[float, float, float]
    radius: float
    threshold: float  # pixel size where the child file takes over
    child: str | None
    geometries: list[AuthoredGeometry]


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def _vector(values: NDArray, fmt: str, per_line: int = 1) -> str:
    flat = values.reshape(len(values), -1) if per_line == 1 else values.reshape(-1, per_line)
    return "\n".join(" ".join(fmt % v for v in row) for row in flat)


def _geometry(g: AuthoredGeometry, ids: _Ids) -> str:
    stateset = ""
    if g.image and g.uvs is not None:
        stateset = f"""StateSet TRUE {{
osg::StateSet {{
UniqueID {ids()}
DataVariance STATIC
TextureModeList 1 {{
Data 1 {{
GL_TEXTURE_2D ON
}}
}}
TextureAttributeList 1 {{
Data 1 {{
osg::Texture2D {{
UniqueID {ids()}
WRAP_S CLAMP
WRAP_T CLAMP
MIN_FILTER LINEAR_MIPMAP_LINEAR
MAG_FILTER LINEAR
Image TRUE {{
ClassName osg::Image
UniqueID {ids()}
FileName "{g.image}"
WriteHint 0 2
DataVariance STATIC
}}
}}
Value OFF
}}
}}
}}
}}
"""
    idx = np.asarray(g.triangles, dtype=np.int64).reshape(-1)
    uv = ""
    if g.uvs is not None:
        uv = f"""TexCoordArrayList 1 {{
osg::Vec2Array {{
UniqueID {ids()}
Binding BIND_PER_VERTEX
vector {len(g.uvs)} {{
{_vector(np.asarray(g.uvs, dtype=np.float64), "%.9g")}
}}
}}
}}
"""
    return f"""osg::Geometry {{
UniqueID {ids()}
DataVariance STATIC
{stateset}PrimitiveSetList 1 {{
osg::DrawElementsUInt {{
UniqueID {ids()}
Mode TRIANGLES
vector {len(idx)} {{
{_vector(idx, "%d", 3)}
}}
}}
}}
VertexArray TRUE {{
osg::Vec3Array {{
UniqueID {ids()}
Binding BIND_PER_VERTEX
vector {len(g.positions)} {{
{_vector(np.asarray(g.positions, dtype=np.float64), "%.9g")}
}}
}}
}}
{uv}}}
"""


def _geode(geoms: list[AuthoredGeometry], ids: _Ids) -> str:
    body = "".join(_geometry(g, ids) for g in geoms)
    return f"osg::Geode {{\nUniqueID {ids()}\nDrawables {len(geoms)} {{\n{body}}}\n}}\n"


def _paged_lod(lod: AuthoredLod, ids: _Ids) -> str:
    x, y, z = lod.center
    t = lod.threshold
    files = f'""\n"{lod.child}"' if lod.child else '""\n""'
    return f"""osg::PagedLOD {{
UniqueID {ids()}
CenterMode USER_DEFINED_CENTER
UserCenter {x:.9g} {y:.9g} {z:.9g} {lod.radius:.9g}
RangeMode PIXEL_SIZE_ON_SCREEN
RangeList 2 {{
0 {t:.9g}
{t:.9g} 1e+30
}}
DatabasePath FALSE
RangeDataList 2 {{
{files}
}}
PriorityList 2 {{
0 1
0 1
}}
Children 1 {{
{_geode(lod.geometries, ids)}}}
}}
"""


def write_osgb(
    path: Path,
    lods: list[AuthoredLod] | None = None,
    leaf: list[AuthoredGeometry] | None = None,
    keep_osgt: bool = False,
    images: str = "IncludeFile",
) -> Path:
    """One .osgb: a PagedLOD, a Group of PagedLODs, or (``leaf``) a plain Geode. JPEGs named
    by the geometries must sit next to ``path``; ``images="UseExternal"`` only references them."""
    ids = _Ids()
    if leaf is not None:
        scene = _geode(leaf, ids)
    elif lods is not None and len(lods) == 1:
        scene = _paged_lod(lods[0], ids)
    else:
        body = "".join(_paged_lod(lod, ids) for lod in lods or [])
        scene = f"osg::Group {{\nUniqueID {ids()}\nChildren {len(lods or [])} {{\n{body}}}\n}}\n"
    osgt = path.with_suffix(".osgt")
    osgt.write_text("#Ascii Scene\n#Version 161\n#Generator OpenSceneGraph 3.6.5\n\n" + scene)
    run_osgconv(osgt, path, options=f"WriteImageHint={images}")
    if not keep_osgt:
        osgt.unlink()
    return path
