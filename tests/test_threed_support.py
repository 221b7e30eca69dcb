"""Helpers for the 3D tests: synthetic OSGB productions, the Khronos glTF validator (npm) and
reading glb content back into ECEF."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support import NPM_3D, npm_package
from tiles.threed.osgb.author import AuthoredGeometry, AuthoredLod, write_osgb

GK_SRS = "EPSG:4528"  # CGCS2000 / 3° GK zone 40 (CM 120°E), prefixed
ORIGIN = (40_560_000.0, 3_350_000.0, 0.0)  # ~62 km east of the CM: convergence ≈ 0.31°


def npm_tools() -> Path:
    npm_package(NPM_3D, "gltf-validator")
    npm_package(NPM_3D, "3d-tiles-tools")
    return NPM_3D


def validate_glbs(paths: list[Path]) -> list[dict]:
    tools = npm_tools()
    out = []
    for i in range(0, len(paths), 200):
        r = subprocess.run(
            ["node", str(tools / "validate-gltf.js"), *map(str, paths[i : i + 200])],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, r.stderr
        out += [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return out


def read_glb(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    magic, version, _ = struct.unpack_from("<III", data, 0)
    assert magic == 0x46546C67 and version == 2
    jlen, _ = struct.unpack_from("<II", data, 12)
    doc = json.loads(data[20 : 20 + jlen])
    blen, _ = struct.unpack_from("<II", data, 20 + jlen)
    return doc, data[28 + jlen : 28 + jlen + blen]


def accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = {5126: "<f4", 5123: "<u2", 5125: "<u4", 5121: "u1"}[acc["componentType"]]
    n = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[acc["type"]]
    arr = np.frombuffer(
        binary, dtype, count=acc["count"] * n, offset=view["byteOffset"] + acc.get("byteOffset", 0)
    )
    return arr.reshape(acc["count"], n) if n > 1 else arr


def glb_positions_enu(path: Path) -> np.ndarray:
    """Vertices of a glb in the tileset's ENU frame (node translation applied, y-up → z-up)."""
    doc, binary = read_glb(path)
    t = np.asarray(doc["nodes"][0].get("translation", [0, 0, 0]), dtype=np.float64)
    pts = []
    for prim in doc["meshes"][0]["primitives"]:
        p = accessor(doc, binary, prim["attributes"]["POSITION"]).astype(np.float64) + t
        pts.append(np.column_stack([p[:, 0], -p[:, 2], p[:, 1]]))
    return np.vstack(pts)


def jpeg(path: Path, colour: tuple[int, int, int] = (90, 160, 70), size: int = 64) -> None:
    Image.new("RGB", (size, size), colour).save(path, quality=90)


def square(x0: float, y0: float, side: float, z: float, image: str | None) -> AuthoredGeometry:
    pos = np.array(
        [
            [x0, y0, z],
            [x0 + side, y0, z],
            [x0 + side, y0 + side, z + 7.5],
            [x0, y0 + side, z + 7.5],
        ],
        dtype=np.float64,
    )
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64)
    return AuthoredGeometry(pos, np.array([[0, 1, 2], [0, 2, 3]]), uv, image)


def synthetic_production(
    folder: Path,
    srs: str = GK_SRS,
    origin=ORIGIN,
    *,
    missing_child: bool = False,
    external_texture_missing: bool = False,
) -> Path:
    """Two 300 m tiles; each: root PagedLOD → L1 file (Group of 2 PagedLODs) → L2 leaves."""
    (folder / "Data").mkdir(parents=True, exist_ok=True)
    (folder / "metadata.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<ModelMetadata version="1">\n'
        f"<SRS>{srs}</SRS>\n<SRSOrigin>{origin[0]},{origin[1]},{origin[2]}</SRSOrigin>\n"
        "</ModelMetadata>\n",
        encoding="utf-8",
    )
    for t, x0 in enumerate((0.25, 300.25)):
        name = f"Tile_+{t:03d}_+000"
        d = folder / "Data" / name
        d.mkdir()
        jpeg(d / "t.jpg")
        root = square(x0, 0.5, 300.0, 12.0, "t.jpg")
        write_osgb(
            d / f"{name}.osgb",
            [AuthoredLod((x0 + 150, 150.5, 16), 215, 53.75, f"{name}_L1_0.osgb", [root])],
        )
        halves = []
        for h in range(2):
            geo = square(x0 + 150 * h, 0.5, 150.0, 12.0, "t.jpg")
            halves.append(
                AuthoredLod(
                    (x0 + 75 + 150 * h, 75.5, 16), 107.5, 53.75, f"{name}_L2_{h}.osgb", [geo]
                )
            )
        write_osgb(d / f"{name}_L1_0.osgb", halves)
        for h in range(2):
            if missing_child and t == 0 and h == 1:
                continue
            geo = square(x0 + 150 * h, 0.5, 150.0, 12.0, "t.jpg")
            images = "UseExternal" if external_texture_missing and t == 1 else "IncludeFile"
            write_osgb(d / f"{name}_L2_{h}.osgb", leaf=[geo], images=images)
        (d / "t.jpg").unlink()
    return folder
