"""3D at city scale: compressed content (validated and decoded by the reference tools) and the
height datum (orthometric source heights placed with PROJ's geoid)."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer

from tests.test_threed_support import (
    ORIGIN,
    glb_positions_enu,
    npm_tools,
    read_glb,
    synthetic_production,
    validate_glbs,
)
from tiles.threed.build import build_dataset
from tiles.threed.compress import Compression
from tiles.threed.errors import ThreeDInputError
from tiles.threed.georef import EGM96_GRIDS, parse_height_datum

pytestmark = pytest.mark.skipif(
    shutil.which("osgconv") is None, reason="osgconv (Debian openscenegraph) not installed"
)
logging.getLogger("tiles.threed").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_production(tmp_path_factory.mktemp("prod") / "production")


def _root_matrix(folder: Path) -> np.ndarray:
    root = json.loads((folder / "tileset.json").read_text())["root"]
    return np.asarray(root["transform"], dtype=np.float64).reshape(4, 4).T


def _draco_positions(paths: list[Path]) -> dict[str, dict]:
    tools = npm_tools()
    r = subprocess.run(
        ["node", str(tools / "draco-positions.js"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return {Path(d["file"]).name: d for d in map(json.loads, r.stdout.splitlines())}


def test_draco_tileset_validates_decodes_and_is_smaller(production: Path, tmp_path: Path) -> None:
    plain = build_dataset(tmp_path / "d", production, "plain")
    packed = build_dataset(
        tmp_path / "d",
        production,
        "packed",
        compression=Compression("draco", texture_quality=50),
    )
    assert packed.extra["compression"]["geometry"] == "draco"
    a, b = tmp_path / "d" / "3dtiles" / "plain", tmp_path / "d" / "3dtiles" / "packed"
    glbs = sorted((b / "data").rglob("*.glb"))
    assert glbs and all(r["numErrors"] == 0 for r in validate_glbs(glbs)), validate_glbs(glbs)
    decoded = _draco_positions(glbs)
    for glb in glbs:
        doc, _ = read_glb(glb)
        assert doc["extensionsRequired"] == ["KHR_draco_mesh_compression"]
        ref = glb_positions_enu(a / glb.relative_to(b))
        got = np.asarray(decoded[glb.name]["positions"], dtype=np.float64)
        got = np.column_stack([got[:, 0], -got[:, 2], got[:, 1]])  # glTF axes → ENU
        # the two datasets share the ENU anchor (same production, same rule)
        assert np.allclose(_root_matrix(a), _root_matrix(b))
        d = np.linalg.norm(got[:, None, :] - ref[None, :, :], axis=2).min(axis=1)
        assert d.max() < 0.005, (glb.name, d.max())  # 16-bit quantisation over a 150 m tile
        n_tri = sum(
            doc["accessors"][p["indices"]]["count"] // 3 for p in doc["meshes"][0]["primitives"]
        )
        assert decoded[glb.name]["faces"] == n_tri
    assert packed.bytes_out < plain.bytes_out


def test_texture_quality_reencodes_jpeg() -> None:
    from tiles.threed.compress import reencode_image

    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(
        buf, "JPEG", quality=95
    )
    data, mime = reencode_image(buf.getvalue(), "image/jpeg", 40)
    assert mime == "image/jpeg" and len(data) < len(buf.getvalue()) / 2
    with pytest.raises(ValueError):
        Compression("zip")


@pytest.mark.skipif(not any(Path(g).is_file() for g in EGM96_GRIDS), reason="no EGM96 grid")
def test_orthometric_heights_land_on_the_geoid(production: Path, tmp_path: Path) -> None:
    """Source heights declared orthometric (EGM96) end within 0.5 m of H + N, N being the
    geoid height PROJ gives at each point; ellipsoidal heights stay as they were."""
    build_dataset(tmp_path / "d", production, "ortho", height_datum="egm96")
    build_dataset(tmp_path / "d", production, "ellip", height_datum="ellipsoidal")
    grid = parse_height_datum("egm96").grid
    geoid = Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=vgridshift +grids={grid} +multiplier=1 "
        "+step +proj=unitconvert +xy_in=rad +xy_out=deg"
    )
    to_geo = Transformer.from_crs("EPSG:4528", "EPSG:4326", always_xy=True)
    to_llh = Transformer.from_crs(4978, 4979, always_xy=True)
    for name, orthometric in (("ortho", True), ("ellip", False)):
        folder = tmp_path / "d" / "3dtiles" / name
        m = _root_matrix(folder)
        worst, shift = 0.0, []
        for glb in sorted((folder / "data").rglob("*.glb")):
            ecef = glb_positions_enu(glb) @ m[:3, :3].T + m[:3, 3]
            lon, lat, h = to_llh.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])
            # the synthetic production's vertices sit at H = 12 or 19.5 m (relative to ORIGIN)
            source_h = np.where(np.abs(h - 12) < np.abs(h - 19.5), 12.0, 19.5)
            if orthometric:
                _, _, n = geoid.transform(lon, lat, np.zeros(len(lon)))
                expected = np.asarray(n) + np.where(
                    np.abs(h - np.asarray(n) - 12) < 1, 12.0, 19.5
                )
                shift.append(float(np.mean(n)))
            else:
                expected = source_h
            worst = max(worst, float(np.abs(h - expected).max()))
        assert worst < 0.5, (name, worst)
        if orthometric:
            # Hangzhou: EGM96 N ≈ +7 m; the model moved by it
            assert 5 < np.mean(shift) < 9
    lon0, lat0 = to_geo.transform(ORIGIN[0], ORIGIN[1])
    assert 119 < lon0 < 121 and 29 < lat0 < 31


def test_height_datum_errors(tmp_path: Path) -> None:
    with pytest.raises(ThreeDInputError) as exc:
        parse_height_datum(str(tmp_path / "nope.gtx"))
    assert exc.value.code == "THREED_BAD_HEIGHT_DATUM"
    assert parse_height_datum("ellipsoidal").grid is None
    assert parse_height_datum(None).name == "ellipsoidal"


def test_register_units_hierarchy_lod_parallel_and_incremental(
    demo_url: str, tmp_path: Path
) -> None:
    """The whole demo register as unit volumes: cells with building shells (far) refining to
    external tilesets of buildings (near); two workers write what one writes; a second run
    rebuilds nothing; everything validates."""
    import psycopg

    from tiles.threed.tileset import Tileset, check_tileset
    from tiles.threed.unit_tiles import SHELL_ERROR, build_unit_volumes

    with psycopg.connect(demo_url) as conn:
        one = build_unit_volumes(conn, tmp_path / "one", workers=1)
        two = build_unit_volumes(
            conn, tmp_path / "two", workers=2, compression=Compression("draco")
        )
        again = build_unit_volumes(conn, tmp_path / "one", workers=1)
        n_buildings = conn.execute(
            "SELECT count(DISTINCT building_code) FROM cad.unit_current"
        ).fetchone()[0]
    assert one.rebuilt == two.rebuilt == n_buildings and one.cells == two.cells >= 1
    assert again.rebuilt == 0 and again.unchanged == n_buildings
    for folder in (tmp_path / "one", tmp_path / "two"):
        check = check_tileset(folder / "tileset.json")
        assert check.ok, check.problems[:3]
        root = Tileset.read(folder / "tileset.json").root
        assert len(root.children) == one.cells
        for cell in root.children:
            assert cell.content_uri and cell.content_uri.startswith("shells/")
            assert cell.geometric_error == SHELL_ERROR and cell.children[0].content_uri
        glbs = sorted((folder / "shells").glob("*.glb"))[:5]
        glbs += sorted((folder / "buildings").glob("*.glb"))[:5]
        assert all(r["numErrors"] == 0 for r in validate_glbs(glbs))
    plain = sum(p.stat().st_size for p in (tmp_path / "one").rglob("*.glb"))
    packed = sum(p.stat().st_size for p in (tmp_path / "two").rglob("*.glb"))
    assert packed < plain / 3
    doc, _ = read_glb(sorted((tmp_path / "one" / "shells").glob("*.glb"))[0])
    props = doc["extensions"]["EXT_structural_metadata"]["schema"]["classes"]["building"]
    assert list(props["properties"]) == ["building_code"]


@pytest.mark.skipif(not any(Path(g).is_file() for g in EGM96_GRIDS), reason="no EGM96 grid")
def test_unit_volumes_follow_the_same_height_rule(demo_url: str, tmp_path: Path) -> None:
    """Floor elevations declared orthometric move up by the geoid height at the building,
    exactly as photogrammetry does (one rule, ``georef.HeightDatum``)."""
    import psycopg

    from tiles.threed.unit_tiles import INDEX, build_unit_volumes

    with psycopg.connect(demo_url) as conn:
        code = conn.execute(
            "SELECT building_code FROM cad.unit_current ORDER BY 1 LIMIT 1"
        ).fetchone()[0].strip()
        for name, datum in (("e", "ellipsoidal"), ("o", "egm96")):
            build_unit_volumes(conn, tmp_path / name, buildings=[code],
                               datum=parse_height_datum(datum))
    to_llh = Transformer.from_crs(4978, 4979, always_xy=True)
    heights = {}
    for name in ("e", "o"):
        folder = tmp_path / name
        uri = json.loads((folder / INDEX).read_text())["buildings"][code]["uri"]
        ecef = glb_positions_enu(folder / uri) @ _root_matrix(folder)[:3, :3].T
        ecef += _root_matrix(folder)[:3, 3]
        lon, lat, h = to_llh.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])
        heights[name] = (float(np.min(h)), float(np.mean(lon)), float(np.mean(lat)))
    grid = parse_height_datum("egm96").grid
    geoid = Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=vgridshift +grids={grid} +multiplier=1 "
        "+step +proj=unitconvert +xy_in=rad +xy_out=deg"
    )
    _, _, n = geoid.transform(heights["e"][1], heights["e"][2], 0.0)
    assert abs((heights["o"][0] - heights["e"][0]) - n) < 0.5, (heights, n)
