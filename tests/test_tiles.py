"""Vector tiles: decoded geometry and properties, privacy, HTTP semantics, cache, export."""

from __future__ import annotations

import gzip
import sqlite3
import time
from pathlib import Path

import mapbox_vector_tile
import mercantile
import psycopg

from cadastre.access.pii import load_cipher
from cadastre.access.privacy import Role, visible_fields
from cadastre.query.layers import LAYERS
from cadastre.settings import Settings
from tests.conftest import app_data_dir, client_for

ALL = "parcels,buildings,boundary_points,labels"


def _centre(conn: psycopg.Connection) -> tuple[float, float]:
    """A point inside a residential compound of the demo (towers and units are there)."""
    return conn.execute(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid(b.geom_3857), 4326) c "
        "FROM cad.building b JOIN cad.parcel p ON p.parcel_code = b.parcel_code "
        "AND p.valid_to IS NULL WHERE p.land_use = '0701' AND b.floors_above > 10 "
        "ORDER BY b.building_code LIMIT 1) s").fetchone()


def _decode(resp) -> dict:
    assert resp.status_code == 200, resp.text
    return mapbox_vector_tile.decode(resp.content)


def _tile(lon: float, lat: float, z: int) -> str:
    t = mercantile.tile(lon, lat, z)
    return f"{t.z}/{t.x}/{t.y}"


def test_public_tile_geometry_and_properties(demo_client, demo_conn) -> None:
    lon, lat = _centre(demo_conn)
    for z in (14, 16, 18):
        tile = _decode(demo_client.get(f"/tiles/{ALL}/{_tile(lon, lat, z)}.mvt"))
        parcels = tile["parcels"]["features"]
        assert parcels, z
        public = set(visible_fields("parcel", Role.PUBLIC,
                                    [x.name for x in LAYERS["parcels"].fields]))
        seen: set[str] = set()
        for f in parcels:
            assert set(f["properties"]) <= public  # NULL properties are left out by ST_AsMVT
            seen |= set(f["properties"])
            assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
            ring = f["geometry"]["coordinates"][0]
            if f["geometry"]["type"] == "MultiPolygon":
                ring = ring[0]
            assert all(-64 <= x <= 4096 + 64 and -64 <= y <= 4096 + 64 for x, y in ring)
        assert seen == public
        assert "buildings" in tile
        labels = {f["properties"]["kind"] for f in tile.get("labels", {}).get("features", [])}
        assert "compound" in labels or z < 13


def test_boundary_points_from_z17(demo_client, demo_conn) -> None:
    lon, lat, no = demo_conn.execute(
        "SELECT ST_X(g), ST_Y(g), point_no FROM (SELECT ST_Transform(geom_3857, 4326) g, point_no"
        " FROM cad.boundary_point WHERE valid_to IS NULL ORDER BY parcel_code, seq LIMIT 1) s"
    ).fetchone()
    tile = _decode(demo_client.get(f"/tiles/boundary_points/{_tile(lon, lat, 18)}.mvt"))
    pts = tile["boundary_points"]["features"]
    assert no in {p["properties"]["point_no"] for p in pts}
    assert all(p["geometry"]["type"] == "Point" for p in pts)
    assert demo_client.get(f"/tiles/boundary_points/{_tile(lon, lat, 16)}.mvt").status_code == 204


def test_units_by_floor(demo_client, demo_conn) -> None:
    lon, lat = _centre(demo_conn)
    t = _tile(lon, lat, 18)
    f1 = _decode(demo_client.get(f"/tiles/units/{t}.mvt?floor=1"))["units"]["features"]
    f5 = _decode(demo_client.get(f"/tiles/units/{t}.mvt?floor=5"))["units"]["features"]
    assert f1 and f5
    assert {f["properties"]["floor_no"] for f in f5} == {5}
    assert {f["properties"]["unit_code"] for f in f1}.isdisjoint(
        {f["properties"]["unit_code"] for f in f5})
    public = set(f5[0]["properties"])
    assert "mortgaged" not in public and "registration_status" in public
    r = demo_client.get(f"/tiles/units/{t}.mvt")
    assert r.status_code == 400 and r.json()["error"]["code"] == "FLOOR_REQUIRED"


