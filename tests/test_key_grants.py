"""API keys' field grants and county scope on OGC items and vector tiles, their audit trail, the
warm-tile fast path with keys, and error messages that never echo the request."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import mapbox_vector_tile
import mercantile
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cadastre.access import apikeys
from cadastre.access.privacy import Role
from cadastre.query.layers import LAYERS
from cadastre.settings import Settings
from tests.conftest import app_data_dir

PURPOSE = {"X-Purpose": "litigation", "X-Case-Ref": quote("(2024)浙0106民初1234号")}
PUBLIC_PARCEL = {f.name for f in LAYERS["parcels"].visible(Role.PUBLIC)}
DEPT_PARCEL = {f.name for f in LAYERS["parcels"].visible(Role.DEPARTMENT)}


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory
        ) -> dict:
    url = small_district("grants")
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("grants_app"))
    settings = Settings(storage={"data_dir": data_dir}, database={"url": url})
    with psycopg.connect(url) as conn:
        county = conn.execute("SELECT left(min(parcel_code), 6) FROM cad.parcel").fetchone()[0]
    hkey = apikeys.hashing_key(settings)
    keys = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, fields, counties in (
                ("narrow", ["parcel.parcel_code"], [county]),
                ("full", ["parcel.*", "building.*", "unit.*"], [county]),
                ("elsewhere", ["parcel.*", "building.*", "unit.*"], ["110101"])):
            key, token = apikeys.create_key(conn, hkey, name, counties, fields)
            keys[name] = (key, {"X-API-Key": token, **PURPOSE})
    return {"url": url, "settings": settings, "keys": keys, "county": county}


@pytest.fixture(scope="module")
def client(env: dict) -> Iterator[TestClient]:
    with TestClient(create_app(env["settings"])) as c:
        yield c


def _audit(env: dict, key: apikeys.ApiKey, action: str) -> list[tuple]:
    with psycopg.connect(env["url"]) as conn:
        return conn.execute(
            "SELECT target, result_count, purpose, case_ref FROM audit.log WHERE actor = %s "
            "AND action = %s ORDER BY seq", (f"department:{key.key_id}", action)).fetchall()


def _parcel(env: dict) -> tuple[str, str, float, float]:
    with psycopg.connect(env["url"]) as conn:
        return conn.execute(
            "SELECT feature_id::text, parcel_code, ST_X(c), ST_Y(c) FROM (SELECT feature_id, "
            "parcel_code, ST_Transform(ST_PointOnSurface(geom_3857), 4326) c FROM cad.parcel "
            "WHERE valid_to IS NULL ORDER BY parcel_code LIMIT 1 OFFSET 3) s").fetchone()


def test_ogc_items_follow_field_grants(client: TestClient, env: dict) -> None:
    narrow, h = env["keys"]["narrow"]
    fid, code, _, _ = _parcel(env)
    url = "/ogc/collections/parcels/items"
    r = client.get(url, params={"limit": 7}, headers=h)
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    assert len(feats) == 7
    assert all(set(f["properties"]) == {"parcel_code"} for f in feats)
    one = client.get(f"{url}/{fid}", headers=h)
    assert one.status_code == 200 and one.json()["properties"] == {"parcel_code": code}
    # filtering on a field the key was not granted would leak it
    r = client.get(url, params={"land_use": "0701"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "PARAMETER_UNKNOWN"
    assert client.get(url, params={"parcel_code": code}, headers=h).json()["numberMatched"] == 1
    # the full key sees what departments may see, beyond the public set
    _, full = env["keys"]["full"]
    props = client.get(url, params={"parcel_code": code}, headers=full).json()["features"][0][
        "properties"]
    assert {"computed_area", "area_difference", "seat"} <= set(props)
    public = client.get(url, params={"parcel_code": code}).json()["features"][0]["properties"]
    assert "computed_area" not in public and "seat" in public
    # departments state a purpose
    r = client.get(url, headers={"X-API-Key": h["X-API-Key"]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "PURPOSE_REQUIRED"


def test_ogc_items_county_scope_and_audit(client: TestClient, env: dict) -> None:
    fid, _, _, _ = _parcel(env)
    other, h = env["keys"]["elsewhere"]
    url = "/ogc/collections/parcels/items"
    r = client.get(url, headers=h)
    assert r.status_code == 200 and r.json()["numberMatched"] == 0 and r.json()["features"] == []
    r = client.get(f"{url}/{fid}", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "FEATURE_NOT_FOUND"
    units = client.get("/ogc/collections/units/items", headers=h).json()
    assert units["numberMatched"] == 0
    full, fh = env["keys"]["full"]
    before = len(_audit(env, full, "ogc.items"))
    page = client.get(url, params={"limit": 4}, headers=fh).json()
    with psycopg.connect(env["url"]) as conn:
        current = conn.execute("SELECT count(*) FROM cad.parcel WHERE valid_to IS NULL"
                               ).fetchone()[0]
    assert page["numberMatched"] == current > 0
    client.get(f"{url}/{fid}", headers=fh)
    rows = _audit(env, full, "ogc.items")[before:]
    assert rows == [("parcels", 4, "litigation", "(2024)浙0106民初1234号"),
                    (f"parcels/{fid}", 1, "litigation", "(2024)浙0106民初1234号")]
    assert _audit(env, other, "ogc.items")[-1][:2] == ("units", 0)
    # public reads stay unaudited
    with psycopg.connect(env["url"]) as conn:
        n = conn.execute("SELECT count(*) FROM audit.log WHERE role = 'public'").fetchone()[0]
    client.get(url, params={"limit": 2})
    with psycopg.connect(env["url"]) as conn:
        assert conn.execute("SELECT count(*) FROM audit.log WHERE role = 'public'"
                            ).fetchone()[0] == n


def _props(resp) -> set[str]:
    assert resp.status_code == 200, resp.text
    feats = mapbox_vector_tile.decode(resp.content)["parcels"]["features"]
    assert feats
    return set().union(*(f["properties"] for f in feats))


def test_tiles_grants_scope_audit_and_fast_path(client: TestClient, env: dict) -> None:
    _, _, lon, lat = _parcel(env)
    t = mercantile.tile(lon, lat, 18)
    path = f"/tiles/parcels/{t.z}/{t.x}/{t.y}.mvt"
    public = _props(client.get(path))             # also warms the public cache (fast path)
    assert public == PUBLIC_PARCEL
    narrow, nh = env["keys"]["narrow"]
    full, fh = env["keys"]["full"]
    _, eh = env["keys"]["elsewhere"]
    # a key that was not granted the department-only fields gets the public set
    assert _props(client.get(path, headers=nh)) == PUBLIC_PARCEL
    # granted all of them and in its county: the department set
    assert _props(client.get(path, headers=fh)) == DEPT_PARCEL > PUBLIC_PARCEL
    # the same grants for another county: only the public set
    assert _props(client.get(path, headers=eh)) == PUBLIC_PARCEL
    r = client.get("/tiles/parcels/tilejson.json", headers=nh)
    assert set(r.json()["vector_layers"][0]["fields"]) == PUBLIC_PARCEL
    r = client.get("/tiles/parcels/tilejson.json", headers=fh)
    assert set(r.json()["vector_layers"][0]["fields"]) == DEPT_PARCEL
    meta = client.get("/ogc/collections/parcels/tiles/WebMercatorQuad", headers=nh).json()
    assert set(meta["layers"][0]["propertiesSchema"]["properties"]) == PUBLIC_PARCEL
    # a warm public tile does not bypass the purpose check for a key
    r = client.get(path, headers={"X-API-Key": nh["X-API-Key"]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "PURPOSE_REQUIRED"
    assert client.get(path).headers["cache-control"].startswith("public")
    assert client.get(path, headers=nh).headers["cache-control"].startswith("private")
    target = f"parcels/{t.z}/{t.x}/{t.y}"
    assert _audit(env, narrow, "tiles.read")[-1][:2] == (target, 1)
    assert _audit(env, full, "tiles.read")[-1][:2] == (target, 1)
    # the OGC tile route audits the same way
    ogc = f"/ogc/collections/parcels/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}"
    n = len(_audit(env, full, "tiles.read"))
    assert _props(client.get(ogc, headers=fh)) == DEPT_PARCEL
    assert len(_audit(env, full, "tiles.read")) == n + 1
    # an empty tile far away is audited with 0 results
    client.get("/tiles/parcels/18/0/0.mvt", headers=fh)
    assert _audit(env, full, "tiles.read")[-1][:2] == ("parcels/18/0/0", 0)
    with psycopg.connect(env["url"]) as conn:
        assert conn.execute("SELECT count(*) FROM audit.log WHERE action = 'tiles.read' AND "
                            "role = 'public'").fetchone()[0] == 0


@pytest.mark.parametrize("path", [
    "/ogc/collections/owner330110195712032039",
    "/ogc/collections/owner330110195712032039/items",
    "/ogc/collections/owner330110195712032039/tiles",
    "/styles/owner330110195712032039.json",
    "/ogc/collections/parcels/items?datetime=330110195712032039",
    "/ogc/collections/parcels/items?owner330110195712032039=1",
    "/ogc/collections/parcels/items?f=330110195712032039",
    "/ogc/collections/parcels/items/330110195712032039",
])
def test_errors_do_not_echo_input(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"]["code"].isupper()
    assert "330110195712032039" not in r.text and "owner" not in r.text


@pytest.mark.parametrize("value", ["330110195712032039", "20200101", "2020-01-01 00:00:00",
                                   "2020-W01", "2020-01-01T00:00", "../330110195712032039"])
def test_malformed_datetime_is_400(client: TestClient, value: str) -> None:
    r = client.get("/ogc/collections/parcels/items", params={"datetime": value})
    assert r.status_code == 400 and r.json()["error"]["code"] == "DATETIME_INVALID"
    ok = client.get("/ogc/collections/parcels/items",
                    params={"datetime": "2020-01-01T00:00:00Z/..", "limit": 1})
    assert ok.status_code == 200
