"""Orthophoto rasters: registry, COG conversion, XYZ tiles through the HTTP router, demo DOM.

Real GeoTIFFs are written with rasterio; tiles are decoded with Pillow and checked pixel by pixel.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import morecantile
import numpy as np
import psycopg
import pytest
import rasterio
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from rasterio.enums import MaskFlags
from rasterio.transform import from_origin
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from api import errors
from api.routers import raster as raster_router
from cadastre.settings import Settings
from tiles.raster import (
    InvalidRaster,
    RasterNotFound,
    add_raster,
    list_rasters,
    prewarm_tiles,
    remove_raster,
    tile_cache_dir,
)

TMS = morecantile.tms.get("WebMercatorQuad")
ORIGIN = (40501744.0, 3347256.0)   # EPSG:4528, ≈ 120.018°E 30.250°N (upper-left corner)
SIZE, PIXEL = 512, 1.0             # 512 m × 512 m at 1 m per pixel
RED, GREEN, BLUE = (200, 40, 40), (40, 180, 60), (40, 60, 200)


def _write(path: Path, data: np.ndarray, crs: str | None = "EPSG:4528", **extra: object) -> Path:
    profile: dict[str, object] = {
        "driver": "GTiff", "width": data.shape[2], "height": data.shape[1],
        "count": data.shape[0], "dtype": str(data.dtype),
        "transform": from_origin(ORIGIN[0], ORIGIN[1], PIXEL, PIXEL), **extra}
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def _quadrants(alpha: bool) -> np.ndarray:
    """Upper-left red, upper-right green, lower-left blue, lower-right empty."""
    data = np.zeros((4 if alpha else 3, SIZE, SIZE), np.uint8)
    h = SIZE // 2
    for band in range(3):
        data[band, :h, :h] = RED[band]
        data[band, :h, h:] = GREEN[band]
        data[band, h:, :h] = BLUE[band]
    if alpha:
        data[3] = 255
        data[3, h:, h:] = 0
    return data


def _rgba_tif(tmp_path: Path) -> Path:
    return _write(tmp_path / "rgba.tif", _quadrants(alpha=True), photometric="RGB", alpha="YES")


def _lonlat(fx: float, fy: float) -> tuple[float, float]:
    """Longitude/latitude of a point given as fractions of the test raster (0,0 = upper left)."""
    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs("EPSG:4528", "EPSG:4326", always_xy=True)
    return to_wgs84.transform(ORIGIN[0] + fx * SIZE * PIXEL, ORIGIN[1] - fy * SIZE * PIXEL)


def _tile_and_pixel(lon: float, lat: float, z: int) -> tuple[morecantile.Tile, int, int]:
    tile = TMS.tile(lon, lat, z)
    west, south, east, north = TMS.xy_bounds(tile)
    x, y = TMS.xy(lon, lat)
    col = int((x - west) / (east - west) * 256)
    row = int((north - y) / (north - south) * 256)
    return tile, row, col


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture()
def client(data_dir: Path) -> TestClient:
    app = FastAPI()
    errors.install(app)
    app.include_router(raster_router.router)
    app.state.settings = Settings(storage={"data_dir": data_dir})
    return TestClient(app)


def _decode(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA")).astype(int)


# ----------------------------------------------------------------------------- registry and COG
def test_add_stores_a_valid_cog_with_overviews_and_a_mask(tmp_path: Path, data_dir: Path) -> None:
    info = add_raster(data_dir, _rgba_tif(tmp_path), name="ortho")
    assert info.path == data_dir / "rasters" / "ortho.tif" and info.path.is_file()
    valid, errs, _ = cog_validate(info.path)
    assert valid, errs
    with rasterio.open(info.path) as src:
        assert src.overviews(1), "internal overviews"
        assert src.count == 3 and src.crs.to_epsg() == 3857       # web-optimised, alpha → mask
        assert src.mask_flag_enums[0] == [MaskFlags.per_dataset]
    assert info.crs == "EPSG:4528" and info.band_count == 4
    west, south, east, north = info.bounds
    assert 120.01 < west < east < 120.03 and 30.24 < south < north < 30.26
    assert info.minzoom <= info.maxzoom and 16 <= info.maxzoom <= 18
    registry = json.loads((data_dir / "rasters" / "registry.json").read_text())
    assert registry["rasters"]["ortho"]["path"] == "ortho.tif"
    assert [r.name for r in list_rasters(data_dir)] == ["ortho"]


def test_bad_inputs_have_codes_and_leave_the_registry_unchanged(tmp_path: Path,
                                                                data_dir: Path) -> None:
    add_raster(data_dir, _rgba_tif(tmp_path), name="good")
    registry = data_dir / "rasters" / "registry.json"
    before = registry.read_bytes()
    files_before = sorted(p.name for p in (data_dir / "rasters").iterdir())

    text = tmp_path / "notes.tif"
    text.write_text("这不是影像 / this is not a raster\n")
    no_crs = _write(tmp_path / "nocrs.tif", _quadrants(alpha=False), crs=None)
    two_band = _write(tmp_path / "float.tif", np.zeros((2, 64, 64), np.float32))
    float_rgb = _write(tmp_path / "float3.tif", np.zeros((3, 64, 64), np.float32))
    cases = [(text, None, "RASTER_UNREADABLE"), (no_crs, None, "RASTER_NO_CRS"),
             (two_band, None, "RASTER_BANDS"), (float_rgb, None, "RASTER_DTYPE"),
             (tmp_path / "missing.tif", None, "RASTER_UNREADABLE"),
             (_rgba_tif(tmp_path), "Bad Name!", "RASTER_NAME"),
             (_rgba_tif(tmp_path), "good", "RASTER_EXISTS")]
    for path, name, code in cases:
        with pytest.raises(InvalidRaster) as caught:
            add_raster(data_dir, path, name=name)
        assert caught.value.code == code, path
        assert " / " in caught.value.message           # bilingual
        assert registry.read_bytes() == before
        assert sorted(p.name for p in (data_dir / "rasters").iterdir()) == files_before


def test_remove(tmp_path: Path, data_dir: Path) -> None:
    info = add_raster(data_dir, _rgba_tif(tmp_path), name="gone")
    remove_raster(data_dir, "gone")
    assert not info.path.exists() and list_rasters(data_dir) == []
    with pytest.raises(RasterNotFound):
        remove_raster(data_dir, "gone")


# ----------------------------------------------------------------------------- tiles over HTTP
@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_tiles_match_the_source_and_are_transparent_outside(tmp_path: Path, data_dir: Path,
                                                            client: TestClient, fmt: str) -> None:
    add_raster(data_dir, _rgba_tif(tmp_path), name="ortho")
    for (fx, fy), expected in [((0.25, 0.25), RED), ((0.75, 0.25), GREEN), ((0.25, 0.75), BLUE)]:
        tile, row, col = _tile_and_pixel(*_lonlat(fx, fy), 18)
        r = client.get(f"/raster/ortho/{tile.z}/{tile.x}/{tile.y}.{fmt}")
        assert r.status_code == 200 and r.headers["content-type"] == f"image/{fmt}"
        px = _decode(r.content)[row, col]
        assert px[3] == 255 and np.abs(px[:3] - expected).max() < 30, (expected, px)

    # the empty (alpha 0) quadrant of the source, and the land just west of the raster
    tile, row, col = _tile_and_pixel(*_lonlat(0.75, 0.75), 18)
    r = client.get(f"/raster/ortho/{tile.z}/{tile.x}/{tile.y}.{fmt}")
    assert r.status_code in (200, 204)
    if r.status_code == 200:
        assert _decode(r.content)[row, col][3] == 0
    lon, lat = _lonlat(0.0, 0.25)
    tile, row, col = _tile_and_pixel(lon - 0.0002, lat, 18)      # ≈ 20 m west of the edge
    _, row_in, col_in = _tile_and_pixel(lon + 0.0002, lat, 18)
    r = client.get(f"/raster/ortho/{tile.z}/{tile.x}/{tile.y}.{fmt}")
    img = _decode(r.content)
    assert img[row, col][3] == 0
    if 0 <= col_in < 256:
        assert img[row_in, col_in][3] == 255


def test_nodata_is_transparent(tmp_path: Path, data_dir: Path, client: TestClient) -> None:
    data = _quadrants(alpha=False)                      # lower-right quadrant is 0 = nodata
    add_raster(data_dir, _write(tmp_path / "nodata.tif", data, nodata=0), name="nd")
    tile, row, col = _tile_and_pixel(*_lonlat(0.75, 0.75), 19)
    r = client.get(f"/raster/nd/{tile.z}/{tile.x}/{tile.y}.png")
    assert r.status_code == 204 or _decode(r.content)[row, col][3] == 0
    tile, row, col = _tile_and_pixel(*_lonlat(0.25, 0.25), 19)
    px = _decode(client.get(f"/raster/nd/{tile.z}/{tile.x}/{tile.y}.png").content)[row, col]
    assert px[3] == 255 and np.abs(px[:3] - RED).max() < 30


def test_tile_errors_and_caching(tmp_path: Path, data_dir: Path, client: TestClient) -> None:
    add_raster(data_dir, _rgba_tif(tmp_path), name="ortho")
    tile, _, _ = _tile_and_pixel(*_lonlat(0.25, 0.25), 17)
    url = f"/raster/ortho/{tile.z}/{tile.x}/{tile.y}.png"

    far = TMS.tile(0.0, 0.0, 17)                                   # Gulf of Guinea
    r = client.get(f"/raster/ortho/17/{far.x}/{far.y}.png")
    assert r.status_code == 204 and not r.content
    for bad in ("/raster/ortho/25/0/0.png", f"/raster/ortho/17/{2**17}/0.png",
                "/raster/ortho/-1/0/0.png", "/raster/ortho/a/b/c.png"):
        r = client.get(bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "TILE_OUT_OF_RANGE", bad
    r = client.get(f"/raster/ortho/{tile.z}/{tile.x}/{tile.y}.jpg")
    assert r.status_code == 400 and r.json()["error"]["code"] == "TILE_FORMAT"
    r = client.get(f"/raster/nowhere/{tile.z}/{tile.x}/{tile.y}.png")
    assert r.status_code == 404 and r.json()["error"]["code"] == "RASTER_NOT_FOUND"

    r = client.get(url)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=3600"
    etag = r.headers["etag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.content and again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(url.replace(".png", ".webp")).headers["etag"] != etag


def test_disk_cache_prewarm_and_invalidation(tmp_path: Path, data_dir: Path,
                                              client: TestClient) -> None:
    """Tiles rendered ahead into the disk cache are what the server sends; a replaced raster
    gets new tiles (new ETags), a removed one loses its cache."""
    info = add_raster(data_dir, _rgba_tif(tmp_path), name="ortho")
    seen: list[tuple[int, int]] = []
    n = prewarm_tiles(data_dir, info, max_zoom=18, fmt="png",
                      progress=lambda done, total: seen.append((done, total)))
    files = sorted(tile_cache_dir(data_dir, "ortho").glob("*.png"))
    assert n == len(files) > 0 and seen[-1][0] == seen[-1][1] == n
    assert prewarm_tiles(data_dir, info, max_zoom=18, fmt="png") == 0     # all cached
    tile, row, col = _tile_and_pixel(*_lonlat(0.25, 0.25), 18)
    r = client.get(f"/raster/ortho/{tile.z}/{tile.x}/{tile.y}.png")
    cached = tile_cache_dir(data_dir, "ortho") / f"{r.headers['etag'].strip(chr(34))}.png"
    assert r.status_code == 200 and cached.read_bytes() == r.content
    assert np.abs(_decode(r.content)[row, col][:3] - RED).max() < 30
    # the same name, other pixels: a new ETag, so neither cache serves the old tile
    data = _quadrants(alpha=True)
    data[:3] = data[:3][::-1]                                  # red ↔ blue
    add_raster(data_dir, _write(tmp_path / "swapped.tif", data, photometric="RGB",
                                alpha="YES"), name="ortho", replace=True)
    r2 = client.get(f"/raster/ortho/{tile.z}/{tile.x}/{tile.y}.png")
    assert r2.headers["etag"] != r.headers["etag"]
    assert np.abs(_decode(r2.content)[row, col][:3] - BLUE).max() < 30
    remove_raster(data_dir, "ortho")
    assert not tile_cache_dir(data_dir, "ortho").exists()


def test_listing_and_tilejson(tmp_path: Path, data_dir: Path, client: TestClient) -> None:
    assert client.get("/api/v1/rasters").json() == {"rasters": []}
    info = add_raster(data_dir, _rgba_tif(tmp_path), name="ortho")
    listed = client.get("/api/v1/rasters").json()["rasters"]
    assert [r["name"] for r in listed] == ["ortho"]
    assert listed[0]["minzoom"] == info.minzoom and listed[0]["maxzoom"] == info.maxzoom
    assert listed[0]["bounds"] == pytest.approx(list(info.bounds))
    tj = client.get("/raster/ortho/tilejson.json", params={"format": "webp"}).json()
    assert tj["tilejson"] == "3.0.0" and tj["scheme"] == "xyz"
    assert tj["tiles"] == ["http://testserver/raster/ortho/{z}/{x}/{y}.webp"]
    assert tj["minzoom"] == info.minzoom and tj["maxzoom"] == info.maxzoom
    w, s, e, n = tj["bounds"]
    assert w < tj["center"][0] < e and s < tj["center"][1] < n
    assert client.get("/raster/nowhere/tilejson.json").status_code == 404


def test_cli_add_list_remove(tmp_path: Path, data_dir: Path) -> None:
    env = {**os.environ, "CADASTRE_DATA_DIR": str(data_dir)}
    run = [sys.executable, "-c", "from api.cli.raster import raster_app; raster_app()"]
    src = _rgba_tif(tmp_path)
    p = subprocess.run([*run, "add", str(src), "--name", "cli-ortho"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([*run, "list", "--json"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and json.loads(p.stdout)[0]["name"] == "cli-ortho"
    p = subprocess.run([*run, "remove", "cli-ortho"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and list_rasters(data_dir) == []


# ----------------------------------------------------------------------------- demo orthophoto
@pytest.mark.slow
def test_demo_orthophoto(demo_url: str, tmp_path: Path, data_dir: Path,
                         client: TestClient) -> None:
    from tiles.demo.ortho import make_demo_orthophoto

    with psycopg.connect(demo_url) as conn:
        result = make_demo_orthophoto(conn, tmp_path / "demo.tif")
        building = conn.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM cad.building"
            " WHERE valid_to IS NULL ORDER BY height DESC NULLS LAST LIMIT 1) b").fetchone()
        # the outer junction south-west of the district: plain asphalt, no parcel
        junction = conn.execute(
            "SELECT ST_XMin(e) - 10, ST_YMin(e) - 10, NOT EXISTS (SELECT 1 FROM cad.parcel p "
            " WHERE p.valid_to IS NULL AND ST_DWithin(p.geom, ST_SetSRID(ST_MakePoint("
            " ST_XMin(e) - 10, ST_YMin(e) - 10), 4528), 5)) FROM (SELECT ST_Extent(geom) AS e"
            " FROM cad.parcel WHERE valid_to IS NULL) x").fetchone()
    assert result.seconds < 60, result
    assert junction is not None and building is not None and junction[2]
    with rasterio.open(result.path) as src:
        assert src.crs.to_epsg() == 4528 and src.count == 3 and src.dtypes[0] == "uint8"
        assert 2000 < max(src.width, src.height) <= 8000 and src.res[0] == pytest.approx(0.5)
        assert src.block_shapes[0] == (512, 512) and src.overviews(1)

        def patch(x: float, y: float) -> np.ndarray:
            row, col = src.index(x, y)
            window = Window(col - 2, row - 2, 5, 5)
            return np.median(src.read(window=window).reshape(3, -1), axis=1)

        roof, road = patch(building[0], building[1]), patch(junction[0], junction[1])
        assert np.abs(roof - road).sum() > 60, (roof, road)
        assert road.max() - road.min() < 20 and 40 < road.mean() < 140   # grey asphalt
        small = src.read(out_shape=(3, src.height // 16, src.width // 16)).astype(int)
    green = (small[1] > small[0] + 8) & (small[1] > small[2] + 8)
    assert 0.1 < green.mean() < 0.7, green.mean()       # lawns, trees and parks

    info = add_raster(data_dir, result.path, name="demo-ortho")    # as publish_demo_orthophoto
    assert cog_validate(info.path)[0] and 17 <= info.maxzoom <= 18
    lon, lat = info.center
    tile = TMS.tile(lon, lat, 16)
    r = client.get(f"/raster/demo-ortho/16/{tile.x}/{tile.y}.png")
    assert r.status_code == 200
    img = _decode(r.content)
    assert (img[..., 3] == 255).all() and img[..., :3].std() > 15