def test_registrar_tiles_carry_more(demo_client, demo_conn, registrar_token: str) -> None:
    lon, lat = _centre(demo_conn)
    t = _tile(lon, lat, 18)
    auth = {"Authorization": f"Bearer {registrar_token}"}
    feats = _decode(demo_client.get(f"/tiles/units/{t}.mvt?floor=2", headers=auth)
                    )["units"]["features"]
    assert {"mortgaged", "seized", "pre_noticed", "objected"} <= set(feats[0]["properties"])
    parcels = _decode(demo_client.get(f"/tiles/parcels/{t}.mvt", headers=auth)
                      )["parcels"]["features"]
    assert "area_difference" in parcels[0]["properties"]
    r = demo_client.get(f"/tiles/units/{t}.mvt?floor=2", headers=auth)
    assert r.headers["cache-control"].startswith("private")
    bad = demo_client.get(f"/tiles/units/{t}.mvt?floor=2",
                          headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "TOKEN_INVALID"


def test_no_pii_in_public_tiles(demo_client, demo_conn, test_settings: Settings) -> None:
    cipher = load_cipher(test_settings)
    secrets: set[str] = set()
    for name, idn, phone in demo_conn.execute(
            "SELECT name_enc, id_number_enc, phone_enc FROM pii.party ORDER BY random() LIMIT 400"):
        secrets.update(v for v in (cipher.decrypt(name), cipher.decrypt(idn),
                                   cipher.decrypt(phone)) if v)
    certs = {r[0] for r in demo_conn.execute(
        "SELECT certificate_no FROM cad.right_record WHERE certificate_no IS NOT NULL LIMIT 2000")}
    w, s, e, n = demo_conn.execute(
        "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM (SELECT ST_Transform("
        "ST_SetSRID(ST_Extent(geom_3857), 3857), 4326) x FROM cad.parcel) q").fetchone()
    lon, lat = _centre(demo_conn)
    tiles = [f"{t.z}/{t.x}/{t.y}" for t in mercantile.tiles(w, s, e, n, [14, 15])]
    tiles += [_tile(lon, lat, z) for z in (16, 17, 18)]
    scanned = 0
    for t in tiles:
        for path in (f"/tiles/{ALL}/{t}.mvt", f"/tiles/units/{t}.mvt?floor=3"):
            r = demo_client.get(path)
            if r.status_code == 204:
                continue
            text = repr(mapbox_vector_tile.decode(r.content))
            scanned += len(r.content)
            hits = [x for x in secrets | certs if x in text]
            assert not hits, (path, hits[:3])
    assert scanned > 50_000


def test_http_semantics(demo_client, demo_conn) -> None:
    lon, lat = _centre(demo_conn)
    url = f"/tiles/parcels/{_tile(lon, lat, 16)}.mvt"
    r = demo_client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert r.headers["content-encoding"] == "gzip"  # httpx decodes it for us
    etag = r.headers["etag"]
    assert demo_client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert demo_client.get("/tiles/parcels/16/0/0.mvt").status_code == 204  # ocean
    for bad in ("/tiles/parcels/23/0/0.mvt", "/tiles/parcels/3/8/0.mvt",
                "/tiles/parcels/3/-1/0.mvt", "/tiles/parcels/x/0/0.mvt"):
        r = demo_client.get(bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "TILE_OUT_OF_RANGE", bad
    r = demo_client.get("/tiles/owners/16/0/0.mvt")
    assert r.status_code == 404 and r.json()["error"]["code"] == "LAYER_NOT_FOUND"
    # below a layer's min zoom: empty, not an error
    assert demo_client.get(f"/tiles/boundary_points/{_tile(lon, lat, 12)}.mvt").status_code == 204


def test_tilejson(demo_client, registrar_token: str) -> None:
    tj = demo_client.get("/tiles/parcels,units/tilejson.json?floor=2").json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"][0].endswith("/tiles/parcels,units/{z}/{x}/{y}.mvt?floor=2")
    units = next(v for v in tj["vector_layers"] if v["id"] == "units")
    assert "mortgaged" not in units["fields"] and units["minzoom"] == 16
    w, s, e, n = tj["bounds"]
    assert 119.9 < w < e < 120.3 and 30.1 < s < n < 30.4
    reg = demo_client.get("/tiles/parcels,units/tilejson.json",
                          headers={"Authorization": f"Bearer {registrar_token}"}).json()
    assert "mortgaged" in next(v for v in reg["vector_layers"] if v["id"] == "units")["fields"]


def test_warm_tiles_do_not_touch_postgis(demo_client, demo_conn) -> None:
    lon, lat = _centre(demo_conn)
    url = f"/tiles/{ALL}/{_tile(lon, lat, 17)}.mvt"
    first = demo_client.get(url)
    state = demo_client.app.state.cadastre
    pool = state.pool

    class NoDatabase:
        def connection(self):  # noqa: ANN201
            raise AssertionError("a warm tile reached the database")

    state.pool = NoDatabase()
    try:
        second = demo_client.get(url)
    finally:
        state.pool = pool
    assert second.status_code == 200 and second.content == first.content


def test_edit_invalidates_exactly_the_tiles_it_touches(small_district, test_settings: Settings,
                                                      tmp_path: Path) -> None:
    from cadastre.register.versions import replace_parcel_geometry

    url = small_district("inval")
    data_dir = app_data_dir(test_settings, tmp_path / "app")
    with psycopg.connect(url) as conn:
        code, wkt, bounds = conn.execute(
            "SELECT parcel_code, ST_AsText(ST_GeometryN(geom, 1)), ST_Transform(ST_SetSRID("
            "ST_Extent(geom_3857), 3857), 4326) FROM cad.parcel WHERE valid_to IS NULL "
            "GROUP BY parcel_code, geom ORDER BY parcel_code LIMIT 1 OFFSET 3").fetchone()
        w, s, e, n = conn.execute(
            "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM (SELECT ST_Transform("
            "ST_SetSRID(ST_Extent(geom_3857), 3857), 4326) x FROM cad.parcel) q").fetchone()
    with client_for(url, Settings(storage={"data_dir": data_dir})) as client:
        cache_root = data_dir / "cache" / "tiles" / "public" / "parcels"
        tiles = list(mercantile.tiles(w, s, e, n, [14, 15, 16, 17, 18]))
        for t in tiles:
            client.get(f"/tiles/parcels/{t.z}/{t.x}/{t.y}.mvt")
        before = {p: p.read_bytes() for p in cache_root.rglob("*.mvt.gz")}
        assert len(before) == len(tiles)
        # move the parcel 3 m east (a registrar's boundary correction)
        with psycopg.connect(url) as conn:
            shifted = conn.execute("SELECT ST_AsText(ST_Translate(ST_GeomFromText(%s), 3, 0))",
                                   (wkt,)).fetchone()[0]
            old_env = conn.execute(
                "SELECT ST_Transform(ST_Envelope(geom_3857), 4326) FROM cad.parcel "
                "WHERE parcel_code = %s AND valid_to IS NULL", (code,)).fetchone()[0]
            replace_parcel_geometry(conn, code, shifted, "test registrar")
            new_env = conn.execute(
                "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM (SELECT ST_Transform("
                "ST_SetSRID(ST_Extent(geom_3857), 3857), 4326) x FROM cad.parcel WHERE "
                "parcel_code = %s) q", (code,)).fetchone()  # old and new versions together
            assert old_env is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with psycopg.connect(url) as conn:
                left = conn.execute("SELECT count(*) FROM cad.tile_invalidation").fetchone()[0]
            if left == 0:
                break
            time.sleep(0.2)
        time.sleep(0.3)
        after = {p for p in cache_root.rglob("*.mvt.gz")}
        removed = set(before) - after
        # expected: tiles whose envelope grown by the MVT buffer (64/4096) meets the parcel
        expected = set()
        for t in tiles:
            b = mercantile.xy_bounds(t)
            pad = (b.right - b.left) * 64 / 4096
            lo = mercantile.xy(new_env[0], new_env[1])
            hi = mercantile.xy(new_env[2], new_env[3])
            if not (hi[0] < b.left - pad or lo[0] > b.right + pad or hi[1] < b.bottom - pad
                    or lo[1] > b.top + pad):
                expected.add(cache_root / str(t.z) / str(t.x) / f"{t.y}.mvt.gz")
        assert removed == expected and removed
        assert all(p.read_bytes() == before[p] for p in after)  # the others untouched
        # the re-rendered tile shows the new boundary
        t = next(iter(sorted(expected)))
        z, x, y = int(t.parts[-3]), int(t.parts[-2]), int(t.name.split(".")[0])
        fresh = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt").content
        assert gzip.compress(fresh, mtime=0) != before[t]


def test_export_mbtiles_and_pmtiles(demo_url: str, tmp_path: Path, test_settings: Settings
                                    ) -> None:
    from pmtiles.reader import MmapSource, Reader

    from cadastre.query.layers import parse_layers
    from tiles.cache import TileCache
    from tiles.export import export_tiles, tiles_in_bbox

    cache = TileCache(tmp_path / "cache")
    with psycopg.connect(demo_url, autocommit=True) as conn:
        todo = tiles_in_bbox(conn, None, [13, 14])
        for suffix in ("mbtiles", "pmtiles"):
            out = tmp_path / f"demo.{suffix}"
            n = export_tiles(conn, cache, parse_layers(ALL), todo, out)
            assert n > 0 and out.stat().st_size > 10_000
    db = sqlite3.connect(tmp_path / "demo.mbtiles")
    z, x, tms_y, data = db.execute("SELECT * FROM tiles ORDER BY length(tile_data) DESC"
                                   ).fetchone()
    assert "parcels" in mapbox_vector_tile.decode(gzip.decompress(data))
    meta = dict(db.execute("SELECT name, value FROM metadata"))
    assert meta["format"] == "pbf" and "vector_layers" in meta["json"]
    with open(tmp_path / "demo.pmtiles", "rb") as fh:
        reader = Reader(MmapSource(fh))
        assert reader.header()["min_zoom"] == 13
        tile = reader.get(z, x, (1 << z) - 1 - tms_y)
        assert tile is not None and "parcels" in mapbox_vector_tile.decode(gzip.decompress(tile))
