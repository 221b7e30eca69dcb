"""``build_dataset``: any supported SOURCE → a published 3D Tiles dataset.

The kind is detected from the source: a folder with ``metadata.xml`` or ``Data/`` is an OSGB
production; .obj/.glb/.gltf (and .ply with faces) are meshes; .las/.laz/.xyz (and .ply without
faces) are point clouds. The tileset is built in a hidden sibling folder and swapped in at the
end, so a failed build never leaves a half dataset and the previous one keeps being served.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tiles.threed.compress import NONE, Compression
from tiles.threed.errors import BuildReport, DatasetExists, SrsUnknown, ThreeDInputError
from tiles.threed.georef import Georeference, parse_height_datum, parse_srs
from tiles.threed.meshes import MESH_SUFFIXES, build_mesh, is_mesh_ply
from tiles.threed.osgb.metadata import parse_origin
from tiles.threed.osgb.production import DONE, build_production
from tiles.threed.pointcloud import POINTCLOUD_SUFFIXES, build_pointcloud
from tiles.threed.registry import (
    DatasetInfo,
    dataset_dir,
    extent_of_tileset,
    folder_size,
    now,
    write_entry,
)
from tiles.threed.tileset import check_tileset

Progress = Callable[[int, int, str], None]
RESUME = "build-params.json"
BUILD_FORMAT = 3  # bump when the output layout changes: unfinished builds then start afresh


def detect_kind(source: Path) -> str:
    if source.is_dir():
        if (source / "metadata.xml").is_file() or (source / "Data").is_dir():
            return "osgb"
        raise ThreeDInputError(
            "THREED_UNKNOWN_SOURCE",
            f"目录不是 OSGB 成果 / folder is not an "
            f"OSGB production (no metadata.xml or "
            f"Data/): {source}",
        )
    if not source.is_file():
        raise ThreeDInputError(
            "THREED_SOURCE_NOT_FOUND", f"源数据不存在 / source not found: {source}"
        )
    suffix = source.suffix.lower()
    if suffix == ".ply":
        return "mesh" if is_mesh_ply(source) else "pointcloud"
    if suffix in MESH_SUFFIXES:
        return "mesh"
    if suffix in POINTCLOUD_SUFFIXES:
        return "pointcloud"
    raise ThreeDInputError(
        "THREED_UNKNOWN_SOURCE", f"不支持的格式 / unsupported source format {suffix!r}: {source}"
    )


@contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ThreeDInputError(
                "THREED_BUILD_RUNNING", "该数据集正在构建 / this dataset is being built already"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def publish(
    data_dir: Path,
    name: str,
    replace: bool,
    build: Callable[[Path], DatasetInfo],
    params: dict[str, Any] | None = None,
) -> DatasetInfo:
    """Run ``build(tmp_folder)`` and swap the folder in as dataset ``name``.

    With ``params`` the build is resumable: the hidden folder ``.NAME.building`` is kept when
    a build fails or is killed, and a later build with the same parameters continues in it
    (``build`` skips what is finished there); other parameters start afresh."""
    target = dataset_dir(data_dir, name)
    if target.exists() and not replace:
        raise DatasetExists(
            message=f"数据集已存在（用 --replace 覆盖）/ dataset {name!r} already "
            f"exists (use --replace)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target.parent / f".{name}.lock"):
        return _publish(target, name, build, params)


def _publish(
    target: Path, name: str, build: Callable[[Path], DatasetInfo], params: dict[str, Any] | None
) -> DatasetInfo:
    tmp = target.parent / f".{name}.building"
    marker = tmp / RESUME
    try:
        resumable = params is not None and json.loads(marker.read_text()) == params
    except (OSError, ValueError):
        resumable = False
    if not resumable:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if params is not None:
            marker.write_text(json.dumps(params))
    ok = False
    try:
        info = build(tmp)
        check = check_tileset(tmp / "tileset.json")
        if not check.ok:
            raise ThreeDInputError(
                "THREED_TILESET_INVALID",
                "生成的瓦片集未通过结构检查 / the "
                "generated tileset failed its checks: " + "; ".join(check.problems[:3]),
            )
        info.extent, info.heights = extent_of_tileset(tmp / "tileset.json")
        info.tiles = info.tiles or check.tiles
        marker.unlink(missing_ok=True)
        for done in tmp.rglob(DONE):
            done.unlink()
        info.bytes_out = folder_size(tmp)
        write_entry(tmp, info)
        old = target.parent / f".{name}.old-{os.getpid()}"
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        ok = True
        return info
    finally:
        if not ok and params is None:
            shutil.rmtree(tmp, ignore_errors=True)


def build_dataset(
    data_dir: Path,
    source: Path,
    name: str,
    *,
    srs: str | None = None,
    origin: str | None = None,
    replace: bool = False,
    strict: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
    decoder: str = "native",
    compression: Compression = NONE,
    height_datum: str | None = None,
) -> DatasetInfo:
    """``compression``: Draco geometry and/or re-encoded textures for this dataset;
    ``height_datum``: ``auto`` | ``ellipsoidal`` | ``egm96`` | a geoid grid file (see
    ``georef.HeightDatum``)."""
    source = Path(source).resolve()
    kind = detect_kind(source)
    params = {
        "format": BUILD_FORMAT,
        "source": str(source),
        "srs": srs,
        "origin": origin,
        "strict": strict,
        "decoder": decoder,
        "compression": compression.to_dict(),
        "height_datum": height_datum,
    }

    def build(folder: Path) -> DatasetInfo:
        started = time.monotonic()
        info = DatasetInfo(
            name=name, kind=kind, created=now(), extent=[], heights=[], source=str(source)
        )
        if kind == "osgb":
            res = build_production(
                source,
                folder,
                srs=srs,
                origin=origin,
                strict=strict,
                progress=progress,
                workers=workers,
                decoder=decoder,
                params=params,
                compression=compression,
                height_datum=height_datum,
            )
            info.srs, info.tiles, info.bytes_in = res.srs, res.tiles, res.bytes_in
            info.warnings = [str(w) for w in res.warnings]
            info.extra = {
                "files": res.files,
                "vertices": res.vertices,
                "decoder": decoder,
                "osgconv_fallbacks": len(res.fallbacks),
                "fallback_files": res.fallbacks[:50],
                "resumed_tiles": res.resumed_tiles,
            }
        elif kind == "mesh":
            if not srs:
                raise SrsUnknown(
                    message="网格需要 --srs / a mesh needs --srs (EPSG:n, WKT or ENU:lat,lon)"
                )
            report = BuildReport(strict=strict)
            ref = parse_srs(srs, "--srs")
            georef = Georeference(
                ref,
                parse_origin(origin) if origin else (0.0, 0.0, 0.0),
                datum=parse_height_datum(height_datum, ref),
            )
            _, _, _, vertices = build_mesh(source, folder, georef, report, compression)
            info.srs, info.bytes_in = ref.label, source.stat().st_size
            info.warnings = [str(w) for w in report.warnings]
            info.extra = {"vertices": vertices}
        else:
            build_pointcloud(source, folder, srs)
            info.srs, info.bytes_in = srs or "(from file)", source.stat().st_size
        info.seconds = round(time.monotonic() - started, 2)
        info.extra.update(compression=compression.to_dict(), height_datum=height_datum or "auto")
        return info

    return publish(data_dir, name, replace, build, params if kind == "osgb" else None)
