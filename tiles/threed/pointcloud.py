"""Point clouds (LAS/LAZ/XYZ/PLY) → 3D Tiles with py3dtiles' converter (``py3dtiles convert``).

py3dtiles is an optional dependency (it pulls numba); it runs as a subprocess so a crash or its
process pool cannot take the server down. The source CRS comes from the file (LAS VLR) or
``srs`` (EPSG only: py3dtiles takes a numeric code); coordinates are always easting, northing
(``--pyproj-always-xy``: EPSG:4528-style CRSs declare northing first); output is ECEF.

LAZ is decompressed to a temporary LAS first (laspy, single-threaded lazrs, a chunk at a time):
py3dtiles 12 hangs for ever on LAZ, its forked workers deadlocking in lazrs' parallel decoder.
Heights in the unit of a projected CRS given without a vertical CRS (US LAS files in feet) are
converted to metres in that copy: py3dtiles projects x, y and passes z through as metres.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tiles.threed.errors import SrsUnknown, ThreeDInputError, ToolMissing

POINTCLOUD_SUFFIXES = {".las", ".laz", ".xyz", ".ply"}


def py3dtiles_path() -> str:
    local = Path(sys.executable).with_name("py3dtiles")
    exe = str(local) if local.is_file() else shutil.which("py3dtiles")
    if exe is None:
        raise ToolMissing(
            message="未安装 py3dtiles / py3dtiles is not installed: "
            "pip install 'cadastre-server[pointcloud]'"
        )
    return exe


LAZ_CHUNK_POINTS = 1_000_000
_LAZ_VLRS = {"copc", "laszip encoded", "entwine"}


def height_factor(header: Any) -> float:
    """Metres per unit of the file's heights: its projected CRS's linear unit when the CRS has
    no vertical part (heights then come in the horizontal unit), else 1."""
    try:
        crs = header.parse_crs()
    except Exception:  # noqa: BLE001 - an unreadable CRS VLR: py3dtiles reports it
        return 1.0
    if crs is None or crs.is_compound or not crs.is_projected or not crs.axis_info:
        return 1.0
    factor = crs.axis_info[0].unit_conversion_factor
    return float(factor) if factor and abs(factor - 1) > 1e-12 else 1.0


def needs_copy(source: Path) -> bool:
    """Does ``source`` go to py3dtiles through a plain LAS copy (LAZ, or heights not in m)?"""
    if source.suffix.lower() == ".laz":
        return True
    if source.suffix.lower() != ".las":
        return False
    import laspy

    try:
        with laspy.open(source) as reader:
            return height_factor(reader.header) != 1.0
    except (laspy.LaspyException, ValueError, OSError):
        return False              # py3dtiles says what is wrong with it


def decompress_laz(source: Path, target: Path) -> Path:
    """``source`` (LAS, LAZ or COPC) written as plain LAS at ``target``, a chunk at a time,
    heights in metres (see :func:`height_factor`)."""
    import laspy

    try:
        with laspy.open(source, laz_backend=laspy.LazBackend.Lazrs) as reader:
            # a plain header: the same points, scales, offsets and CRS, without the LAZ/COPC
            # records (laspy cannot write a COPC header)
            src = reader.header
            header = laspy.LasHeader(point_format=src.point_format, version=src.version)
            header.scales, header.offsets = src.scales, src.offsets
            header.vlrs.extend(v for v in src.vlrs if v.user_id.lower() not in _LAZ_VLRS)
            with laspy.open(target, mode="w", header=header, do_compress=False) as writer:
                factor = height_factor(src)
                for chunk in reader.chunk_iterator(LAZ_CHUNK_POINTS):
                    if factor != 1.0:
                        chunk.z = np.asarray(chunk.z) * factor
                    writer.write_points(chunk)
    except (laspy.LaspyException, ValueError, OSError) as exc:
        raise ThreeDInputError(
            "POINTCLOUD_FAILED", f"无法读取 LAZ 文件 / cannot read the LAZ file {source.name}: "
            f"{exc}"[:300]
        ) from exc
    return target


def build_pointcloud(
    source: Path, out_dir: Path, srs: str | None = None, timeout: int = 3600
) -> Path:
    if needs_copy(source):
        with tempfile.TemporaryDirectory(prefix="laz-", dir=out_dir.parent) as tmp:
            plain = decompress_laz(source, Path(tmp) / (source.stem + ".las"))
            return _convert(plain, out_dir, srs, timeout, shown=source)
    return _convert(source, out_dir, srs, timeout, shown=source)


def _convert(source: Path, out_dir: Path, srs: str | None, timeout: int, shown: Path) -> Path:
    cmd = [
        py3dtiles_path(),
        "convert",
        str(source),
        "--out",
        str(out_dir),
        "--overwrite",
        "--srs_out",
        "4978",
        "--jobs",
        "2",
        "--spec-version",
        "1.1",
        "--pyproj-always-xy",
    ]
    if srs:
        m = re.fullmatch(r"\s*(?:EPSG:)?(\d+)\s*", srs, re.IGNORECASE)
        if not m:
            raise SrsUnknown(
                message=f"点云只接受 EPSG 代码 / point clouds take an EPSG code, got {srs!r}"
            )
        cmd += ["--srs_in", m.group(1), "--force-srs-in"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ThreeDInputError(
            "POINTCLOUD_TIMEOUT", f"点云转换超时 / conversion timed out: {shown}"
        ) from exc
    tileset = out_dir / "tileset.json"
    if proc.returncode != 0 or not tileset.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        text = " | ".join(tail)[:300]
        if "srs" in text.lower() or "crs" in text.lower():
            raise SrsUnknown(
                message=f"点云缺少坐标系，请用 --srs 指定 / the point cloud has no "
                f"usable CRS, give --srs: {shown}: {text}"
            )
        raise ThreeDInputError(
            "POINTCLOUD_FAILED",
            f"点云转换失败 / point cloud conversion failed for {shown}: {text}",
        )
    return tileset
