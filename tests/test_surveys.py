"""The survey lifecycle through the HTTP API: submit → progress → report → diff → accept →
new versions and tiles → as-of shows the old state; duplicates, rejection, roles, bad input,
and a server killed in the middle of an accept."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from cadastre.access.privacy import Role
from cadastre.query.records import parcel_as_of, parcel_lineage
from cadastre.settings import Settings
from tests.conftest import app_data_dir, client_for
from tests.register_support import fingerprint
from tests.support import serve_process


@pytest.fixture(scope="module")
def survey_env(small_district, test_settings: Settings,
               tmp_path_factory: pytest.TempPathFactory):
    """A small demo district, a registrar and a surveyor, and the app on it."""
    url = small_district("surveys", [("reg.one", "registrar password", Role.REGISTRAR),
                                     ("survey.one", "surveyor password", Role.SURVEYOR)])
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("survey_app"))
    settings = Settings(storage={"data_dir": data_dir})
    with client_for(url, settings) as client:
        tokens = {}
        for user, pw in (("reg.one", "registrar password"), ("survey.one", "surveyor password")):
            r = client.post("/api/v1/auth/login", json={"username": user, "password": pw})
            tokens[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        yield {"url": url, "client": client, "reg": tokens["reg.one"],
               "surveyor": tokens["survey.one"], "data_dir": data_dir}


def _lot_pair(url: str) -> tuple[str, str, dict, dict]:
    """Two neighbouring small lots: (code A, code B, geometry A, geometry B) as GeoJSON."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            SELECT parcel_code, ST_AsGeoJSON(ST_GeometryN(geom, 1), 3)
            FROM cad.parcel WHERE valid_to IS NULL AND land_use IN ('0501', '0701')
              AND compound_name IS NULL AND ST_NPoints(geom) = 5
            ORDER BY parcel_code LIMIT 40""").fetchall()
    return rows[10][0], rows[11][0], json.loads(rows[10][1]), json.loads(rows[11][1])


def _survey_geojson(url: str, tmp_path: Path) -> tuple[Path, str, str]:
    """A survey splitting parcel A in two (new children, codes assigned by the registry) and
    moving one vertex of parcel B by 0.3 m (a boundary correction)."""
    a, b, ga, gb = _lot_pair(url)
    ring = ga["coordinates"][0]
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    xm = round((x0 + x1) / 2, 3)
    west = [[x0, y0], [x0, y1], [xm, y1], [xm, y0], [x0, y0]]
    east = [[xm, y0], [xm, y1], [x1, y1], [x1, y0], [xm, y0]]
    rb = gb["coordinates"][0]
    rb = [list(p) for p in rb]
    k = max(range(len(rb) - 1), key=lambda i: (rb[i][0] + rb[i][1]))  # one corner
    rb[k] = [rb[k][0], round(rb[k][1] - 0.3, 3)]
    if k == 0:
        rb[-1] = rb[0]
    feats = [
        {"type": "Feature",
         "properties": {"kind": "parcel", "land_use": "0501", "seat": "测试路1号"},
         "geometry": {"type": "Polygon", "coordinates": [west]}},
        {"type": "Feature",
         "properties": {"kind": "parcel", "land_use": "0501", "seat": "测试路3号"},
         "geometry": {"type": "Polygon", "coordinates": [east]}},
        {"type": "Feature", "properties": {"kind": "parcel", "ZDDM": b},
         "geometry": {"type": "Polygon", "coordinates": [rb]}},
    ]
    path = tmp_path / "split_survey.geojson"
    path.write_text(json.dumps({
        "type": "FeatureCollection", "name": "ZDJBXX",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4528"}},
        "features": feats}, ensure_ascii=False))
    return path, a, b


def _submit(client, headers, path: Path, srid: int | None = None):
    data = {"srid": str(srid)} if srid else {}
    with path.open("rb") as fh:
        return client.post("/api/v1/surveys", headers=headers, data=data,
                           files={"file": (path.name, fh, "application/octet-stream")})


def _wait(client, headers, sid: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = client.get(f"/api/v1/surveys/{sid}", headers=headers).json()
        if st["status"] not in ("received", "validating"):
            return st
        assert 0 <= st["job"]["progress"] <= 1
        time.sleep(0.2)
    raise AssertionError("validation did not finish")


def test_full_lifecycle(survey_env, tmp_path: Path) -> None:
    env = survey_env
    client, url = env["client"], env["url"]
    path, a, b = _survey_geojson(url, tmp_path)
    before_accept = fingerprint(url)
    r = _submit(client, env["surveyor"], path)
    assert r.status_code == 202, r.text
    sid = r.json()["submission_id"]
    st = _wait(client, env["surveyor"], sid)
    report = client.get(f"/api/v1/surveys/{sid}/report", headers=env["surveyor"]).json()
    assert st["status"] == "validated", report
    assert report["counts"]["parcel"] == 3 and not report["errors"]
    layer = client.get(f"/api/v1/surveys/{sid}/report.geojson", headers=env["surveyor"])
    assert layer.headers["content-type"].startswith("application/geo+json")
    diff = client.get(f"/api/v1/surveys/{sid}/diff", headers=env["reg"]).json()
    assert diff["parcels"]["new"] == 2 and diff["parcels"]["changed"] == 1
    assert diff["parcels"]["retired"] == 1
    assert {(x["parent"], x["event"]) for x in diff["lineage"]} == {(a, "split")}
    dgeo = client.get(f"/api/v1/surveys/{sid}/diff.geojson", headers=env["reg"]).json()
    states = sorted((f["properties"]["change"], f["properties"]["state"])
                    for f in dgeo["features"])
    assert ("retired", "before") in states and ("new", "after") in states
    assert fingerprint(url) == before_accept  # validation wrote nothing to the registry
    # a surveyor may not accept; the registrar does
    assert client.post(f"/api/v1/surveys/{sid}/accept", headers=env["surveyor"]
                       ).status_code == 403
    tile = _cache_tile(client, url, a)
    r = client.post(f"/api/v1/surveys/{sid}/accept", headers=env["reg"],
                    json={"reason": "外业核查无误"})
    assert r.status_code == 200, r.text
    with psycopg.connect(url) as conn:
        accepted_at = conn.execute("SELECT decided_at FROM cad.survey_submission WHERE "
                                   "submission_id = %s", (sid,)).fetchone()[0]
        old = parcel_as_of(conn, a, accepted_at - timedelta(seconds=1))
        assert conn.execute("SELECT count(*) FROM cad.parcel WHERE parcel_code = %s AND "
                            "valid_to IS NULL", (a,)).fetchone()[0] == 0   # retired
        kids = parcel_lineage(conn, old.feature_id)["children"]
        assert len(kids) == 2
        codes = [r[0] for r in conn.execute(
            "SELECT parcel_code FROM cad.parcel WHERE feature_id = ANY(%s) AND valid_to IS NULL",
            (kids,))]
        assert all(c[:14] == a[:14] and c > a for c in codes)   # next sequences, never reused
        versions = conn.execute("SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) "
                                "FROM cad.parcel WHERE parcel_code = %s", (b,)).fetchone()
        assert versions == (2, 1)
        pts = conn.execute("SELECT count(*) FROM cad.boundary_point WHERE parcel_code = ANY(%s)"
                           " AND valid_to IS NULL", (codes,)).fetchone()[0]
        assert pts == 8
    _wait_tile_gone(tile)
    assert client.get(f"/api/v1/surveys/{sid}", headers=env["reg"]).json()["status"] == \
        "accepted"
    # the same file again: detected (the first submission is accepted)
    again = _submit(client, env["surveyor"], path)
    assert again.status_code == 400 and again.json()["error"]["code"] == "DUPLICATE_SUBMISSION"


def _cache_tile(client, url: str, code: str) -> Path:
    import mercantile

    with psycopg.connect(url) as conn:
        lon, lat = conn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid("
                                "geom_3857), 4326) c FROM cad.parcel WHERE parcel_code = %s "
                                "AND valid_to IS NULL) s", (code,)).fetchone()
    t = mercantile.tile(lon, lat, 18)
    assert client.get(f"/tiles/parcels/{t.z}/{t.x}/{t.y}.mvt").status_code == 200
    path = (client.app.state.cadastre.tile_cache.root / "public" / "parcels" / str(t.z) / str(t.x)
            / f"{t.y}.mvt.gz")
    assert path.exists()
    return path


def _wait_tile_gone(path: Path) -> None:
    deadline = time.monotonic() + 15
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not path.exists(), "the accepted survey did not invalidate its tile"


def test_reject_needs_reason_and_roles(survey_env, tmp_path: Path) -> None:
    env = survey_env
    client = env["client"]
    path, _, _ = _survey_geojson(env["url"], tmp_path)
    path.write_text(path.read_text().replace("测试路1号", "测试路9号"))  # different bytes
    assert _submit(client, {}, path).status_code == 401
    sid = _submit(client, env["surveyor"], path).json()["submission_id"]
    _wait(client, env["surveyor"], sid)
    r = client.post(f"/api/v1/surveys/{sid}/reject", headers=env["reg"], json={"reason": " "})
    assert r.status_code == 400 and r.json()["error"]["code"] == "REASON_REQUIRED"
    r = client.post(f"/api/v1/surveys/{sid}/reject", headers=env["reg"],
                    json={"reason": "界址点与实地不符"})
    assert r.status_code == 200
    r = client.post(f"/api/v1/surveys/{sid}/accept", headers=env["reg"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "SUBMISSION_STATE"
    assert client.get("/api/v1/surveys/not-a-uuid", headers=env["reg"]).status_code == 404


def test_overlapping_survey_is_reported_and_cannot_be_accepted(survey_env,
                                                               tmp_path: Path) -> None:
    env = survey_env
    client, url = env["client"], env["url"]
    a, b, ga, gb = _lot_pair(url)
    ring = [[x + 2.0, y] for x, y in ga["coordinates"][0]]   # pushed 2 m into its neighbour
    path = tmp_path / "overlap.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"kind": "parcel", "parcel_code": a},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    sid = _submit(client, env["surveyor"], path, srid=4528).json()["submission_id"]
    st = _wait(client, env["surveyor"], sid)
    report = client.get(f"/api/v1/surveys/{sid}/report", headers=env["reg"]).json()
    assert st["status"] == "invalid"
    overlap = [e for e in report["errors"] if e["code"] == "OVERLAP"]
    assert overlap and overlap[0]["measure"] > 10
    assert any(code.startswith(a[:12]) for code in overlap[0]["subject"])   # a registry neighbour
    assert overlap[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    r = client.post(f"/api/v1/surveys/{sid}/accept", headers=env["reg"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "SUBMISSION_STATE"


def test_staging_writes_every_feature_exactly(survey_env) -> None:
    """The binary COPY stages geometries, properties and kinds unchanged; a ref that occurs
    twice is made unique with its feature index."""
    import shapely

    from cadastre.ingest import read_survey
    from cadastre.jobs import create_job
    from cadastre.survey.submission import _stage

    data = read_survey(Path(__file__).parent / "data" / "good" / "survey.gpkg", srid=4528)
    data.features[2].ref = data.features[0].ref
    url = survey_env["url"]
    with psycopg.connect(url) as conn:
        job = create_job(conn, "test", "test")
        sid = conn.execute(
            "INSERT INTO cad.survey_submission (submission_id, filename, content_sha256, "
            "size_bytes, stored_path, srid, status, job_id, submitted_by) VALUES "
            "(gen_random_uuid(), 'stage.gpkg', md5(random()::text), 1, 'x', 4528, 'rejected', "
            "%s, 'test') RETURNING submission_id", (job,)).fetchone()[0]
        conn.commit()
        try:
            _stage(conn, sid, data)
            rows = conn.execute(
                "SELECT idx, kind, ref, props, srid, ST_AsBinary(geom), "
                "ST_Equals(ST_Transform(geom, 3857), geom_3857) FROM cad.survey_feature "
                "WHERE submission_id = %s ORDER BY idx", (sid,)).fetchall()
        finally:
            conn.execute("DELETE FROM cad.survey_submission WHERE submission_id = %s", (sid,))
            conn.commit()
    assert [r[0] for r in rows] == list(range(len(data.features)))
    first = data.features[0].ref
    assert [r[2] for r in rows[:3]] == [f"{first} #0", data.features[1].ref, f"{first} #2"]
    for (_, kind, _, props, srid, wkb, same), f in zip(rows, data.features, strict=True):
        assert kind == f.kind and srid == 4528 and same
        assert props == json.loads(json.dumps({k: v for k, v in f.properties.items()
                                               if k != "raw"}, default=str))
        assert shapely.from_wkb(bytes(wkb)).equals_exact(f.geometry, 0)


BAD = Path(__file__).parent / "data" / "bad"


@pytest.mark.skipif(not (BAD / "EXPECTED.json").exists(), reason="bad corpus not generated")
def test_bad_input_corpus_writes_nothing(survey_env) -> None:
    env = survey_env
    client, url = env["client"], env["url"]
    expected = json.loads((BAD / "EXPECTED.json").read_text())
    before = fingerprint(url)
    seen = 0
    for name, exp in expected.items():
        code = exp.get("error") or exp.get("issue")
        if set(exp.get("kwargs") or {}) - {"srid"}:
            continue   # reader options (size limits …) that the API sets differently
        r = _submit(client, env["surveyor"], BAD / name,
                    srid=(exp.get("kwargs") or {}).get("srid"))
        if r.status_code == 400:
            body = r.json()["error"]
            assert body["code"] in (code, "DUPLICATE_SUBMISSION", "FILE_EMPTY"), (name, body)
        else:
            assert r.status_code == 202, (name, r.text)
            st = _wait(client, env["surveyor"], r.json()["submission_id"])
            report = client.get(f"/api/v1/surveys/{r.json()['submission_id']}/report",
                                headers=env["surveyor"]).json()
            codes = {e["code"] for e in report["errors"] + report["warnings"]}
            assert code in codes, (name, st["status"], codes)
            if "error" in exp:
                assert st["status"] == "invalid", (name, st["status"])
        seen += 1
        assert client.get("/health").status_code == 200
    assert seen >= 38
    assert fingerprint(url) == before


def test_killing_the_server_during_accept_changes_nothing(survey_env, tmp_path: Path) -> None:
    env = survey_env
    url = env["url"]
    path, _, _ = _survey_geojson(url, tmp_path)
    path.write_text(path.read_text().replace("测试路3号", "测试路5号"))
    proc, base = serve_process(url, env["data_dir"])
    try:
        with path.open("rb") as fh:
            r = httpx.post(base + "/api/v1/surveys", headers=env["surveyor"],
                           files={"file": (path.name, fh)}, timeout=30)
        sid = r.json()["submission_id"]
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/api/v1/surveys/{sid}", headers=env["reg"]).json()[
                "status"] != "validated":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        before = fingerprint(url)
        blocker = psycopg.connect(url)
        blocker.execute("SELECT 1 FROM cad.survey_submission WHERE submission_id = %s "
                        "FOR UPDATE", (sid,))   # accept's last statement will wait on this
        threading.Thread(target=lambda: _swallow(lambda: httpx.post(
            f"{base}/api/v1/surveys/{sid}/accept", headers=env["reg"], timeout=60)),
            daemon=True).start()
        with psycopg.connect(url, autocommit=True) as watch:
            deadline = time.monotonic() + 30
            while not (blocked := watch.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()").fetchone()):
                assert time.monotonic() < deadline, "accept never reached its last statement"
                time.sleep(0.1)
            written = watch.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                    "c.oid = l.relation WHERE c.relname = 'parcel' AND "
                                    "l.mode = 'RowExclusiveLock' AND l.pid = %s",
                                    (blocked[0],)).fetchone()[0]
            assert written >= 1   # the accept had written its new versions, uncommitted
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            blocker.rollback()
            blocker.close()
            # the orphaned backend finishes its statement, finds its client gone, rolls back
            deadline = time.monotonic() + 30
            while watch.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                (blocked[0],)).fetchone()[0]:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert fingerprint(url) == before
        with psycopg.connect(url) as conn:
            status = conn.execute("SELECT status FROM cad.survey_submission WHERE "
                                  "submission_id = %s", (sid,)).fetchone()[0]
        assert status == "validated"
    finally:
        if proc.poll() is None:
            proc.kill()


def _swallow(fn) -> None:  # noqa: ANN001
    try:
        fn()
    except httpx.HTTPError:
        pass


def test_submitted_floor_plan_with_overlapping_units(survey_env, tmp_path: Path) -> None:
    """A floor plan whose flat 102 is drawn 2 m into flat 101: the submission's report has the
    overlap (the units are staged, then checked as the submission's own temp tables)."""
    env = survey_env
    plan = json.loads((Path(__file__).parent / "data" / "good" / "floorplan.geojson").read_text())
    moved = next(f for f in plan["features"] if f["properties"]["room_no"] == "102")
    moved["geometry"]["coordinates"] = [[[x - 2.0, y] for x, y in ring]
                                        for ring in moved["geometry"]["coordinates"]]
    path = tmp_path / "plan_overlap.geojson"
    path.write_text(json.dumps(plan, ensure_ascii=False))
    r = _submit(env["client"], env["surveyor"], path)
    assert r.status_code == 202, r.text
    sid = r.json()["submission_id"]
    st = _wait(env["client"], env["surveyor"], sid)
    report = env["client"].get(f"/api/v1/surveys/{sid}/report", headers=env["surveyor"]).json()
    overlaps = [e for e in report["errors"] if e["code"] == "UNIT_OVERLAP"]
    assert st["status"] == "invalid" and len(overlaps) == 1, report["errors"]
    assert overlaps[0]["measure"] == pytest.approx(20.0, abs=0.01)
    assert len(overlaps[0]["subject"]) == 2
