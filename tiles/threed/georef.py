"""Georeferencing: source coordinates → ECEF (EPSG:4978) → a local east-north-up frame.

Every vertex is transformed on its own with pyproj (projected → geodetic → geocentric), so grid
convergence (grid north ≠ true north), scale factor and earth curvature are exact; nothing is
approximated by a rotation. A tileset's root ``transform`` is the ENU frame at an anchor point
(ENU → ECEF); tiles, boxes and glTF nodes are expressed in that frame, and glTF vertices are
float32 offsets from their tile's centre (sub-millimetre for tiles up to a few km).

Heights (:class:`HeightDatum`): 3D Tiles need ellipsoidal heights, while Chinese productions
and floor elevations are usually orthometric (1985 国家高程基准), one geoid undulation N off
(−5 m in Guangdong … +7 m in Zhejiang for EGM96). ``ellipsoidal`` uses z as it is; ``egm96``
(Debian's proj-data ``egm96_15.gtx``) or a geoid grid file the user gives (.gtx/.tif, N in
metres) treats z as orthometric: each vertex moves by N(lon, lat) along the ellipsoid normal,
h = H + N, with N from PROJ's ``vgridshift`` at that vertex. ``auto`` is ``egm96`` when the SRS
is a compound CRS with a vertical part (whose own transformation PROJ could only do as a
"ballpark" without grids) and ``ellipsoidal`` otherwise. Photogrammetry, meshes and the unit
volumes go through the same rule.

Accepted SRS strings (``metadata.xml`` ``<SRS>`` or ``--srs``): ``EPSG:n`` (also ``EPSG:n+m``),
a WKT (non-standard parameters such as a custom false northing are kept: the WKT's parameters
win over its AUTHORITY), ``ENU:lat,lon[,h]`` (local metres east/north/up of that point), and a
PROJ string.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from tiles.threed.errors import SrsUnknown, ThreeDInputError

F64 = NDArray[np.float64]
_ENU = re.compile(r"^\s*ENU\s*:\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*(?:,\s*([-+0-9.eE]+))?\s*$")


@dataclass(frozen=True)
class SpatialReference:
    """Either a pyproj CRS, or a local ENU frame at ``enu_origin`` (lat, lon, h)."""

    text: str
    crs: CRS | None = None
    enu_origin: tuple[float, float, float] | None = None

    @property
    def label(self) -> str:
        if self.enu_origin is not None:
            lat, lon, h = self.enu_origin
            return f"ENU:{lat},{lon},{h}"
        assert self.crs is not None
        code = self.crs.to_epsg(min_confidence=100)
        return f"EPSG:{code}" if code else self.crs.name


def parse_srs(text: str, where: str = "") -> SpatialReference:
    """Parse an SRS string; :class:`SrsUnknown` (naming ``where``) if PROJ cannot use it."""
    raw = (text or "").strip()
    suffix = f" ({where})" if where else ""
    if not raw:
        raise SrsUnknown(message=f"缺少坐标系 / no spatial reference given{suffix}")
    m = _ENU.match(raw)
    if m:
        lat, lon = float(m.group(1)), float(m.group(2))
        h = float(m.group(3)) if m.group(3) else 0.0
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise SrsUnknown(message=f"ENU 原点超出范围 / ENU origin out of range: {raw}{suffix}")
        return SpatialReference(raw, enu_origin=(lat, lon, h))
    try:
        crs = CRS.from_wkt(raw) if raw[:1].isalpha() and "[" in raw else CRS.from_user_input(raw)
    except CRSError as exc:
        raise SrsUnknown(
            message=f"无法识别的坐标系 / unknown spatial reference {raw[:80]!r}{suffix}: {exc}"
        ) from exc
    if crs.is_geocentric or not (crs.is_projected or crs.is_geographic):
        raise SrsUnknown(
            message=f"坐标系必须是投影或地理坐标系 / the SRS must be projected or "
            f"geographic: {crs.name}{suffix}"
        )
    return SpatialReference(raw, crs=crs)


def _enu_rotation(lat_deg: float, lon_deg: float) -> F64:
    """Columns: east, north, up unit vectors in ECEF."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    sl, cl, sp, cp = math.sin(lon), math.cos(lon), math.sin(lat), math.cos(lat)
    return np.array(
        [[-sl, -sp * cl, cp * cl], [cl, -sp * sl, cp * sl], [0.0, cp, sp]], dtype=np.float64
    )


