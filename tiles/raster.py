"""Orthophoto rasters (DOM) served as XYZ tiles.

A small registry (``<data_dir>/rasters/registry.json``) names the rasters the server publishes.
Adding a raster validates it with rasterio and stores it as a Cloud Optimized GeoTIFF with
internal overviews (rio-cogeo); tiles are cut with rio-tiler, which reprojects to Web Mercator,
reads the right overview and turns nodata/alpha/mask into transparency.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import rasterio
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles
from rio_cogeo.utils import get_web_optimized_params
from rio_tiler.constants import WEB_MERCATOR_TMS as WEB_MERCATOR
from rio_tiler.constants import WGS84_CRS
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

from cadastre.errors import InvalidInput, NotFound
from tiles.files import atomic_write
from tiles.mvt import TileOutOfRange  # one error type for every tile endpoint

log = logging.getLogger(__name__)

REGISTRY_VERSION = 1
RENDER_VERSION = "1"          # bump when tile rendering changes, so ETags change too
TILE_SIZE = 256
MAX_ZOOM = 24
TILE_FORMATS: dict[str, str] = {"png": "image/png", "webp": "image/webp"}
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
Profile = Literal["jpeg", "deflate"]


class InvalidRaster(InvalidInput):
    """The file cannot be published as an orthophoto (unreadable, no CRS, wrong bands...)."""

    code = "RASTER_INVALID"


class RasterNotFound(NotFound):
    code = "RASTER_NOT_FOUND"


class UnsupportedTileFormat(InvalidInput):
    code = "TILE_FORMAT"


@dataclass(frozen=True)
class RasterInfo:
    """One registered raster. ``bounds`` are WGS84 (west, south, east, north)."""

    name: str
    path: Path
    crs: str
    bounds: tuple[float, float, float, float]
    minzoom: int
    maxzoom: int
    band_count: int
    nodata: float | None
    width: int
    height: int
    added_at: str
    source: str

    def to_dict(self, base: Path) -> dict[str, Any]:
        out = asdict(self)
        # files we own are stored relative to the rasters dir, so the data dir can move
        out["path"] = (self.path.name if self.path.parent == base else str(self.path))
        out["bounds"] = list(self.bounds)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path) -> RasterInfo:
        path = Path(data["path"])
        return cls(
            name=data["name"], path=path if path.is_absolute() else base / path,
            crs=data["crs"], bounds=tuple(data["bounds"]),  # type: ignore[arg-type]
            minzoom=int(data["minzoom"]), maxzoom=int(data["maxzoom"]),
            band_count=int(data["band_count"]), nodata=data.get("nodata"),
            width=int(data["width"]), height=int(data["height"]),
            added_at=data["added_at"], source=data.get("source", ""),
        )

    @property
    def center(self) -> tuple[float, float]:
        w, s, e, n = self.bounds
        return (w + e) / 2.0, (s + n) / 2.0


# ----------------------------------------------------------------------------- registry
def rasters_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / "rasters"


def _registry_path(data_dir: Path | str) -> Path:
    return rasters_dir(data_dir) / "registry.json"


def _read_registry(data_dir: Path | str) -> dict[str, RasterInfo]:
    path = _registry_path(data_dir)
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text(encoding="utf-8"))
    base = rasters_dir(data_dir)
    return {name: RasterInfo.from_dict(entry, base)
            for name, entry in doc.get("rasters", {}).items()}


def _write_registry(data_dir: Path | str, rasters: dict[str, RasterInfo]) -> None:
    """Write to a temporary file in the same directory, then rename over the old one."""
    base = rasters_dir(data_dir)
    doc = {"version": REGISTRY_VERSION,
           "rasters": {name: rasters[name].to_dict(base) for name in sorted(rasters)}}
    fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".json", dir=base)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, ensure_ascii=False, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, _registry_path(data_dir))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _registry_lock(data_dir: Path | str) -> Iterator[None]:
    """Serialise read-modify-write of the registry between processes."""
    base = rasters_dir(data_dir)
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".registry.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def list_rasters(data_dir: Path | str) -> list[RasterInfo]:
    return [info for _, info in sorted(_read_registry(data_dir).items())]


def get_raster(data_dir: Path | str, name: str) -> RasterInfo:
    info = _read_registry(data_dir).get(name)
    if info is None:
        raise RasterNotFound("RASTER_NOT_FOUND", "影像不存在 / no such raster")
    return info


def remove_raster(data_dir: Path | str, name: str) -> RasterInfo:
    """Drop a raster from the registry; its file is deleted only if it lives in the rasters dir."""
    with _registry_lock(data_dir):
        rasters = _read_registry(data_dir)
        info = rasters.pop(name, None)
        if info is None:
            raise RasterNotFound("RASTER_NOT_FOUND", "影像不存在 / no such raster")
        _write_registry(data_dir, rasters)
    if info.path.parent == rasters_dir(data_dir):
        info.path.unlink(missing_ok=True)
    shutil.rmtree(tile_cache_dir(data_dir, name), ignore_errors=True)
    return info


# ----------------------------------------------------------------------------- adding
def raster_name(path: Path, name: str | None) -> str:
    """The given name, or one derived from the file name; lower-case ASCII, digits, '-', '_'."""
    if name is None:
        name = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_")
    if not NAME_RE.match(name):
        raise InvalidRaster(
            "RASTER_NAME",
            f"影像名称无效：{name!r}，只能用小写字母、数字、- 和 _（至多 64 个字符） / "
            f"invalid raster name {name!r}: use lower-case letters, digits, '-' and '_' "
            "(64 at most)",
        )
    return name


@dataclass(frozen=True)
class _Source:
    crs: str
    band_count: int
    nodata: float | None
    has_alpha: bool


def inspect_source(path: Path) -> _Source:
    """Open the file with rasterio and check it can be served as an 8-bit orthophoto."""
    if not path.is_file():
        raise InvalidRaster("RASTER_UNREADABLE", f"文件不存在：{path} / no such file: {path}")
    try:
        with rasterio.open(path) as src:
            crs = src.crs or (src.gcps[1] if src.gcps[0] else None)
            count, dtypes, nodata = src.count, set(src.dtypes), src.nodata
            colorinterp = list(src.colorinterp)
    except RasterioError as exc:
        raise InvalidRaster(
            "RASTER_UNREADABLE",
            f"无法读取影像文件 {path.name} / cannot read {path.name} as a raster: {exc}",
        ) from exc
    if crs is None:
        raise InvalidRaster(
            "RASTER_NO_CRS",
            f"影像没有坐标参考系，无法定位：{path.name} / {path.name} has no coordinate "
            "reference system, so it cannot be placed on the map",
        )
    if count not in (1, 3, 4):
        raise InvalidRaster(
            "RASTER_BANDS",
            f"影像应为 1、3 或 4 个波段（灰度、RGB、RGBA），实际 {count} 个 / expected 1, 3 or 4 "
            f"bands (grey, RGB, RGBA), found {count}",
        )
    if dtypes != {"uint8"}:
        raise InvalidRaster(
            "RASTER_DTYPE",
            f"影像应为 8 位无符号整数（uint8），实际 {', '.join(sorted(dtypes))} / expected 8-bit "
            f"unsigned (uint8) bands, found {', '.join(sorted(dtypes))}",
        )
    has_alpha = ColorInterp.alpha in colorinterp
    if count == 4 and colorinterp[3] != ColorInterp.alpha:
        raise InvalidRaster(
            "RASTER_BANDS",
            "4 波段影像的第 4 波段必须是 alpha 透明度 / in a 4-band raster the 4th band must be "
            "the alpha band (RGBA)",
        )
    return _Source(crs.to_string() if hasattr(crs, "to_string") else str(crs), count,
                   None if nodata is None else float(nodata), has_alpha)


def _to_cog(src_path: Path, dst_path: Path, source: _Source, profile: Profile) -> None:
    """Reproject to Web Mercator on the tile grid and write a COG with overviews and a mask.

    A web-optimised COG (tiles and overviews aligned to the XYZ grid) makes serving a tile a
    plain block read, without a reprojection per request.
    """
    dst_kwargs = dict(cog_profiles.get(profile))
    # 256-pixel blocks match the tiles we serve and give small rasters overviews too
    dst_kwargs.update(blockxsize=TILE_SIZE, blockysize=TILE_SIZE)
    if profile == "jpeg":
        dst_kwargs["jpeg_quality"] = 90
    else:
        dst_kwargs["predictor"] = 2
    with rasterio.open(src_path) as src, warnings.catch_warnings():
        # "nodata/alpha will be translated to an internal mask": exactly what we ask for
        warnings.simplefilter("ignore")
        grid = get_web_optimized_params(src, tms=WEB_MERCATOR)
        vrt_options: dict[str, Any] = {**grid, "resampling": Resampling.bilinear}
        if source.nodata is not None:
            vrt_options.update(nodata=source.nodata, src_nodata=source.nodata)
        elif not source.has_alpha:
            vrt_options["add_alpha"] = True  # mark what lies outside the source as empty
        with WarpedVRT(src, **vrt_options) as vrt:
            cog_translate(vrt, dst_path, dst_kwargs, add_mask=True,
                          overview_resampling="average", quiet=True)


def _geographic_bounds(path: Path) -> tuple[float, float, float, float] | None:
    """WGS84 bounds of the source data itself (the stored COG is padded to whole tiles)."""
    with rasterio.open(path) as src:
        if src.crs is None:
            return None
        w, s, e, n = transform_bounds(src.crs, WGS84_CRS, *src.bounds, densify_pts=21)
    return float(w), float(s), float(e), float(n)


def _describe(path: Path) -> tuple[tuple[float, float, float, float], int, int, int, int]:
    """WGS84 bounds, min/max zoom (from resolution and overviews), width and height."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Reader(str(path)) as src:
            bounds = tuple(float(v) for v in src.get_geographic_bounds(WGS84_CRS))
            return (bounds, int(src.minzoom), int(src.maxzoom),  # type: ignore[return-value]
                    int(src.width or 0), int(src.height or 0))


