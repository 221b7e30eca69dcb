"""3D Tiles: OSGB productions, meshes, georeferencing accuracy, structure, validation."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

from tests.test_threed_support import (
    GK_SRS,
    ORIGIN,
    glb_positions_enu,
    jpeg,
    npm_tools,
    synthetic_production,
    validate_glbs,
)
from tiles.threed.bounding_volume import Box
from tiles.threed.build import build_dataset
from tiles.threed.errors import OsgbMissingChild, OsgbUnreadable, SrsUnknown
from tiles.threed.georef import parse_srs
from tiles.threed.tileset import Tileset, check_tileset

pytestmark = pytest.mark.skipif(
    shutil.which("osgconv") is None, reason="osgconv (Debian openscenegraph) not installed"
)
logging.getLogger("tiles.threed").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_production(tmp_path_factory.mktemp("prod") / "production")


@pytest.fixture(scope="module")
def built(production: Path, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("data")
    info = build_dataset(data_dir, production, "synthetic")
    return data_dir / "3dtiles" / "synthetic", info


def _root_matrix(folder: Path) -> np.ndarray:
    root = json.loads((folder / "tileset.json").read_text())["root"]
    return np.asarray(root["transform"], dtype=np.float64).reshape(4, 4).T


def test_georeferencing_within_5_cm(built, production: Path) -> None:
    """Every corner of the synthetic production lands within 0.05 m of its exact position."""
    folder, _ = built
    m = _root_matrix(folder)
    exact = Transformer.from_crs("EPSG:4528", "EPSG:4978", always_xy=True)
    worst = 0.0
    for glb in sorted((folder / "data").rglob("*.glb")):
        enu = glb_positions_enu(glb)
        ecef = enu @ m[:3, :3].T + m[:3, 3]
        # the source corners (all tiles) in absolute GK coordinates
        corners = []
        for x0 in (0.25, 150.25, 300.25, 450.25):
            for dx, dy, dz in (
                (0, 0, 0),
                (150, 0, 0),
                (150, 150, 7.5),
                (0, 150, 7.5),
                (300, 0, 0),
                (300, 300, 7.5),
                (0, 300, 7.5),
            ):
                corners.append((x0 + dx, 0.5 + dy, 12.0 + dz))
        src = np.asarray(corners) + np.asarray(ORIGIN)
        x, y, z = exact.transform(src[:, 0], src[:, 1], src[:, 2])
        truth = np.column_stack([x, y, z])
        # each output vertex is one of the corners: distance to the nearest exact corner
        d = np.linalg.norm(ecef[:, None, :] - truth[None, :, :], axis=2).min(axis=1)
        worst = max(worst, float(d.max()))
    assert worst <= 0.05, worst
    assert worst < 0.005  # in practice: float32 offsets from the tile centre


def test_grid_convergence_is_not_ignored(built) -> None:
    """A grid-east edge is not true east ~62 km off the central meridian (γ ≈ 0.31°)."""
    folder, _ = built
    enu = glb_positions_enu(folder / "data" / "Tile_+000_+000" / "Tile_+000_+000_0.glb")
    a, b = enu[0], enu[1]  # (x0, y0) → (x0 + 300, y0): grid east
    bearing = np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0]))
    assert 0.25 < abs(bearing) < 0.4, bearing


def test_tileset_structure(built) -> None:
    folder, info = built
    check = check_tileset(folder / "tileset.json")
    assert check.ok, check.problems
    assert check.tiles >= 2 + 2 * 4 and len(check.contents) == 2 * 5
    sub = json.loads((folder / "data" / "Tile_+000_+000" / "tileset.json").read_text())
    root = sub["root"]
    assert root["geometricError"] > root["children"][0]["geometricError"] > 0
    assert root["children"][0]["children"][0]["geometricError"] == 0
    # ε = 16 · 2r / T from the PagedLOD: 16 · 430 / 53.75
    assert root["geometricError"] == pytest.approx(16 * 2 * 215 / 53.75)
    assert info.kind == "osgb" and info.tiles == check.tiles - 3  # main root + 2 references
    w, s, e, n = info.extent
    assert 120.62 < w < e < 120.64 and 30.2 < s < n < 30.3


def test_structure_checks_catch_errors(built, tmp_path: Path) -> None:
    folder, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    path = copy / "data" / "Tile_+000_+000" / "tileset.json"
    d = json.loads(path.read_text())
    child = d["root"]["children"][0]
    child["boundingVolume"]["box"][0] += 1000
    child["geometricError"] = d["root"]["geometricError"] * 2
    path.write_text(json.dumps(d))
    problems = " ".join(check_tileset(copy / "tileset.json").problems)
    assert "not inside" in problems and "geometricError" in problems


def test_every_glb_passes_gltf_validator(built) -> None:
    folder, _ = built
    reports = validate_glbs(sorted(folder.rglob("*.glb")))
    assert reports and all(r["numErrors"] == 0 for r in reports), reports


def test_textures_are_embedded_jpegs(built) -> None:
    from tests.test_threed_support import read_glb

    folder, _ = built
    doc, binary = read_glb(folder / "data" / "Tile_+000_+000" / "Tile_+000_+000_0.glb")
    img = doc["images"][0]
    view = doc["bufferViews"][img["bufferView"]]
    assert img["mimeType"] == "image/jpeg"
    assert binary[view["byteOffset"] : view["byteOffset"] + 3] == b"\xff\xd8\xff"
    assert "KHR_materials_unlit" in doc["extensionsUsed"]


def test_3d_tiles_tools_reads_the_tileset(built, tmp_path: Path) -> None:
    """3d-tiles-tools (npm) has no validator; its conversion to .3tz reads every tile."""
    folder, _ = built
    tools = npm_tools()
    r = subprocess.run(
        [
            "node",
            str(tools / "node_modules" / "3d-tiles-tools" / "build" / "src" / "cli.mjs"),
            "convert",
            "-i",
            str(folder / "tileset.json"),
            "-o",
            str(tmp_path / "out.3tz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0 and "Cannot find module" in r.stderr + r.stdout and "cli.mjs" in r.stderr:
        pytest.skip("3d-tiles-tools entry point not found")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out.3tz").stat().st_size > 1000


# ------------------------------------------------------------------ bad inputs
def test_missing_child_is_a_warning_naming_the_file(tmp_path: Path) -> None:
    prod = synthetic_production(tmp_path / "p", missing_child=True)
    info = build_dataset(tmp_path / "d", prod, "partial")
    missing = [w for w in info.warnings if w.startswith("OSGB_MISSING_CHILD")]
    assert len(missing) == 1 and "Tile_+000_+000_L2_1.osgb" in missing[0]
    with pytest.raises(OsgbMissingChild, match="Tile_\\+000_\\+000_L2_1.osgb"):
        build_dataset(tmp_path / "d", prod, "strict", strict=True)
    assert not (tmp_path / "d" / "3dtiles" / "strict").exists()


def test_truncated_osgb_is_an_error_naming_the_file(tmp_path: Path) -> None:
    prod = synthetic_production(tmp_path / "p")
    f = prod / "Data" / "Tile_+001_+000" / "Tile_+001_+000_L1_0.osgb"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(OsgbUnreadable, match="Tile_\\+001_\\+000_L1_0.osgb") as exc:
        build_dataset(tmp_path / "d", prod, "trunc")
    assert exc.value.code == "OSGB_UNREADABLE"
    assert not (tmp_path / "d" / "3dtiles" / "trunc").exists()


@pytest.mark.parametrize("srs", ["FOOBAR", 'PROJCS["nonsense"]', "EPSG:999999", "EPSG:4978"])
def test_unknown_srs_is_an_error(tmp_path: Path, srs: str) -> None:
    prod = synthetic_production(tmp_path / "p")
    text = (prod / "metadata.xml").read_text().replace(GK_SRS, srs)
    (prod / "metadata.xml").write_text(text)
    with pytest.raises(SrsUnknown, match="metadata.xml"):
        build_dataset(tmp_path / "d", prod, "bad-srs")


def test_missing_texture_is_a_warning(tmp_path: Path) -> None:
    prod = synthetic_production(tmp_path / "p", external_texture_missing=True)
    info = build_dataset(tmp_path / "d", prod, "notex")
    tex = [w for w in info.warnings if w.startswith("THREED_TEXTURE_MISSING")]
    assert len(tex) == 2 and all("t.jpg" in w and "Tile_+001_+000_L2" in w for w in tex)


def test_srs_forms() -> None:
    wkt = Path(__file__).parent / "data" / "3d" / "metadata_custom_false_northing.xml"
    text = wkt.read_text().split("<SRS>")[1].split("</SRS>")[0]
    ref = parse_srs(text)
    assert ref.crs is not None and ref.crs.to_epsg() is None  # not mistaken for EPSG:4549
    lon, lat = Transformer.from_crs(ref.crs, 4326, always_xy=True).transform(
        500812.25, 3347205.5
    )
    # CM 120.02°E and a false northing of 150 m, not EPSG:4549's 120°E / 0 m
    assert lon == pytest.approx(120.02844, abs=1e-5) and lat == pytest.approx(30.24304, abs=1e-5)
    assert parse_srs("ENU:22.5,113.4").enu_origin == (22.5, 113.4, 0.0)
    assert parse_srs("EPSG:4528").label == "EPSG:4528"


# ------------------------------------------------------------------ meshes
def test_obj_with_texture_and_origin(tmp_path: Path) -> None:
    src = tmp_path / "mesh"
    src.mkdir()
    jpeg(src / "facade.jpg", (180, 120, 90))
    (src / "m.mtl").write_text("newmtl m\nKd 1 1 1\nmap_Kd facade.jpg\n")
    (src / "m.obj").write_text(
        "mtllib m.mtl\nv 0 0 0\nv 20 0 0\nv 20 0 30\nv 0 0 30\n"
        "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nusemtl m\nf 1/1 2/2 3/3\n"
        "f 1/1 3/3 4/4\n"
    )
    info = build_dataset(
        tmp_path / "d", src / "m.obj", "obj", srs=GK_SRS, origin=",".join(map(str, ORIGIN))
    )
    folder = tmp_path / "d" / "3dtiles" / "obj"
    assert check_tileset(folder / "tileset.json").ok
    reports = validate_glbs(sorted(folder.glob("*.glb")))
    assert all(r["numErrors"] == 0 for r in reports), reports
    exact = Transformer.from_crs("EPSG:4528", "EPSG:4978", always_xy=True)
    m = _root_matrix(folder)
    ecef = glb_positions_enu(folder / "mesh_0.glb") @ m[:3, :3].T + m[:3, 3]
    truth = np.column_stack(
        exact.transform(
            ORIGIN[0] + np.array([0, 20, 20, 0.0]),
            ORIGIN[1] + np.zeros(4),
            np.array([0, 0, 30, 30.0]),
        )
    )
    assert np.abs(ecef - truth).max() < 0.01
    assert info.kind == "mesh" and not info.warnings
    (src / "facade.jpg").unlink()
    info = build_dataset(
        tmp_path / "d", src / "m.obj", "obj2", srs=GK_SRS, origin=",".join(map(str, ORIGIN))
    )
    assert any("facade.jpg" in w for w in info.warnings)


def test_mesh_without_srs_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(SrsUnknown):
        build_dataset(tmp_path / "d", tmp_path / "m.obj", "nosrs")


def test_point_cloud_with_py3dtiles(tmp_path: Path) -> None:
    from tiles.threed.pointcloud import py3dtiles_path

    try:
        py3dtiles_path()
    except Exception:
        pytest.skip("py3dtiles not installed (optional extra)")
    rng = np.random.default_rng(1)
    pts = np.column_stack(
        [
            ORIGIN[0] + rng.uniform(0, 50, 2000),
            ORIGIN[1] + rng.uniform(0, 50, 2000),
            rng.uniform(0, 10, 2000),
            rng.integers(0, 255, (2000, 3)),
        ]
    )
    np.savetxt(tmp_path / "cloud.xyz", pts, fmt="%.3f %.3f %.3f %d %d %d")
    info = build_dataset(tmp_path / "d", tmp_path / "cloud.xyz", "cloud", srs=GK_SRS)
    w, s, e, n = info.extent
    assert info.kind == "pointcloud" and 120.62 < w < e < 120.64 and 30.2 < s < n < 30.3


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_and_laz_with_their_crs(tmp_path: Path, suffix: str) -> None:
    """LAS/LAZ carrying their CRS in a VLR need no --srs (LAZ is decompressed first: py3dtiles
    itself hangs on LAZ); without a CRS the build says so."""
    import laspy
    from pyproj import CRS

    from tiles.threed.pointcloud import py3dtiles_path

    try:
        py3dtiles_path()
    except Exception:
        pytest.skip("py3dtiles not installed (optional extra)")
    rng = np.random.default_rng(2)
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales, header.offsets = np.array([0.001] * 3), np.array([ORIGIN[0], ORIGIN[1], 0])
    las = laspy.LasData(header)
    las.x = ORIGIN[0] + rng.uniform(0, 50, 3000)
    las.y = ORIGIN[1] + rng.uniform(0, 50, 3000)
    las.z = rng.uniform(0, 10, 3000)
    las.red = las.green = las.blue = rng.integers(0, 65535, 3000)
    bare = tmp_path / f"bare{suffix}"
    las.write(bare)
    with pytest.raises(SrsUnknown):
        build_dataset(tmp_path / "d0", bare, "bare")
    header.add_crs(CRS.from_epsg(4528))
    las.write(tmp_path / f"cloud{suffix}")
    info = build_dataset(tmp_path / "d", tmp_path / f"cloud{suffix}", "cloud")
    w, s, e, n = info.extent
    assert info.kind == "pointcloud" and 120.62 < w < e < 120.64 and 30.2 < s < n < 30.3
    assert not list((tmp_path / "d").rglob("*.las"))          # the temporary LAS is gone


def test_las_heights_in_feet_become_metres(tmp_path: Path) -> None:
    """A LAS in a feet CRS without a vertical CRS has its heights in feet (US LiDAR); they are
    placed in metres, not taken as metres."""
    import json

    import laspy
    from pyproj import CRS, Transformer

    from tiles.threed.pointcloud import py3dtiles_path

    try:
        py3dtiles_path()
    except Exception:
        pytest.skip("py3dtiles not installed (optional extra)")
    crs = CRS.from_epsg(2992)                       # NAD83 / Oregon GIC Lambert (ft)
    assert crs.axis_info[0].unit_conversion_factor == pytest.approx(0.3048)
    rng = np.random.default_rng(3)
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales, header.offsets = np.array([0.01] * 3), np.array([636000.0, 849000.0, 0])
    header.add_crs(crs)
    las = laspy.LasData(header)
    las.x = 636000 + rng.uniform(0, 300, 2000)
    las.y = 849000 + rng.uniform(0, 300, 2000)
    las.z = np.full(2000, 1000.0)                   # 1000 ft = 304.8 m
    las.write(tmp_path / "feet.las")
    build_dataset(tmp_path / "d", tmp_path / "feet.las", "feet")
    root = json.loads(next((tmp_path / "d").rglob("tileset.json")).read_text())["root"]
    box_centre = np.r_[root["boundingVolume"]["box"][:3], 1]
    centre = np.array(root["transform"]).reshape(4, 4).T @ box_centre
    _, _, h = Transformer.from_crs(4978, 4979, always_xy=True).transform(*centre[:3])
    assert h == pytest.approx(304.8, abs=1.0)


def test_box_contains() -> None:
    a = Box((0, 0, 0), (10, 10, 10))
    assert a.contains(Box((1, 1, 1), (9, 9, 9))) and not a.contains(Box((1, 1, 1), (11, 9, 9)))


def test_native_decoder_writes_what_the_osgconv_path_writes(
    production: Path, tmp_path: Path
) -> None:
    """The in-process .osgb decoder and the osgconv reference path give the same tiles: the
    same glb bytes (positions, indices, uvs and textures bit for bit) and the same tree; only
    the PagedLOD ranges differ in the 6th digit (osgconv's text rounds them)."""
    from tiles.threed.georef import Georeference
    from tiles.threed.osgb import production as prod_mod
    from tiles.threed.osgb.metadata import read_metadata

    meta = read_metadata(production)
    roots = prod_mod.find_root_tiles(production)
    georef = Georeference(meta.srs, meta.origin)
    origin = georef.frame_at(np.array([150.0, 150.0, 12.0])).origin
    outputs = {}
    for decoder in prod_mod.DECODERS:
        out = tmp_path / decoder
        for root in roots:
            job = prod_mod._TileJob(root, out, meta, origin, False, georef.pipeline, decoder)
            result = prod_mod._run_job(job, None)
            assert result.tile is not None and result.files == 4 and not result.warnings
            assert not result.fallbacks
        outputs[decoder] = {
            p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.glb")
        }
    native, osgconv = outputs.values()
    assert sorted(native) == sorted(osgconv) and len(native) == 2 * (1 + 2 + 2)
    assert native == osgconv
    for ts in (tmp_path / "native").rglob("tileset.json"):
        a = Tileset.read(ts).root
        b = Tileset.read(tmp_path / "osgconv" / ts.relative_to(tmp_path / "native")).root
        stack = [(a, b)]
        while stack:
            x, y = stack.pop()
            assert x.content_uri == y.content_uri and len(x.children) == len(y.children)
            assert x.geometric_error == pytest.approx(y.geometric_error, rel=1e-4)
            stack += list(zip(x.children, y.children, strict=True))


def test_unsupported_file_falls_back_to_osgconv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the native decoder refuses is converted by osgconv instead, counted and named in
    the dataset entry; the tileset is complete."""
    from tiles.threed.errors import BuildReport
    from tiles.threed.osgb import production as prod_mod
    from tiles.threed.osgb.native import OsgbUnsupported, read_osgb_native

    prod = synthetic_production(tmp_path / "p")
    f = prod / "Data" / "Tile_+001_+000" / "Tile_+001_+000_L1_0.osgb"
    data = f.read_bytes()
    # what the decoder refuses by itself: e.g. a stream carrying schema data
    schema = data[:16] + (int.from_bytes(data[16:20], "little") | 0x2).to_bytes(4, "little")
    g = tmp_path / "schema.osgb"
    g.write_bytes(schema + data[20:])
    with pytest.raises(OsgbUnsupported, match="schema"):
        read_osgb_native(g, BuildReport())

    def picky(path: Path, report: BuildReport, data: bytes | None = None):  # type: ignore[no-untyped-def]
        if path.name == f.name:
            raise OsgbUnsupported("class osg::Example")
        return read_osgb_native(path, report, data)

    monkeypatch.setattr(prod_mod, "read_osgb_native", picky)  # forked workers inherit it
    # threads left by earlier tests (a Playwright session) would make the build spawn its
    # workers, which would not inherit the patch: fork here
    monkeypatch.setattr(prod_mod.threading, "active_count", lambda: 1)
    info = build_dataset(tmp_path / "d", prod, "fallback", workers=1)
    assert info.extra["osgconv_fallbacks"] == 1
    assert info.extra["fallback_files"] == [f"{f.name}: class osg::Example"]
    assert check_tileset(tmp_path / "d" / "3dtiles" / "fallback" / "tileset.json").ok


def test_interrupted_build_resumes_with_finished_tiles(tmp_path: Path) -> None:
    """A build that fails on one tile keeps the tiles it finished; the next run with the same
    parameters skips them (``resumed_tiles``) and gives the complete dataset."""
    prod = synthetic_production(tmp_path / "p")
    f = prod / "Data" / "Tile_+001_+000" / "Tile_+001_+000_L1_0.osgb"
    good = f.read_bytes()
    f.write_bytes(good[: len(good) // 2])
    with pytest.raises(OsgbUnreadable):
        build_dataset(tmp_path / "d", prod, "resume", workers=1)
    partial = tmp_path / "d" / "3dtiles" / ".resume.building"
    assert (partial / "data" / "Tile_+000_+000" / "done.json").is_file()
    f.write_bytes(good)
    info = build_dataset(tmp_path / "d", prod, "resume", workers=1)
    assert info.extra["resumed_tiles"] == 1 and not partial.exists()
    folder = tmp_path / "d" / "3dtiles" / "resume"
    assert check_tileset(folder / "tileset.json").ok and not list(folder.rglob("done.json"))
    again = build_dataset(tmp_path / "d", prod, "resume2", workers=1, decoder="osgconv")
    assert again.extra["resumed_tiles"] == 0 and again.tiles == info.tiles