_ECEF_TO_GEO = Transformer.from_crs(4978, 4979, always_xy=True)
_GEO_TO_ECEF = Transformer.from_crs(4979, 4978, always_xy=True)


def ecef_to_lonlath(ecef: F64) -> F64:
    lon, lat, h = _ECEF_TO_GEO.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])
    return np.column_stack([lon, lat, h])


def lonlath_to_ecef(lon: F64, lat: F64, h: F64) -> F64:
    x, y, z = _GEO_TO_ECEF.transform(lon, lat, h)
    return np.column_stack([x, y, z]).astype(np.float64)


@dataclass(frozen=True)
class EnuFrame:
    """A local east-north-up frame at ``origin`` (ECEF metres)."""

    origin: tuple[float, float, float]

    @cached_property
    def rotation(self) -> F64:
        lon, lat, _ = ecef_to_lonlath(np.array([self.origin], dtype=np.float64))[0]
        return _enu_rotation(lat, lon)

    @classmethod
    def at_lonlat(cls, lon: float, lat: float, h: float = 0.0) -> EnuFrame:
        x, y, z = lonlath_to_ecef(np.array([lon]), np.array([lat]), np.array([h]))[0]
        return cls((float(x), float(y), float(z)))

    def from_ecef(self, ecef: F64) -> F64:
        return (ecef - np.asarray(self.origin)) @ self.rotation

    def to_ecef(self, enu: F64) -> F64:
        return enu @ self.rotation.T + np.asarray(self.origin)

    def matrix(self) -> list[float]:
        """4×4 ENU → ECEF, column-major (3D Tiles ``transform``)."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.origin
        return [float(v) for v in m.T.ravel()]


EGM96_GRIDS = ("/usr/share/proj/egm96_15.gtx", "/usr/share/proj/us_nga_egm96_15.tif")
HEIGHT_DATUMS = ("auto", "ellipsoidal", "egm96")


@dataclass(frozen=True)
class HeightDatum:
    """What source heights are: ``grid`` None = ellipsoidal, else orthometric on that geoid."""

    name: str  # "ellipsoidal" | "egm96" | the grid file given
    grid: str | None = None

    def __reduce__(self) -> tuple[type, tuple[str, str | None]]:  # not the cached transformer
        return (HeightDatum, (self.name, self.grid))

    @cached_property
    def _shift(self) -> Transformer:
        return Transformer.from_pipeline(
            "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
            f"+step +proj=vgridshift +grids={self.grid} +multiplier=1 "
            "+step +proj=unitconvert +xy_in=rad +xy_out=deg"
        )

    def undulation(self, lon: F64, lat: F64) -> F64:
        """Geoid height N (metres) at these points; 0 for ellipsoidal heights."""
        if self.grid is None:
            return np.zeros(len(lon))
        _, _, n = self._shift.transform(lon, lat, np.zeros(len(lon)))
        n = np.asarray(n, dtype=np.float64)
        if not np.isfinite(n).all() or (np.abs(n) > 1e3).any():
            raise ThreeDInputError(
                "THREED_GEOID_OUTSIDE",
                f"点位超出大地水准面格网 / outside the geoid grid {self.name}",
            )
        return n


ELLIPSOIDAL = HeightDatum("ellipsoidal")


def parse_height_datum(text: str | None, srs: SpatialReference | None = None) -> HeightDatum:
    """``auto`` (default), ``ellipsoidal``, ``egm96`` or the path of a geoid grid file."""
    raw = (text or "auto").strip()
    if raw == "auto":
        compound = srs is not None and srs.crs is not None and srs.crs.is_compound
        raw = "egm96" if compound else "ellipsoidal"
    if raw == "ellipsoidal":
        return ELLIPSOIDAL
    if raw == "egm96":
        grid = next((g for g in EGM96_GRIDS if Path(g).is_file()), None)
        if grid is None:
            raise ThreeDInputError(
                "THREED_GEOID_MISSING",
                "未找到 EGM96 格网（apt-get install proj-data）/ EGM96 grid not found: "
                "install Debian's proj-data",
            )
        return HeightDatum("egm96", grid)
    path = Path(raw)
    if not path.is_file() or path.suffix.lower() not in (".gtx", ".tif", ".tiff"):
        raise ThreeDInputError(
            "THREED_BAD_HEIGHT_DATUM",
            "高程基准应为 auto、ellipsoidal、egm96 或大地水准面格网文件 / height datum must be "
            "auto, ellipsoidal, egm96 or a geoid grid file (.gtx, .tif)",
        )
    return HeightDatum(str(path), str(path.resolve()))


class Georeference:
    """Source coordinates (local to ``origin``) → ECEF, vertex by vertex."""

    def __init__(
        self,
        srs: SpatialReference,
        origin: tuple[float, float, float] = (0, 0, 0),
        pipeline: str | None = None,
        datum: HeightDatum = ELLIPSOIDAL,
    ):
        self.srs = srs
        self.origin = np.asarray(origin, dtype=np.float64)
        self.datum = datum
        self._transformer: Transformer | None = None
        self._enu: EnuFrame | None = None
        if srs.enu_origin is not None:
            lat, lon, h = srs.enu_origin
            self._enu = EnuFrame.at_lonlat(lon, lat, h)
        else:
            assert srs.crs is not None
            if pipeline:  # the operation chosen once, reused by worker processes (fast)
                self._transformer = Transformer.from_pipeline(pipeline)
            else:
                # the vertical part of a compound CRS is handled by ``datum`` (with its grid)
                crs = srs.crs
                if crs.is_compound:
                    crs = crs.sub_crs_list[0]
                self._transformer = Transformer.from_crs(
                    crs.to_3d(), CRS.from_epsg(4978), always_xy=True
                )

    @property
    def pipeline(self) -> str | None:
        """The PROJ pipeline in use (for :class:`Georeference` in other processes)."""
        return self._transformer.definition if self._transformer is not None else None

    def to_ecef(self, local: F64) -> F64:
        """(N, 3) source coordinates relative to ``origin`` → (N, 3) ECEF metres."""
        pts = np.asarray(local, dtype=np.float64).reshape(-1, 3) + self.origin
        if self._enu is not None:
            return self._orthometric(self._enu.to_ecef(pts))
        assert self._transformer is not None
        x, y, z = self._transformer.transform(pts[:, 0], pts[:, 1], pts[:, 2])
        out = np.column_stack([x, y, z]).astype(np.float64, copy=False)
        if not np.isfinite(out).all():
            bad = pts[~np.isfinite(out).all(axis=1)][0]
            raise SrsUnknown(
                message=f"坐标无法转换 / coordinates cannot be transformed with "
                f"{self.srs.label}: {bad.tolist()}"
            )
        return self._orthometric(out)

    def _orthometric(self, ecef: F64) -> F64:
        """Heights taken as ellipsoidal → moved up by the geoid height N along the normal."""
        if self.datum.grid is None:
            return ecef
        llh = ecef_to_lonlath(ecef)
        n = self.datum.undulation(llh[:, 0], llh[:, 1])
        lon, lat = np.radians(llh[:, 0]), np.radians(llh[:, 1])
        up = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
        return ecef + up * n[:, None]

    def frame_at(self, local: F64) -> EnuFrame:
        """The ENU frame at a source point (used as a tileset anchor)."""
        x, y, z = self.to_ecef(np.asarray(local, dtype=np.float64).reshape(1, 3))[0]
        return EnuFrame((float(x), float(y), float(z)))
