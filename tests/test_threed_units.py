"""Unit volumes from PostGIS (privacy, metadata, incremental), the demo scene, and serving."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import psycopg
import pytest

from cadastre.access.privacy import Role, visible_fields
from cadastre.settings import Settings
from tests.conftest import app_data_dir
from tests.test_threed_support import accessor, read_glb, synthetic_production, validate_glbs
from tiles.threed.build import build_dataset
from tiles.threed.tileset import check_tileset
from tiles.threed.unit_tiles import build_unit_volumes, publish_unit_volumes
from tiles.threed.units import public_columns

logging.getLogger("tiles.threed").setLevel(logging.ERROR)
osgconv = pytest.mark.skipif(shutil.which("osgconv") is None, reason="osgconv not installed")


@pytest.fixture(scope="module")
def some_buildings(demo_url: str) -> list[str]:
    with psycopg.connect(demo_url) as conn:
        return [
            r[0].strip()
            for r in conn.execute(
                "SELECT DISTINCT building_code FROM cad.unit WHERE valid_to IS NULL "
                "ORDER BY 1 LIMIT 6"
            )
        ]


def _property_table(glb: Path) -> tuple[dict, dict[str, list]]:
    doc, binary = read_glb(glb)
    meta = doc["extensions"]["EXT_structural_metadata"]
    table = meta["propertyTables"][0]
    out: dict[str, list] = {}
    for name, prop in table["properties"].items():
        view = doc["bufferViews"][prop["values"]]
        raw = binary[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]
        kind = meta["schema"]["classes"]["unit"]["properties"][name]
        if kind["type"] == "STRING":
            ov = doc["bufferViews"][prop["stringOffsets"]]
            offs = np.frombuffer(binary, "<u4", count=table["count"] + 1, offset=ov["byteOffset"])
            out[name] = [raw[offs[i] : offs[i + 1]].decode() for i in range(table["count"])]
        else:
            dtype = {"INT16": "<i2", "FLOAT64": "<f8"}[kind["componentType"]]
            out[name] = np.frombuffer(raw, dtype).tolist()
    return doc, out


def _feature_extent(glb: Path, code: str) -> np.ndarray:
    """Size (x, y, z in the ENU frame) of the volume of unit ``code`` in a building glb."""
    doc, table = _property_table(glb)
    binary = read_glb(glb)[1]
    prim = doc["meshes"][0]["primitives"][0]
    fid = accessor(doc, binary, prim["attributes"]["_FEATURE_ID_0"]).astype(int)
    pos = accessor(doc, binary, prim["attributes"]["POSITION"]).astype(float)
    pts = pos[fid == table["unit_code"].index(code)]
    enu = np.column_stack([pts[:, 0], -pts[:, 2], pts[:, 1]])  # glTF y-up → ENU z-up
    return np.ptp(enu, axis=0)


def test_unit_volumes_metadata_and_no_pii(
    demo_url: str, test_settings: Settings, some_buildings: list[str], tmp_path: Path
) -> None:
    from cadastre.access.pii import load_cipher

    out = tmp_path / "units"
    with psycopg.connect(demo_url) as conn:
        stats = build_unit_volumes(conn, out, buildings=some_buildings)
        expected = {
            r[0].strip(): r[1]
            for r in conn.execute(
                "SELECT unit_code, building_code FROM cad.unit WHERE valid_to IS NULL "
                "AND building_code = ANY(%s)",
                (some_buildings,),
            )
        }
        cipher = load_cipher(test_settings)
        names = [
            cipher.decrypt(r[0])
            for r in conn.execute("SELECT name_enc FROM pii.party ORDER BY party_id LIMIT 300")
        ]
        ids = [
            cipher.decrypt(r[0])
            for r in conn.execute("SELECT id_number_enc FROM pii.party ORDER BY party_id LIMIT 300")
        ]
    assert stats.rebuilt == len(some_buildings)
    assert check_tileset(out / "tileset.json").ok
    glbs = sorted((out / "buildings").glob("*.glb"))
    assert len(glbs) == len(some_buildings)
    assert all(r["numErrors"] == 0 for r in validate_glbs(glbs))
    seen: set[str] = set()
    for glb in glbs:
        doc, table = _property_table(glb)
        assert tuple(table) == public_columns() == visible_fields("unit", Role.PUBLIC, tuple(table))
        seen.update(table["unit_code"])
        prim = doc["meshes"][0]["primitives"][0]
        fid = accessor(doc, read_glb(glb)[1], prim["attributes"]["_FEATURE_ID_0"])
        assert prim["extensions"]["EXT_mesh_features"]["featureIds"][0]["propertyTable"] == 0
        assert set(np.unique(fid).astype(int)) == set(range(len(table["unit_code"])))
        # closed, outward volumes: positive enclosed volume per feature
        pos = accessor(doc, read_glb(glb)[1], prim["attributes"]["POSITION"]).astype(float)
        tri = pos.reshape(-1, 3, 3)
        vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6
        assert vol.sum() > 0
    assert seen == set(expected)
    blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    text = blob.decode("utf-8", "ignore")
    leaked = [n for n in names + ids if n and len(n) >= 2 and n in text]
    assert not leaked, leaked[:5]
    for private in ("certificate_no", "owner_count", "mortgaged", "seized", "name_enc"):
        assert private not in text


def test_unit_volumes_rebuild_only_changed(
    demo_url: str, some_buildings: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "units"
    with psycopg.connect(demo_url) as conn:
        build_unit_volumes(conn, out, buildings=some_buildings)
        first = {p.name: p.stat().st_mtime_ns for p in (out / "buildings").glob("*.glb")}
        again = build_unit_volumes(conn, out, buildings=None)  # nothing changed for these
        assert again.rebuilt >= 0 and again.removed == 0
        one = build_unit_volumes(conn, out, buildings=[some_buildings[0]])
        assert one.rebuilt == 1
    after = {p.name: p.stat().st_mtime_ns for p in (out / "buildings").glob("*.glb")}
    changed = [n for n in first if after[n] != first[n]]
    assert changed == [f"{some_buildings[0]}.glb"]


@osgconv
def test_demo_scene_goes_through_osgb(demo_url: str, tmp_path: Path) -> None:
    from tiles.demo.scene import write_demo_production

    with psycopg.connect(demo_url) as conn:
        folder, codes = write_demo_production(conn, tmp_path / "prod", tiles=1)
        info, stats = publish_unit_volumes(conn, tmp_path / "data", "demo-units", buildings=codes)
    assert codes and stats.rebuilt == len({c for c in codes})
    files = sorted(p.name for p in (folder / "Data" / "Tile_+000_+000").iterdir())
    assert (
        files[0] == "Tile_+000_+000.osgb"
        and len(files) == 6
        and (folder / "metadata.xml").is_file()
    )
    built = build_dataset(tmp_path / "data", folder, "demo-photogrammetry")
    assert not built.warnings
    ds = tmp_path / "data" / "3dtiles" / "demo-photogrammetry"
    assert check_tileset(ds / "tileset.json").ok
    assert all(r["numErrors"] == 0 for r in validate_glbs(sorted(ds.rglob("*.glb"))))
    # the photogrammetry and the unit volumes overlap (same district, same place)
    w1, s1, e1, n1 = built.extent
    w2, s2, e2, n2 = info.extent
    assert w1 < e2 and w2 < e1 and s1 < n2 and s2 < n1


@pytest.fixture(scope="module")
def threed_client(make_db, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.routers import threed

    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("threed_app"))
    if shutil.which("osgconv"):
        prod = synthetic_production(tmp_path_factory.mktemp("p") / "prod")
        build_dataset(data_dir, prod, "synthetic")
    # its own database: an app connected to the template would block every CREATE DATABASE
    url = make_db("threed")
    app = create_app(Settings(storage={"data_dir": data_dir}, database={"url": url}))
    app.include_router(threed.router)
    with TestClient(app) as client:
        yield client


@osgconv
def test_serving_tileset_and_content(threed_client) -> None:
    c = threed_client
    r = c.get("/3dtiles/synthetic/tileset.json", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert "max-age" in r.headers["cache-control"] and r.headers["etag"]
    assert r.json()["asset"]["version"] == "1.1"
    etag = r.headers["etag"]
    assert (
        c.get("/3dtiles/synthetic/tileset.json", headers={"If-None-Match": etag}).status_code == 304
    )
    raw = c.get(
        "/3dtiles/synthetic/data/Tile_+000_+000/tileset.json", headers={"Accept-Encoding": "gzip"}
    )
    assert raw.status_code == 200 and json.loads(raw.content)["root"]
    glb = c.get("/3dtiles/synthetic/data/Tile_+000_+000/Tile_+000_+000_0.glb")
    assert glb.status_code == 200 and glb.headers["content-type"] == "model/gltf-binary"
    assert glb.content[:4] == b"glTF"
    assert gzip  # JSON is gzipped (by the router or the app middleware), httpx decodes it


@osgconv
@pytest.mark.parametrize(
    "path",
    [
        "data/..%2f..%2f..%2fsecrets.json",
        "data/../../../secrets.json",
        "%2e%2e/%2e%2e/secrets.json",
        "dataset.json",
        "data/Tile_+000_+000/nope.glb",
        "..%2fsecrets.json",
    ],
)
def test_serving_refuses_traversal_and_hidden(threed_client, path: str) -> None:
    r = threed_client.get(f"/3dtiles/synthetic/{path}")
    assert r.status_code == 404, (path, r.status_code)


def test_unknown_dataset_and_listing(threed_client) -> None:
    r = threed_client.get("/3dtiles/nope/tileset.json")
    assert r.status_code == 404 and r.json()["error"]["code"] == "THREED_DATASET_NOT_FOUND"
    assert threed_client.get("/3dtiles/bad..name/tileset.json").status_code in (400, 404)
    body = threed_client.get("/api/v1/3d/datasets").json()
    if shutil.which("osgconv"):
        (ds,) = [d for d in body["datasets"] if d["name"] == "synthetic"]
        w, s, e, n = ds["extent"]
        assert 120.62 < w < e < 120.64 and ds["kind"] == "osgb"
        assert ds["tileset"].endswith("/3dtiles/synthetic/tileset.json")


def test_accepting_a_changed_floor_plan_rebuilds_the_unit_volumes(
    small_district, test_settings: Settings, tmp_path: Path
) -> None:
    """Survey accept (API) → the published unit volumes of the changed building are rebuilt."""
    import time

    import shapely
    from shapely import affinity

    from tests.conftest import client_for
    from tiles.threed.unit_tiles import INDEX

    url = small_district("units3d", [("reg.3d", "registrar password", Role.REGISTRAR),
                                     ("survey.3d", "surveyor password", Role.SURVEYOR)])
    with psycopg.connect(url, autocommit=True) as conn:
        code, floor_no, room_no, srid, wkb, building = conn.execute(
            "SELECT unit_code, floor_no, room_no, srid, ST_AsBinary(ST_GeometryN(geom, 1)), "
            "building_code FROM cad.unit WHERE valid_to IS NULL AND floor_no > 1 "
            "ORDER BY building_code, unit_code LIMIT 1"
        ).fetchone()
        code, building = code.strip(), building.strip()
        others = [
            r[0].strip()
            for r in conn.execute(
                "SELECT DISTINCT building_code FROM cad.unit WHERE valid_to IS NULL "
                "AND building_code <> %s ORDER BY 1 LIMIT 2",
                (building,),
            )
        ]
        data_dir = app_data_dir(test_settings, tmp_path / "app")
        publish_unit_volumes(conn, data_dir, "demo-units", buildings=[building, *others])
    folder = data_dir / "3dtiles" / "demo-units"
    before = json.loads((folder / INDEX).read_text())["buildings"]
    glb = folder / before[building]["uri"]
    old_glb = tmp_path / "before.glb"
    shutil.copy(glb, old_glb)
    unchanged = {c: (folder / before[c]["uri"]).stat().st_mtime_ns for c in others}

    # the floor plan: the same unit, its rooms re-measured 20 % smaller (a changed geometry)
    poly = affinity.scale(shapely.from_wkb(bytes(wkb)), 0.8, 0.8, origin="centroid")
    plan = tmp_path / "floor_plan.geojson"
    plan.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"unit_code": code, "floor_no": floor_no,
                                       "room_no": room_no.strip()},
                        "geometry": shapely.geometry.mapping(poly),
                    }
                ],
            },
            ensure_ascii=False,
        )
    )
    with client_for(url, Settings(storage={"data_dir": data_dir})) as client:
        tokens = {}
        for user, pw in (("reg.3d", "registrar password"), ("survey.3d", "surveyor password")):
            r = client.post("/api/v1/auth/login", json={"username": user, "password": pw})
            tokens[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        with plan.open("rb") as fh:
            r = client.post("/api/v1/surveys", headers=tokens["survey.3d"],
                            files={"file": (plan.name, fh, "application/geo+json")})
        assert r.status_code == 202, r.text
        sid = r.json()["submission_id"]
        deadline = time.monotonic() + 120
        while True:
            st = client.get(f"/api/v1/surveys/{sid}", headers=tokens["survey.3d"]).json()
            if st["status"] not in ("received", "validating"):
                break
            assert time.monotonic() < deadline, "validation did not finish"
            time.sleep(0.2)
        assert st["status"] == "validated", client.get(
            f"/api/v1/surveys/{sid}/report", headers=tokens["survey.3d"]).json()
        r = client.post(f"/api/v1/surveys/{sid}/accept", headers=tokens["reg.3d"],
                        json={"reason": "分户图更新"})
        assert r.status_code == 200, r.text
        assert r.json()["diff"]["units"]["changed"] >= 1
        deadline = time.monotonic() + 120
        while True:  # the rebuild runs in the app's job pool after the response
            index = json.loads((folder / INDEX).read_text())
            if index["buildings"][building]["fingerprint"] != before[building]["fingerprint"]:
                break
            assert time.monotonic() < deadline, "the unit volumes were not rebuilt"
            time.sleep(0.3)
        served = client.get(f"/3dtiles/demo-units/{index['buildings'][building]['uri']}")
        assert served.status_code == 200 and served.content == glb.read_bytes()
    assert check_tileset(folder / "tileset.json").ok
    assert all(r["numErrors"] == 0 for r in validate_glbs([glb]))
    # the unit's volume shrank by the survey's 20 % (plus the fixed classification margin)
    old_w, old_d, old_h = _feature_extent(old_glb, code)
    new_w, new_d, new_h = _feature_extent(glb, code)
    assert abs(old_h - new_h) < 0.01
    assert new_w < old_w * 0.9 and new_d < old_d * 0.9, ((old_w, old_d), (new_w, new_d))
    # only the changed building was rewritten among those published before
    after = json.loads((folder / INDEX).read_text())["buildings"]
    assert {c: (folder / after[c]["uri"]).stat().st_mtime_ns for c in others} == unchanged


@osgconv
def test_registrar_builds_a_dataset_through_the_api(
    make_db, test_settings: Settings, tmp_path: Path
) -> None:
    """POST /api/v1/3d/builds: registrar only, sources confined to <data dir>/3d-sources, a job
    with progress, the dataset published at the end, and the build in the audit trail."""
    import time

    import psycopg

    from cadastre.access.accounts import create_account
    from cadastre.access.privacy import Role
    from tests.conftest import client_for

    url = make_db("threed_api")
    data_dir = app_data_dir(test_settings, tmp_path / "data")
    synthetic_production(data_dir / "3d-sources" / "prod")
    with psycopg.connect(url) as conn:
        create_account(conn, "reg.3d", "correct horse battery", Role.REGISTRAR)
        create_account(conn, "sur.3d", "correct horse battery", Role.SURVEYOR)
    with client_for(url, Settings(storage={"data_dir": data_dir})) as c:
        body = {"source": "prod", "name": "api-built"}
        assert c.post("/api/v1/3d/builds", json=body).status_code == 401

        def login(user: str) -> dict[str, str]:
            r = c.post("/api/v1/auth/login",
                       json={"username": user, "password": "correct horse battery"})
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        reg = login("reg.3d")
        assert c.post("/api/v1/3d/builds", json=body, headers=login("sur.3d")).status_code == 403
        for bad in ("../secrets.json", "/etc", "nope", "."):
            r = c.post("/api/v1/3d/builds", json={**body, "source": bad}, headers=reg)
            assert r.status_code == 400 and r.json()["error"]["code"] == "SOURCE_NOT_FOUND", bad
        r = c.post("/api/v1/3d/builds", json=body, headers=reg)
        assert r.status_code == 202
        job_url = r.json()["links"]["job"]
        seen = []
        for _ in range(600):
            state = c.get(job_url, headers=reg).json()
            seen.append(state["progress"])
            if state["status"] in ("done", "failed"):
                break
            time.sleep(0.2)
        assert state["status"] == "done", state
        assert seen == sorted(seen)
        ts = c.get("/3dtiles/api-built/tileset.json")
        assert ts.status_code == 200 and ts.json()["asset"]["version"] == "1.1"
    with psycopg.connect(url) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit.log ORDER BY seq")]
    assert "3d.build" in actions
