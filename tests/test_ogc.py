"""OGC API – Features and Tiles: document shapes, paging, as-of queries, privacy, and real clients
(GDAL's OAPIF and MVT drivers) against the demo district."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import mapbox_vector_tile
import mercantile
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shapely.geometry import box, shape

from api.app import create_app
from api.routers import ogc
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import Role, visible_fields
from cadastre.settings import Settings
from tests.conftest import app_data_dir
from tests.support import free_port

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
COLLECTIONS = {"parcels", "buildings", "units", "boundary_points"}
ENCUMBRANCE = {"mortgaged", "seized", "pre_noticed", "objected", "certificate_no", "owner_count"}


def _with_ogc(settings: Settings) -> FastAPI:
    """The app, with the OGC router included unless api.app already does."""
    app = create_app(settings)
    if not any(getattr(r, "path", "").startswith("/ogc") for r in app.routes):
        app.include_router(ogc.router)
    return app


@pytest.fixture(scope="session")
def ogc_settings(demo_url: str, test_settings: Settings,
                 tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("ogc_app"))
    return Settings(storage={"data_dir": data_dir}, database={"url": demo_url})


@pytest.fixture(scope="session")
def client(ogc_settings: Settings) -> Iterator[TestClient]:
    with TestClient(_with_ogc(ogc_settings)) as c:
        yield c


@pytest.fixture(scope="session")
def registrar(registrar_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {registrar_token}"}


def _centre(conn: psycopg.Connection) -> tuple[float, float]:
    """Lon/lat of a tower in a residential compound (many units around it)."""
    return conn.execute(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid(b.geom_3857), 4326) c "
        "FROM cad.building b WHERE b.valid_to IS NULL AND b.floors_above > 10 "
        "ORDER BY b.building_code LIMIT 1) s").fetchone()


def _bbox(conn: psycopg.Connection, half: float = 0.002) -> tuple[float, ...]:
    lon, lat = _centre(conn)
    return (round(lon - half, 6), round(lat - half, 6), round(lon + half, 6), round(lat + half, 6))


def _ok(resp: httpx.Response, media: str = "application/geo+json") -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith(media)
    return resp.json()


def _error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code, resp.text


def _link(doc: dict[str, Any], rel: str) -> dict[str, Any] | None:
    return next((x for x in doc["links"] if x["rel"] == rel), None)


def _walk(client: TestClient, url: str, headers: dict[str, str] | None = None
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow rel=next from ``url``; (all features, all pages)."""
    pages: list[dict[str, Any]] = []
    feats: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        page = _ok(client.get(next_url, headers=headers))
        pages.append(page)
        feats.extend(page["features"])
        nxt = _link(page, "next")
        next_url = nxt["href"] if nxt else None
        assert len(pages) < 500
    return feats, pages


def _coords(geometry: dict[str, Any]) -> Iterator[float]:
    def walk(x: Any) -> Iterator[float]:
        if isinstance(x, (int, float)):
            yield float(x)
        else:
            for y in x:
                yield from walk(y)
    yield from walk(geometry["coordinates"])


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------ landing and metadata
def test_landing_conformance_and_api(client: TestClient) -> None:
    for url in ("/ogc", "/ogc?f=json"):
        doc = _ok(client.get(url), "application/json")
        rels = {x["rel"]: x for x in doc["links"]}
        assert {"self", "service-desc", "conformance", "data"} <= set(rels)
        assert rels["service-desc"]["href"].endswith("/openapi.json")
        assert rels["data"]["href"] == "http://testserver/ogc/collections"
        assert any(r.endswith("tiling-schemes") for r in rels)
    _error(client.get("/ogc?f=html"), 400, "FORMAT_UNSUPPORTED")
    classes = set(_ok(client.get("/ogc/conformance"), "application/json")["conformsTo"])
    base = "http://www.opengis.net/spec/"
    assert {base + "ogcapi-features-1/1.0/conf/core", base + "ogcapi-features-1/1.0/conf/geojson",
            base + "ogcapi-features-1/1.0/conf/oas30", base + "ogcapi-tiles-1/1.0/conf/core",
            base + "ogcapi-tiles-1/1.0/conf/tileset", base + "ogcapi-tiles-1/1.0/conf/mvt",
            base + "ogcapi-tiles-1/1.0/conf/tilesets-list"} <= classes
    api = client.get("/openapi.json").json()
    params = {p["name"]: p for p in
              api["paths"]["/ogc/collections/{collection_id}/items"]["get"]["parameters"]}
    assert {"bbox", "datetime", "limit", "offset", "parcel_code", "floor_no"} <= set(params)
    assert params["limit"]["schema"]["maximum"] == 1000