def add_raster(data_dir: Path | str, path: Path | str, name: str | None = None,
               copy: bool = True, *, replace: bool = False,
               profile: Profile = "jpeg") -> RasterInfo:
    """Validate a GeoTIFF and register it under ``name``.

    With ``copy`` (the default) the file is converted to a Cloud Optimized GeoTIFF with internal
    overviews at ``<data_dir>/rasters/<name>.tif``; without it the file is served where it is.
    Nothing is written (registry or file) when validation fails.
    """
    path = Path(path).resolve()
    name = raster_name(path, name)
    base = rasters_dir(data_dir)
    base.mkdir(parents=True, exist_ok=True)
    exists = InvalidRaster("RASTER_EXISTS",
                           f"影像名称已存在：{name} / a raster named {name} already exists")
    if not replace and name in _read_registry(data_dir):
        raise exists
    source = inspect_source(path)

    target = base / f"{name}.tif" if copy else path
    tmp: Path | None = None
    if copy:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-", suffix=".tif", dir=base)
        os.close(fd)
        tmp = Path(tmp_name)
    try:
        if tmp is not None:
            try:
                _to_cog(path, tmp, source, profile)
            except RasterioError as exc:
                raise InvalidRaster(
                    "RASTER_UNREADABLE",
                    f"影像转换失败：{path.name} / cannot convert {path.name}: {exc}",
                ) from exc
        bounds, minzoom, maxzoom, width, height = _describe(tmp or target)
        bounds = _geographic_bounds(path) or bounds
        info = RasterInfo(name=name, path=target, crs=source.crs, bounds=bounds,
                          minzoom=minzoom, maxzoom=maxzoom, band_count=source.band_count,
                          nodata=source.nodata, width=width, height=height,
                          added_at=datetime.now(UTC).isoformat(timespec="seconds"),
                          source=str(path))
        with _registry_lock(data_dir):
            rasters = _read_registry(data_dir)
            if name in rasters and not replace:
                raise exists
            if tmp is not None:
                os.replace(tmp, target)
                tmp = None
            rasters[name] = info
            _write_registry(data_dir, rasters)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    log.info("raster %s registered (%dx%d, z%d-%d)", name, width, height, minzoom, maxzoom)
    return info


