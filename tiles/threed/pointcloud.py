"""Point clouds (LAS/LAZ/XYZ/PLY) → 3D Tiles with py3dtiles' converter (``py3dtiles convert``).

py3dtiles is an optional dependency (it pulls numba); it runs as a subprocess so a crash or its
process pool cannot take the server down. The source CRS comes from the file (LAS VLR) or
``srs`` (EPSG only: py3dtiles takes a numeric code); coordinates are always easting, northing
(``--pyproj-always-xy``: EPSG:4528-style CRSs declare northing first); output is ECEF.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

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


def build_pointcloud(
    source: Path, out_dir: Path, srs: str | None = None, timeout: int = 3600
) -> Path:
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
            "POINTCLOUD_TIMEOUT", f"点云转换超时 / conversion timed out: {source}"
        ) from exc
    tileset = out_dir / "tileset.json"
    if proc.returncode != 0 or not tileset.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        text = " | ".join(tail)[:300]
        if "srs" in text.lower() or "crs" in text.lower():
            raise SrsUnknown(
                message=f"点云缺少坐标系，请用 --srs 指定 / the point cloud has no "
                f"usable CRS, give --srs: {source}: {text}"
            )
        raise ThreeDInputError(
            "POINTCLOUD_FAILED",
            f"点云转换失败 / point cloud conversion failed for {source}: {text}",
        )
    return tileset