def test_collections(client: TestClient, demo_conn: psycopg.Connection) -> None:
    doc = _ok(client.get("/ogc/collections"), "application/json")
    assert {c["id"] for c in doc["collections"]} == COLLECTIONS
    first_parcel = demo_conn.execute("SELECT min(valid_from) FROM cad.parcel").fetchone()[0]
    for c in doc["collections"]:
        assert c["itemType"] == "feature" and c["crs"] == [CRS84]
        [[w, s, e, n]] = c["extent"]["spatial"]["bbox"]
        assert 119.9 < w < e < 120.3 and 30.1 < s < n < 30.4, c["id"]
        [[start, end]] = c["extent"]["temporal"]["interval"]
        assert end is None and start.endswith("Z")
        items = _link(c, "items")
        assert items and items["type"] == "application/geo+json"
        assert items["href"] == f"http://testserver/ogc/collections/{c['id']}/items"
        assert "EPSG:4528" in c["description"]
        one = _ok(client.get(f"/ogc/collections/{c['id']}"), "application/json")
        assert one["id"] == c["id"] and one["extent"] == c["extent"]
    parcels = next(c for c in doc["collections"] if c["id"] == "parcels")
    assert parcels["extent"]["temporal"]["interval"][0][0] == _iso(first_parcel)
    for bad in ("labels", "owners", "parcels%27"):
        _error(client.get(f"/ogc/collections/{bad}"), 404, "COLLECTION_NOT_FOUND")
        _error(client.get(f"/ogc/collections/{bad}/items"), 404, "COLLECTION_NOT_FOUND")