# ----------------------------------------------------------------------------- tiles
def tile_format(fmt: str) -> str:
    fmt = fmt.lower()
    if fmt not in TILE_FORMATS:
        raise UnsupportedTileFormat(
            "TILE_FORMAT",
            f"不支持的瓦片格式：{fmt}（可用 png、webp） / unsupported tile format {fmt!r} "
            "(use png or webp)",
        )
    return fmt


def tile_address(z: int | str, x: int | str, y: int | str) -> tuple[int, int, int]:
    """Parse and check z/x/y: 0 ≤ z ≤ 24 and 0 ≤ x, y < 2^z."""
    try:
        zi, xi, yi = int(z), int(x), int(y)
    except (TypeError, ValueError):
        raise TileOutOfRange(
            "TILE_OUT_OF_RANGE",
            f"瓦片编号必须是整数：{z}/{x}/{y} / tile coordinates must be integers: {z}/{x}/{y}",
        ) from None
    if not 0 <= zi <= MAX_ZOOM or not (0 <= xi < 2**zi and 0 <= yi < 2**zi):
        raise TileOutOfRange(
            "TILE_OUT_OF_RANGE",
            f"瓦片编号超出范围：{zi}/{xi}/{yi}（0 ≤ z ≤ {MAX_ZOOM}，0 ≤ x, y < 2^z） / tile "
            f"{zi}/{xi}/{yi} is out of range (0 ≤ z ≤ {MAX_ZOOM}, 0 ≤ x, y < 2^z)",
        )
    return zi, xi, yi