# ------------------------------------------------------------------ items
def test_items_bbox_paging(client: TestClient, demo_conn: psycopg.Connection) -> None:
    bbox = _bbox(demo_conn)
    bb = ",".join(map(str, bbox))
    for name, table, limit in (("parcels", "parcel", 3), ("units", "unit", 40)):
        expected = demo_conn.execute(
            f"SELECT count(*) FROM cad.{table} WHERE valid_to IS NULL AND ST_Intersects("
            "geom_3857, ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4326), 3857))", bbox
        ).fetchone()[0]
        assert expected > 2 * limit, (name, expected)   # at least three pages
        feats, pages = _walk(client, f"/ogc/collections/{name}/items?bbox={bb}&limit={limit}")
        ids = [f["id"] for f in feats]
        assert len(ids) == len(set(ids)) == expected
        assert all(p["numberMatched"] == expected for p in pages)
        assert all(p["numberReturned"] == len(p["features"]) <= limit for p in pages)
        assert len(pages) == -(-expected // limit)
        nxt = _link(pages[0], "next")
        assert nxt and f"bbox={bb}" in nxt["href"].replace("%2C", ",")
        assert f"limit={limit}" in nxt["href"] and nxt["type"] == "application/geo+json"
        assert _link(pages[0], "prev") is None and _link(pages[1], "prev") is not None
        assert _link(pages[-1], "next") is None
        area = box(*bbox).buffer(1e-6)
        for f in feats:
            assert f["type"] == "Feature" and len(f["id"]) == 36
            assert shape(f["geometry"]).intersects(area)
            assert all(round(v, 7) == v for v in _coords(f["geometry"]))
            assert f["properties"]["valid_to"] is None
    # paging without bbox keeps the other parameters too
    page = _ok(client.get("/ogc/collections/units/items?floor_no=2&limit=5&offset=5"))
    assert {f["properties"]["floor_no"] for f in page["features"]} == {2}
    for rel in ("next", "prev"):
        href = _link(page, rel)["href"]
        assert "floor_no=2" in href and "limit=5" in href
    assert "offset=0" in _link(page, "prev")["href"]
    assert "offset=10" in _link(page, "next")["href"]


def test_items_defaults_and_filters(client: TestClient, demo_conn: psycopg.Connection) -> None:
    page = _ok(client.get("/ogc/collections/buildings/items"))
    assert page["numberReturned"] == 100 and page["type"] == "FeatureCollection"
    assert page["timeStamp"].endswith("Z")
    current = demo_conn.execute(
        "SELECT count(*) FROM cad.building WHERE valid_to IS NULL").fetchone()[0]
    assert page["numberMatched"] == current
    code, fid = demo_conn.execute(
        "SELECT building_code, feature_id::text FROM cad.building WHERE valid_to IS NULL "
        "ORDER BY building_code DESC LIMIT 1").fetchone()
    one = _ok(client.get("/ogc/collections/buildings/items", params={"building_code": code}))
    assert [f["id"] for f in one["features"]] == [fid]
    units = _ok(client.get("/ogc/collections/units/items",
                           params={"building_code": code, "limit": 1000}))
    n = demo_conn.execute("SELECT count(*) FROM cad.unit WHERE valid_to IS NULL AND "
                          "building_code = %s", (code,)).fetchone()[0]
    assert units["numberMatched"] == n > 0
    assert {f["properties"]["unit_code"][:24] for f in units["features"]} == {code}
    pts = _ok(client.get("/ogc/collections/boundary_points/items",
                         params={"parcel_code": code[:19]}))
    assert pts["numberMatched"] >= 3
    assert all(f["geometry"]["type"] == "Point" for f in pts["features"])
    # the version interval is public for boundary points too
    assert all("valid_from" in f["properties"] for f in pts["features"])
    # an interval open at both ends: every version, current and retired
    total = demo_conn.execute("SELECT count(*) FROM cad.parcel").fetchone()[0]
    for both in ("../..", "/"):
        every = _ok(client.get("/ogc/collections/parcels/items", params={"datetime": both}))
        assert every["numberMatched"] == total
    land = _ok(client.get("/ogc/collections/parcels/items?land_use=0701&limit=1000"))
    assert {f["properties"]["land_use"] for f in land["features"]} == {"0701"}


@pytest.mark.parametrize(("query", "code"), [
    ("bbox=1,2,3", "BBOX_INVALID"),
    ("bbox=a,b,c,d", "BBOX_INVALID"),
    ("bbox=120.1,30.3,120.0,30.2", "BBOX_INVALID"),
    ("bbox=120,30,121,91", "BBOX_INVALID"),
    ("bbox=120,30,121,nan", "BBOX_INVALID"),
    ("bbox=120,30,121,31&bbox-crs=EPSG:4326", "BBOX_INVALID"),
    ("limit=0", "LIMIT_INVALID"),
    ("limit=1001", "LIMIT_INVALID"),
    ("limit=ten", "LIMIT_INVALID"),
    ("offset=-1", "OFFSET_INVALID"),
    ("datetime=yesterday", "DATETIME_INVALID"),
    ("datetime=2020-13-01T00:00:00Z", "DATETIME_INVALID"),
    ("datetime=2021-01-01T00:00:00Z/2020-01-01T00:00:00Z", "DATETIME_INVALID"),
    ("datetime=2020-01-01/2021-01-01/2022-01-01", "DATETIME_INVALID"),
    ("floor_no=2", "PARAMETER_UNKNOWN"),         # not a parcel filter
    ("owner=张三", "PARAMETER_UNKNOWN"),
    ("f=xml", "FORMAT_UNSUPPORTED"),
])
def test_items_bad_parameters(client: TestClient, query: str, code: str) -> None:
    _error(client.get(f"/ogc/collections/parcels/items?{query}"), 400, code)


def test_items_bad_filter_values(client: TestClient) -> None:
    _error(client.get("/ogc/collections/units/items?floor_no=two"), 400, "FILTER_INVALID")
    # there is no filter on encumbrance fields (the public could probe them)
    _error(client.get("/ogc/collections/units/items?mortgaged=true"), 400, "PARAMETER_UNKNOWN")
    # six numbers: heights are ignored
    ok = _ok(client.get("/ogc/collections/parcels/items?bbox=119,29,121,31&limit=1"))
    six = _ok(client.get("/ogc/collections/parcels/items?bbox=119,29,-10,121,31,500&limit=1"))
    assert six["numberMatched"] == ok["numberMatched"] > 0


def test_single_item(client: TestClient, demo_conn: psycopg.Connection) -> None:
    fid, code, version = demo_conn.execute(
        "SELECT feature_id::text, parcel_code, version_id FROM cad.parcel WHERE valid_to IS NULL "
        "ORDER BY parcel_code LIMIT 1 OFFSET 7").fetchone()
    f = _ok(client.get(f"/ogc/collections/parcels/items/{fid}"))
    assert f["type"] == "Feature" and f["id"] == fid
    assert f["properties"]["parcel_code"] == code
    assert f["geometry"]["type"] == "MultiPolygon"
    assert _link(f, "self") and _link(f, "collection")["href"].endswith("/ogc/collections/parcels")
    for bad in ("not-a-uuid", str(version), "00000000-0000-0000-0000-000000000000",
                fid[:-1], "%27%3B--", "x" * 300):
        _error(client.get(f"/ogc/collections/parcels/items/{bad}"), 404, "FEATURE_NOT_FOUND")
    # another spelling of the same uuid is the same feature
    assert _ok(client.get(f"/ogc/collections/parcels/items/{fid.upper()}"))["id"] == fid
    _error(client.get(f"/ogc/collections/buildings/items/{fid}"), 404, "FEATURE_NOT_FOUND")
    _error(client.get(f"/ogc/collections/labels/items/{fid}"), 404, "COLLECTION_NOT_FOUND")
    _error(client.get(f"/ogc/collections/parcels/items/{fid}?datetime=soon"), 400,
           "DATETIME_INVALID")


def test_datetime_as_of_split_parcel(client: TestClient, demo_conn: psycopg.Connection) -> None:
    row = demo_conn.execute("""
        SELECT p.parcel_code, p.feature_id::text, p.valid_from, p.valid_to,
               array_agg(c.parcel_code ORDER BY c.parcel_code), min(c.valid_from)
        FROM cad.parcel p
        JOIN cad.lineage l ON l.entity = 'parcel' AND l.parent_feature_id = p.feature_id
        JOIN cad.parcel c ON c.feature_id = l.child_feature_id AND c.valid_to IS NULL
        WHERE p.valid_to IS NOT NULL AND l.event = 'split'
        GROUP BY p.version_id ORDER BY p.parcel_code LIMIT 1""").fetchone()
    assert row, "the demo should contain split parcels (cad.lineage)"
    code, fid, born, retired, children, child_born = row
    assert child_born >= retired
    before = born + (retired - born) / 2
    url = "/ogc/collections/parcels/items"

    def codes(params: dict[str, str]) -> list[str]:
        page = _ok(client.get(url, params=params))
        assert page["numberMatched"] == len(page["features"])
        return [f["properties"]["parcel_code"] for f in page["features"]]

    then = _ok(client.get(url, params={"parcel_code": code, "datetime": _iso(before)}))
    [old] = then["features"]
    assert old["id"] == fid
    assert old["properties"]["valid_to"] == _iso(retired)
    assert old["properties"]["valid_from"] == _iso(born)
    # validity is half-open: gone at the instant it was retired, and ever after
    for instant in (retired, retired + timedelta(days=400)):
        assert codes({"parcel_code": code, "datetime": _iso(instant)}) == []
    assert codes({"parcel_code": code}) == []            # not current either
    for child in children:
        assert codes({"parcel_code": child}) == [child]
        assert codes({"parcel_code": child, "datetime": _iso(child_born)}) == [child]
        assert codes({"parcel_code": child, "datetime": _iso(before)}) == []
    # intervals: versions whose validity overlaps
    assert codes({"parcel_code": code, "datetime": f"{_iso(before)}/.."}) == [code]
    assert codes({"parcel_code": code, "datetime": f"../{_iso(before)}"}) == [code]
    assert codes({"parcel_code": code, "datetime": f"{_iso(retired)}/.."}) == []
    assert codes({"parcel_code": code, "datetime": f"../{_iso(born - timedelta(days=1))}"}) == []
    assert codes({"parcel_code": children[0],
                  "datetime": f"{_iso(before)}/{_iso(child_born)}"}) == [children[0]]
    # an instant with another UTC offset is the same instant
    local = before.astimezone(timezone(timedelta(hours=8))).isoformat()
    assert codes({"parcel_code": code, "datetime": local}) == [code]
    # one feature by its opaque id: retired now, found as of before
    _error(client.get(f"{url}/{fid}"), 404, "FEATURE_NOT_FOUND")
    old_one = _ok(client.get(f"{url}/{fid}", params={"datetime": _iso(before)}))
    assert old_one["properties"]["parcel_code"] == code
    assert old_one["geometry"] == old["geometry"]


# ------------------------------------------------------------------ privacy
def test_units_privacy_by_role(client: TestClient, demo_conn: psycopg.Connection,
                               registrar: dict[str, str]) -> None:
    public = set(visible_fields("unit", Role.PUBLIC))
    page = _ok(client.get("/ogc/collections/units/items?limit=1000"))
    seen: set[str] = set()
    for f in page["features"]:
        seen |= set(f["properties"])
    assert seen <= public and not seen & ENCUMBRANCE
    assert {"unit_code", "registration_status", "valid_from", "valid_to", "floor_no"} <= seen
    code = demo_conn.execute(
        "SELECT s.unit_code FROM cad.unit_status s JOIN cad.unit u ON u.unit_code = s.unit_code "
        "AND u.valid_to IS NULL WHERE s.mortgaged ORDER BY s.unit_code LIMIT 1").fetchone()[0]
    url = f"/ogc/collections/units/items?unit_code={code}"
    [anon] = _ok(client.get(url))["features"]
    [staff] = _ok(client.get(url, headers=registrar))["features"]
    assert not set(anon["properties"]) & ENCUMBRANCE
    assert staff["properties"]["mortgaged"] is True
    assert {"seized", "pre_noticed", "objected"} <= set(staff["properties"])
    one = _ok(client.get(f"/ogc/collections/units/items/{staff['id']}", headers=registrar))
    assert one["properties"]["mortgaged"] is True
    one_public = _ok(client.get(f"/ogc/collections/units/items/{staff['id']}"))
    assert "mortgaged" not in one_public["properties"]
    page = _ok(client.get("/ogc/collections/units/items?limit=5", headers=registrar))
    assert all("mortgaged" in f["properties"] for f in page["features"])
    parcels = _ok(client.get("/ogc/collections/parcels/items?limit=3", headers=registrar))
    assert "area_difference" in parcels["features"][0]["properties"]
    anon_parcels = _ok(client.get("/ogc/collections/parcels/items?limit=3"))
    assert "area_difference" not in anon_parcels["features"][0]["properties"]
    bad = client.get("/ogc/collections/units/items", headers={"Authorization": "Bearer x.y.z"})
    _error(bad, 401, "TOKEN_INVALID")


def test_no_party_data_in_public_items(client: TestClient, demo_conn: psycopg.Connection,
                                       test_settings: Settings) -> None:
    cipher = load_cipher(test_settings)
    secrets: set[str] = set()
    for name, idn, phone in demo_conn.execute(
            "SELECT name_enc, id_number_enc, phone_enc FROM pii.party ORDER BY party_id "
            "LIMIT 500"):
        secrets.update(v for v in (cipher.decrypt(name), cipher.decrypt(idn),
                                   cipher.decrypt(phone)) if v)
    assert len(secrets) > 500
    secrets |= {r[0] for r in demo_conn.execute(
        "SELECT certificate_no FROM cad.right_record WHERE certificate_no IS NOT NULL LIMIT 2000")}
    scanned = 0
    for name, pages in (("parcels", 3), ("buildings", 3), ("units", 8), ("boundary_points", 2)):
        for i in range(pages):
            r = client.get(f"/ogc/collections/{name}/items?limit=1000&offset={i * 1000}")
            text = r.text
            scanned += len(text)
            hits = [s for s in secrets if s in text]
            assert not hits, (name, i, hits[:3])
        r = client.get(f"/ogc/collections/{name}/tiles/WebMercatorQuad")
        assert not [s for s in secrets if s in r.text]
    assert scanned > 5_000_000


# ------------------------------------------------------------------ tiles
def test_tile_matrix_sets(client: TestClient) -> None:
    doc = _ok(client.get("/ogc/tileMatrixSets"), "application/json")
    [tms] = doc["tileMatrixSets"]
    assert tms["id"] == "WebMercatorQuad" and tms["uri"].endswith("/WebMercatorQuad")
    full = _ok(client.get("/ogc/tileMatrixSets/WebMercatorQuad"), "application/json")
    assert full["id"] == "WebMercatorQuad" and full["crs"].endswith("EPSG/0/3857")
    assert [m["id"] for m in full["tileMatrices"][:3]] == ["0", "1", "2"]
    assert full["tileMatrices"][16]["matrixWidth"] == 1 << 16
    _error(client.get("/ogc/tileMatrixSets/WorldCRS84Quad"), 404, "TILE_MATRIX_SET_NOT_FOUND")


def test_tilesets_metadata(client: TestClient, registrar: dict[str, str]) -> None:
    listing = _ok(client.get("/ogc/collections/parcels/tiles"), "application/json")
    [ts] = listing["tilesets"]
    assert ts["dataType"] == "vector" and ts["tileMatrixSetURI"].endswith("WebMercatorQuad")
    assert _link(ts, "self")["href"].endswith("/ogc/collections/parcels/tiles/WebMercatorQuad")
    meta = _ok(client.get("/ogc/collections/units/tiles/WebMercatorQuad"), "application/json")
    item = _link(meta, "item")
    assert item["templated"] and item["type"] == "application/vnd.mapbox-vector-tile"
    assert item["href"] == ("http://testserver/tiles/units/{tileMatrix}/{tileCol}/{tileRow}.mvt"
                            "?floor=1")
    assert meta["crs"].endswith("EPSG/0/3857")
    assert meta["tileMatrixSetLimits"][0]["tileMatrix"] == "16"
    [layer] = meta["layers"]
    fields = set(layer["propertiesSchema"]["properties"])
    assert "registration_status" in fields and not fields & ENCUMBRANCE
    assert layer["propertiesSchema"]["properties"]["floor_no"]["type"] == "number"
    staff = _ok(client.get("/ogc/collections/units/tiles/WebMercatorQuad", headers=registrar),
                "application/json")
    assert "mortgaged" in staff["layers"][0]["propertiesSchema"]["properties"]
    points = _ok(client.get("/ogc/collections/boundary_points/tiles/WebMercatorQuad"),
                 "application/json")
    assert points["layers"][0]["geometryDimension"] == 0
    _error(client.get("/ogc/collections/units/tiles/GoogleCRS84Quad"), 404,
           "TILE_MATRIX_SET_NOT_FOUND")
    _error(client.get("/ogc/collections/labels/tiles"), 404, "COLLECTION_NOT_FOUND")


def test_ogc_tiles_are_the_tiles_route_bytes(client: TestClient,
                                             demo_conn: psycopg.Connection) -> None:
    lon, lat = _centre(demo_conn)
    t = mercantile.tile(lon, lat, 17)
    ogc_url = f"/ogc/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}"
    a = client.get(ogc_url)
    b = client.get(f"/tiles/parcels/{t.z}/{t.x}/{t.y}.mvt")
    assert a.status_code == b.status_code == 200
    assert a.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
    assert mapbox_vector_tile.decode(a.content)["parcels"]["features"]
    # the template in the tileset metadata resolves to the same tile
    meta = client.get("/ogc/collections/parcels/tiles/WebMercatorQuad").json()
    href = _link(meta, "item")["href"].format(tileMatrix=t.z, tileCol=t.x, tileRow=t.y)
    assert client.get(href).content == a.content
    # units: the ground floor unless ?floor=N
    units = client.get(f"/ogc/collections/units/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}")
    assert units.content == client.get(f"/tiles/units/{t.z}/{t.x}/{t.y}.mvt?floor=1").content
    f3 = client.get(f"/ogc/collections/units/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}?floor=3")
    assert f3.content == client.get(f"/tiles/units/{t.z}/{t.x}/{t.y}.mvt?floor=3").content
    assert f3.content != units.content
    assert 3 in {f["properties"]["floor_no"] for f in
                 mapbox_vector_tile.decode(f3.content)["units"]["features"]}
    assert client.get(ogc_url, headers={"If-None-Match": a.headers["etag"]}).status_code == 304
    assert client.get("/ogc/collections/parcels/tiles/WebMercatorQuad/16/0/0").status_code == 204
    _error(client.get("/ogc/collections/parcels/tiles/WebMercatorQuad/23/0/0"), 400,
           "TILE_OUT_OF_RANGE")
    _error(client.get("/ogc/collections/parcels/tiles/WebMercatorQuad/3/8/0"), 400,
           "TILE_OUT_OF_RANGE")


# ------------------------------------------------------------------ GDAL as the client
def _ogrinfo(*args: str, debug: list[str] | None = None) -> str:
    """ogrinfo's output; with ``debug``, its debug lines (HTTP fetches) are appended there."""
    extra = ["--config", "CPL_DEBUG", "ON"] if debug is not None else []
    done = subprocess.run(["ogrinfo", "-ro", *extra, *args], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr + done.stdout
    if debug is not None:
        debug.extend(done.stderr.splitlines())
    return done.stdout


def _gdal_reads(base: str, conn: psycopg.Connection) -> None:
    """What GDAL (and so QGIS's GDAL paths) sees of our OGC API and tiles."""
    src = f"OAPIF:{base}/ogc"
    listing = _ogrinfo(src)
    for i, name in enumerate(["parcels", "buildings", "units", "boundary_points"], start=1):
        assert f"{i}: {name} " in listing, listing
    summary = _ogrinfo("-so", src, "parcels")
    current = conn.execute("SELECT count(*) FROM cad.parcel WHERE valid_to IS NULL").fetchone()[0]
    assert f"Feature Count: {current}" in summary, summary
    for field in ("id: String", "parcel_code: String", "land_use: String",
                  "registered_area: Real", "valid_from: DateTime"):
        assert field in summary, summary
    assert "area_difference" not in summary
    units = _ogrinfo("-so", src, "units")
    assert "unit_code: String" in units and "registration_status: String" in units
    assert "mortgaged" not in units and "seized" not in units
    # a small window, read in pages of 4 through rel=next
    w, s, e, n = _bbox(conn)
    expected = {r[0] for r in conn.execute(
        "SELECT parcel_code FROM cad.parcel WHERE valid_to IS NULL AND ST_Intersects(geom_3857, "
        "ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4326), 3857))", (w, s, e, n))}
    assert len(expected) > 8
    log: list[str] = []
    read = _ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=4", "-spat", str(w), str(s), str(e), str(n),
                    src, "parcels", debug=log)
    fetches = [line for line in log if "Fetch(" in line and "/items?" in line]
    assert all("bbox=" in line for line in fetches[1:])      # the first one samples the schema
    assert sum("offset=" in line for line in fetches) >= 2   # it followed rel=next
    got = [line.split("=", 1)[1].strip() for line in read.splitlines()
           if line.strip().startswith("parcel_code (String)")]
    assert len(got) == len(set(got)) and set(got) <= expected
    assert len(got) >= len(expected) - 2   # GDAL re-tests edges in lon/lat, we in Web Mercator
    assert read.count("MULTIPOLYGON") == len(got)
    # one vector tile with data, through GDAL's MVT driver
    lon, lat = _centre(conn)
    t = mercantile.tile(lon, lat, 16)
    mvt = _ogrinfo("-so", f"MVT:{base}/tiles/parcels/{t.z}/{t.x}/{t.y}.mvt", "parcels")
    assert "Layer name: parcels" in mvt and "parcel_code: String" in mvt, mvt
    count = int(mvt.split("Feature Count: ")[1].split()[0])
    assert count > 5
    b = mercantile.xy_bounds(t)
    extent = mvt.split("Extent: ")[1].splitlines()[0]
    (x0, y0), (x1, y1) = (tuple(float(v) for v in p.strip(" ()").split(","))
                          for p in extent.split(" - "))
    pad = (b.right - b.left) * 64 / 4096 + 1
    assert b.left - pad <= x0 < x1 <= b.right + pad and b.bottom - pad <= y0 < y1 <= b.top + pad


needs_gdal = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin not installed")


@needs_gdal
def test_gdal_reads_the_ogc_router(ogc_settings: Settings, demo_conn: psycopg.Connection
                                   ) -> None:
    """A real HTTP server (uvicorn in a thread) with this router, read by ogrinfo."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_with_ogc(ogc_settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        _gdal_reads(f"http://127.0.0.1:{port}", demo_conn)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@needs_gdal
def test_gdal_reads_cadastre_serve(demo_url: str, test_settings: Settings, tmp_path: Path,
                                   demo_conn: psycopg.Connection) -> None:
    """`cadastre serve` as a real process, as a user would run it."""
    port = free_port()
    data_dir = app_data_dir(test_settings, tmp_path / "data")
    env = {**os.environ, "DATABASE_URL": demo_url, "CADASTRE_PORT": str(port),
           "CADASTRE_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else "exited"
            assert time.monotonic() < deadline, "no answer from cadastre serve"
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        if httpx.get(f"{base}/ogc", timeout=10).status_code == 404:
            pytest.skip("ogc router not wired yet")
        _gdal_reads(base, demo_conn)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