def tile_etag(info: RasterInfo, z: int, x: int, y: int, fmt: str) -> str:
    """A strong ETag known before rendering: rendering is deterministic for a given file."""
    try:
        st = info.path.stat()
        version = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        version = "missing"
    key = f"{RENDER_VERSION}|{info.name}|{info.added_at}|{version}|{z}/{x}/{y}.{fmt}"
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def render_tile(info: RasterInfo, z: int, x: int, y: int, fmt: str = "png") -> bytes | None:
    """A 256×256 PNG/WEBP tile, transparent where there is no data; None outside the raster."""
    z, x, y = tile_address(z, x, y)
    fmt = tile_format(fmt)
    if not info.path.is_file():
        log.error("raster %s: file %s is missing", info.name, info.path)
        raise RasterNotFound("RASTER_FILE_MISSING", f"影像文件丢失：{info.name} / the file of "
                             f"raster {info.name} is missing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "no overviews" for files registered in place
        with Reader(str(info.path), options={"resampling_method": "bilinear",
                                             "reproject_method": "bilinear"}) as src:
            if not src.tile_exists(x, y, z):
                return None
            try:
                image = src.tile(x, y, z, tilesize=TILE_SIZE)
            except TileOutsideBounds:
                return None
    if not image.mask.any():
        return None
    options: dict[str, Any] = {"quality": 85} if fmt == "webp" else {}
    return image.render(add_mask=True, img_format=fmt.upper(), **options)


# ----------------------------------------------------------------------------- tile cache
def tile_cache_dir(data_dir: Path | str, name: str) -> Path:
    """Rendered tiles of raster ``name`` on disk, one file per ETag (an empty file: no data)."""
    return Path(data_dir) / "cache" / "raster" / name


def _cache_path(data_dir: Path | str, info: RasterInfo, etag: str, fmt: str) -> Path:
    return tile_cache_dir(data_dir, info.name) / f"{etag.strip(chr(34))}.{fmt}"


def cached_tile(data_dir: Path | str, info: RasterInfo, z: int, x: int, y: int, fmt: str,
                etag: str | None = None) -> bytes:
    """The tile from the disk cache, else rendered and stored there; ``b""`` where the raster
    has no data. The file is named by the tile's ETag, which changes with the raster's file, so
    a re-registered raster never serves an old tile (``remove_raster`` drops the folder)."""
    path = _cache_path(data_dir, info, etag or tile_etag(info, z, x, y, fmt), fmt)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    body = render_tile(info, z, x, y, fmt) or b""
    atomic_write(path, body)
    return body


def prewarm_tiles(data_dir: Path | str, info: RasterInfo, *, max_zoom: int = 18,
                  max_tiles: int = 4000, fmt: str = "webp",
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Render into the disk cache every tile of the raster's extent from its min zoom up to
    ``max_zoom`` (fewer zooms if that would pass ``max_tiles``): what a first map view asks for
    is then read, not rendered. Returns how many tiles were rendered (cached ones are skipped)."""
    top = min(max_zoom, info.maxzoom)
    zooms: list[int] = []
    total = 0
    for z in range(info.minzoom, top + 1):
        n = sum(1 for _ in WEB_MERCATOR.tiles(*info.bounds, zooms=[z]))
        if total + n > max_tiles:
            break
        zooms.append(z)
        total += n
    done = rendered = 0
    for tile in WEB_MERCATOR.tiles(*info.bounds, zooms=zooms):
        etag = tile_etag(info, tile.z, tile.x, tile.y, fmt)
        if not _cache_path(data_dir, info, etag, fmt).exists():
            cached_tile(data_dir, info, tile.z, tile.x, tile.y, fmt, etag)
            rendered += 1
        done += 1
        if progress is not None:
            progress(done, total)
    return rendered
