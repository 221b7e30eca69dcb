"""Registrar QA: every kind of planted defect is found where it is, clean data gives nothing."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from cadastre.qa.engine import check, draw_sample, needs_scope_tables, run_qa, run_rule, set_status
from cadastre.qa.report import findings_rows
from cadastre.qa.rules import RULES
from cadastre.qa.scope import Scope
from cadastre.settings import Settings

QA = Settings().qa


# process rules: the demo's year of cases has a few late ones on purpose, and its 上报 messages
# stay pending (no sender runs) until they age past the limit; their planted defects are found in
# tests/test_registration_quality.py
PROCESS = ("time_limit", "reporting")


def test_whole_register_rules_read_no_scope_tables(demo_conn: psycopg.Connection) -> None:
    """Over the whole register the record and unit rules' scope filter is written out as true:
    they need no temp tables, so a second QA connection runs them without building its own
    copy of the scope; over a bbox the filter (and the need) stays."""
    district, box = Scope("district"), Scope("bbox", bbox_3857=(0.0, 0.0, 1.0, 1.0))
    lazy = {r.id for r in RULES if not needs_scope_tables(r, district)}
    assert {"UNIT_OVERLAP", "UNIT_WITHOUT_RECORD", "RECORD_ORPHAN", "REG_TERM_ORDER",
            "REG_TWO_OWNERSHIPS", "REG_CERT_DUPLICATE"} <= lazy
    assert lazy.isdisjoint({"OVERLAP", "GAP_SLIVER", "UNIT_CODE_PARCEL_MISMATCH",
                            "BOUNDARY_POINT_MISMATCH", "GEOM_SPIKE"})
    assert all(needs_scope_tables(r, box) for r in RULES if "whole_register" in r.sql)
    # and they run on a session that has none of the scope's tables
    assert demo_conn.execute("SELECT to_regclass('pg_temp.subject')").fetchone() == (None,)
    for rule in RULES:
        if rule.id in lazy:
            run_rule(demo_conn, rule, district, QA)


def test_demo_has_exactly_its_planted_defects(demo_conn: psycopg.Connection) -> None:
    findings = check(demo_conn, Scope("district"), QA)
    problems = [f for f in findings if f.severity != "info" and f.category not in PROCESS]
    assert any(f.rule_id == "REG_CASE_OVERDUE" for f in findings)   # the late demo cases
    planted = {k: sorted(c) for k, c, in demo_conn.execute(
        "SELECT kind, parcel_codes FROM cad.demo_defect")}
    by_rule = {}
    for f in problems:
        by_rule.setdefault(f.rule_id, []).append(f)
    assert set(by_rule) == {"OVERLAP", "GAP_SLIVER", "AREA_MISMATCH"}, \
        {k: [x.subject for x in v][:3] for k, v in by_rule.items()}
    (overlap,) = by_rule["OVERLAP"]
    assert sorted(overlap.subject) == planted["overlap"]
    assert overlap.measure == pytest.approx(56, 0.01)
    (gap,) = by_rule["GAP_SLIVER"]
    assert set(planted["sliver_gap"]) <= set(gap.subject)
    assert gap.measure == pytest.approx(10.5, abs=0.1)
    (area,) = by_rule["AREA_MISMATCH"]
    assert list(area.subject) == planted["area_discrepancy"]


@pytest.fixture()
def small(small_district) -> str:
    return small_district("qa")


def _lots(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT parcel_code FROM cad.parcel WHERE valid_to IS NULL AND compound_name IS NULL "
        "AND land_use IN ('0501', '0701') ORDER BY parcel_code")]


def test_each_planted_defect_is_found(small: str) -> None:
    with psycopg.connect(small, autocommit=True) as conn:
        conn.execute("SET cadastre.bulk_load = 'on'")
        assert [f for f in check(conn, Scope("district"), QA) if f.severity != "info"] == []
        lots = _lots(conn)
        bowtie, spike, dup = lots[20], lots[22], lots[24]
        x0, y0 = conn.execute("SELECT ST_XMin(geom), ST_YMin(geom) FROM cad.parcel WHERE "
                              "parcel_code = %s AND valid_to IS NULL", (bowtie,)).fetchone()
        conn.execute("UPDATE cad.parcel SET geom = ST_Multi(ST_GeomFromText(format("
                     "'POLYGON((%%1$s %%2$s, %%3$s %%4$s, %%3$s %%2$s, %%1$s %%4$s, %%1$s %%2$s))',"
                     " %s::float8, %s::float8, %s::float8 + 10, %s::float8 + 10), 4528)) "
                     "WHERE parcel_code = %s AND valid_to IS NULL", (x0, y0, x0, y0, bowtie))
        # a spike: a vertex 5 m out and straight back next to where it left
        conn.execute("""
            UPDATE cad.parcel p SET geom = ST_Multi(ST_MakePolygon(ST_AddPoint(ST_AddPoint(r.ring,
                ST_Translate(ST_PointN(r.ring, 1), 0.02, 5.0), 1),
                ST_Translate(ST_PointN(r.ring, 1), 0.01, 0.0), 2)))
            FROM (SELECT version_id, ST_ExteriorRing(ST_GeometryN(geom, 1)) AS ring
                  FROM cad.parcel WHERE parcel_code = %s AND valid_to IS NULL) r
            WHERE p.version_id = r.version_id""", (spike,))
        conn.execute("""
            UPDATE cad.parcel p SET geom = ST_Multi(ST_MakePolygon(ST_AddPoint(r.ring,
                ST_Translate(ST_PointN(r.ring, 2), 0.0002, 0), 2)))
            FROM (SELECT version_id, ST_ExteriorRing(ST_GeometryN(geom, 1)) AS ring
                  FROM cad.parcel WHERE parcel_code = %s AND valid_to IS NULL) r
            WHERE p.version_id = r.version_id""", (dup,))
        # a building pushed 3 m out of its parcel; a unit 1 m out of its building
        bcode = conn.execute("SELECT building_code FROM cad.building WHERE parcel_code = %s",
                             (lots[30],)).fetchone()[0]
        conn.execute("UPDATE cad.building SET geom = ST_Translate(geom, 0, -8) WHERE "
                     "building_code = %s", (bcode,))
        tower = conn.execute("SELECT building_code FROM cad.building WHERE floors_above > 8 "
                             "ORDER BY building_code LIMIT 1").fetchone()[0]
        u1, u2 = [r[0] for r in conn.execute(
            "SELECT unit_code FROM cad.unit WHERE building_code = %s AND floor_no = 3 "
            "ORDER BY unit_code LIMIT 2", (tower,))]
        conn.execute("UPDATE cad.unit SET geom = ST_Translate(geom, 0, 1) WHERE unit_code = %s",
                     (u1,))
        # two units overlapping on floor 5
        v1, v2 = [r[0] for r in conn.execute(
            "SELECT unit_code FROM cad.unit WHERE building_code = %s AND floor_no = 5 "
            "ORDER BY unit_code LIMIT 2", (tower,))]
        conn.execute("UPDATE cad.unit SET geom = (SELECT ST_Multi(ST_Buffer(geom, 0.5, "
                     "'join=mitre')) FROM cad.unit WHERE unit_code = %s) WHERE unit_code = %s",
                     (v1, v1))
        # a duplex: a floor-6 unit said to span floors 6-7 overlaps the flat stacked above it
        d1, twin = conn.execute(
            "SELECT a.unit_code, b.unit_code FROM cad.unit a JOIN cad.unit b "
            "ON b.building_code = a.building_code AND b.floor_no = 7 AND ST_Equals(a.geom, b.geom) "
            "WHERE a.building_code = %s AND a.floor_no = 6 AND a.valid_to IS NULL "
            "AND b.valid_to IS NULL ORDER BY a.unit_code LIMIT 1", (tower,)).fetchone()
        conn.execute("UPDATE cad.unit SET floor_count = 2 WHERE unit_code = %s", (d1,))
        # two flats stacked on floors 8 and 9 (one outline) drawn inside another parcel than
        # the one their codes name: each is reported
        stray, above = conn.execute(
            "SELECT a.unit_code, b.unit_code FROM cad.unit a JOIN cad.unit b "
            "ON b.building_code = a.building_code AND b.floor_no = 9 AND ST_Equals(a.geom, b.geom) "
            "WHERE a.building_code = %s AND a.floor_no = 8 AND a.valid_to IS NULL "
            "AND b.valid_to IS NULL ORDER BY a.unit_code LIMIT 1", (tower,)).fetchone()
        conn.execute("""
            UPDATE cad.unit u SET geom = ST_Translate(u.geom,
                ST_X(ST_PointOnSurface(p.geom)) - ST_X(ST_PointOnSurface(u.geom)),
                ST_Y(ST_PointOnSurface(p.geom)) - ST_Y(ST_PointOnSurface(u.geom)))
            FROM cad.parcel p WHERE p.parcel_code = %s AND p.valid_to IS NULL
              AND u.unit_code IN (%s, %s)""", (lots[43], stray, above))
        # a boundary point 2 cm off its neighbour's; a numbering gap
        pa, pb = conn.execute("""
            SELECT a.version_id, b.parcel_code FROM cad.boundary_point a JOIN cad.boundary_point b
              ON a.parcel_code < b.parcel_code AND ST_Equals(a.geom, b.geom)
            WHERE a.valid_to IS NULL AND b.valid_to IS NULL ORDER BY a.version_id LIMIT 1
        """).fetchone()
        conn.execute("UPDATE cad.boundary_point SET geom = ST_Translate(geom, 0.02, 0) "
                     "WHERE version_id = %s", (pa,))
        conn.execute("UPDATE cad.boundary_point SET point_no = 'J9' WHERE parcel_code = %s "
                     "AND seq = 3 AND valid_to IS NULL", (lots[40],))
        # an orphan record, and a building area that no longer matches its floors
        conn.execute("INSERT INTO cad.change_set (kind, actor) VALUES ('edit', 'qa test')")
        # (not orphans: a record no longer in force, status 2, ended; and one not yet entered
        # in the register, status 0)
        for code, status, valid_to in ((lots[41] + "F00099999", 1, "NULL"),
                                       (lots[42] + "F00099998", 2, "now()"),
                                       (lots[42] + "F00099997", 0, "NULL")):
            conn.execute(f"""INSERT INTO cad.right_record (right_id, kind, unit_code,
                                business_no, registration_type, right_type, status,
                                registered_at, valid_from, valid_to, change_id, county_code)
                            VALUES (%s, 'ownership', %s, 'TEST-1', 200, 4, %s, now(),
                                    now() - interval '1 day', {valid_to},
                                    (SELECT max(id) FROM cad.change_set), %s)""",
                         (uuid.uuid4(), code, status, code[:6]))
        conn.execute("UPDATE cad.building SET floor_area = floor_area * 1.3 WHERE "
                     "building_code = %s", (tower,))
        settings = "SELECT current_setting('jit'), current_setting('work_mem')"
        before = conn.execute(settings).fetchone()
        findings = [f for f in check(conn, Scope("district"), QA) if f.severity != "info"]
        # two or three connections (the slow rules split in parts) find exactly the same
        both = check(conn, Scope("district"), QA, workers=2)
        assert _keys(both) == _keys(check(conn, Scope("district"), QA, workers=1))
        assert _keys(both) == _keys(check(conn, Scope("district"), QA, workers=3))
        # the units with no registration record at all (info), exactly
        never = {r[0] for r in conn.execute(
            "SELECT u.unit_code::text FROM cad.unit_current u WHERE NOT EXISTS (SELECT 1 "
            "FROM cad.right_record r WHERE r.unit_code = u.unit_code)")}
        assert never and {f.subject for f in both if f.rule_id == "UNIT_WITHOUT_RECORD"} == {
            (code,) for code in never}
        assert _keys(f for f in both if f.severity != "info") == _keys(findings)
        # the run's temp tables are gone and the session's settings are back
        assert conn.execute("SELECT to_regclass('pg_temp.subject')").fetchone() == (None,)
        assert conn.execute(settings).fetchone() == before
    got = {(f.rule_id, tuple(sorted(f.subject))) for f in findings}
    rules = {r for r, _ in got}
    assert {"GEOM_INVALID", "GEOM_SPIKE", "GEOM_DUPLICATE_VERTEX", "BUILDING_OUTSIDE_PARCEL",
            "UNIT_OUTSIDE_BUILDING", "UNIT_OVERLAP", "BOUNDARY_POINT_MISMATCH",
            "BOUNDARY_POINT_NUMBERING", "RECORD_ORPHAN", "FLOOR_AREA_SUM"} <= rules, rules
    assert ("GEOM_INVALID", (bowtie,)) in got
    assert ("GEOM_SPIKE", (spike,)) in got
    assert ("GEOM_DUPLICATE_VERTEX", (dup,)) in got
    assert ("UNIT_OUTSIDE_BUILDING", tuple(sorted((u1, tower)))) in got
    assert any(r == "UNIT_OVERLAP" and v1 in s for r, s in got)
    duplex = [f for f in findings if f.rule_id == "UNIT_OVERLAP" and d1 in f.subject]
    assert [tuple(sorted(f.subject)) for f in duplex] == [tuple(sorted((d1, twin)))], duplex
    assert "7" in duplex[0].message and duplex[0].measure > 10
    assert sorted(s for r, s in got if r == "UNIT_CODE_PARCEL_MISMATCH") == sorted(
        tuple(sorted((unit, lots[43]))) for unit in (stray, above))
    assert ("BOUNDARY_POINT_NUMBERING", (lots[40],)) in got
    assert [s for r, s in got if r == "RECORD_ORPHAN"] == [(lots[41] + "F00099999",)]
    assert ("FLOOR_AREA_SUM", (tower,)) in got
    mismatch = [f for f in findings if f.rule_id == "BOUNDARY_POINT_MISMATCH"]
    assert pb in mismatch[0].subject and mismatch[0].measure == pytest.approx(0.02, abs=1e-4)
    outside = next(f for f in findings if f.rule_id == "BUILDING_OUTSIDE_PARCEL")
    assert outside.measure > 10 and outside.geom_wkb is not None
    _ = u2


def test_duplicate_unit_codes_in_a_submission(small: str) -> None:
    """The register's unique index keeps its current unit codes apart; a survey's units are
    checked before they reach it: each code used twice is one finding, with both units."""
    sid = uuid.uuid4()
    with psycopg.connect(small) as conn:
        lot, srid = conn.execute("SELECT parcel_code, srid FROM cad.parcel WHERE valid_to IS NULL "
                                 "ORDER BY parcel_code LIMIT 1").fetchone()
        conn.execute("""INSERT INTO cad.survey_submission (submission_id, filename,
                            content_sha256, size_bytes, stored_path, status, submitted_by)
                        VALUES (%s, 'dup.geojson', repeat('d', 64), 1, '/dev/null',
                                'validating', 'qa test')""", (sid,))
        units = [("u1", "F00010001"), ("u2", "F00010001"), ("u3", "F00010002"),
                 ("u4", "F00010003"), ("u5", "F00010003"), ("u6", "F00010003")]
        for idx, (ref, tail) in enumerate(units):
            conn.execute("""INSERT INTO cad.survey_feature (submission_id, idx, kind, ref, props,
                                srid, geom)
                            VALUES (%s, %s, 'unit', %s, %s::jsonb, %s,
                                    (SELECT ST_Buffer(ST_PointOnSurface(geom), 3, 1)
                                     FROM cad.parcel WHERE parcel_code = %s
                                       AND valid_to IS NULL))""",
                         (sid, idx, ref, f'{{"unit_code": "{lot}{tail}", "floor_no": 1}}', srid,
                          lot))
        found = check(conn, Scope("submission", submission=sid), QA,
                      only=["UNIT_CODE_DUPLICATE"])
        assert sorted((f.subject, f.measure) for f in found) == [
            (("u1", "u2"), 2.0), (("u4", "u5", "u6"), 3.0)]
        assert all(f.geom_wkb for f in found)
        conn.rollback()


def _keys(findings) -> list[tuple]:  # noqa: ANN001
    return sorted((f.rule_id, f.subject, f.measure, f.message, f.geom_wkb) for f in findings)


def test_runs_are_stored_marked_and_sampled(small: str) -> None:
    with psycopg.connect(small) as conn:
        run_id = run_qa(conn, Scope("district"), QA, "test registrar")
        rows = findings_rows(conn, run_id)
        assert rows and all(r["status"] == "open" for r in rows)
        set_status(conn, uuid.UUID(rows[0]["id"]), "accepted", "历史遗留，已核实", "test")
        with pytest.raises(Exception) as exc:
            set_status(conn, uuid.UUID(rows[1]["id"]), "accepted", "", "test")
        assert getattr(exc.value, "code", "") == "QA_REASON_REQUIRED"
        conn.rollback()
        sample_id, picked = draw_sample(conn, 0.05, "2000-01-01", "test", seed=1)
        total = conn.execute("SELECT count(*) FROM cad.right_record WHERE status IN (1, 2) "
                             "AND registered_at >= '2000-01-01'").fetchone()[0]
        assert len(picked) == round(total * 0.05) and len(set(picked)) == len(picked)
        conn.commit()


def test_qa_api_registrar_only(demo_client, registrar_token: str) -> None:
    auth = {"Authorization": f"Bearer {registrar_token}"}
    assert demo_client.get("/api/v1/qa/rules").status_code == 401
    rules = demo_client.get("/api/v1/qa/rules", headers=auth).json()
    assert {r["category"] for r in rules} >= {"principle", "content", "reporting"}
    r = demo_client.post("/api/v1/qa/runs", headers=auth,
                         json={"rules": ["OVERLAP", "AREA_MISMATCH", "GAP_SLIVER"]})
    assert r.status_code == 202
    job_url = r.json()["links"]["job"].split("testserver", 1)[-1]
    deadline = time.monotonic() + 60
    while (st := demo_client.get(job_url, headers=auth).json())["status"] != "done":
        assert st["status"] != "failed", st
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run = st["run_id"]
    found = demo_client.get(f"/api/v1/qa/runs/{run}/findings", headers=auth).json()
    assert {f["rule"] for f in found} == {"OVERLAP", "AREA_MISMATCH", "GAP_SLIVER"}
    geo = demo_client.get(f"/api/v1/qa/runs/{run}/findings.geojson", headers=auth).json()
    assert len(geo["features"]) == 3
    csv_text = demo_client.get(f"/api/v1/qa/runs/{run}/findings.csv", headers=auth).text
    assert "OVERLAP" in csv_text
    import mapbox_vector_tile
    import mercantile

    lon, lat = geo["features"][0]["geometry"]["coordinates"][0][0] if geo["features"][0][
        "geometry"]["type"] == "Polygon" else geo["features"][0]["geometry"]["coordinates"]
    t = mercantile.tile(lon, lat, 17)
    tile = demo_client.get(f"/api/v1/qa/runs/{run}/tiles/{t.z}/{t.x}/{t.y}.mvt", headers=auth)
    assert tile.status_code == 200
    assert "qa_findings" in mapbox_vector_tile.decode(tile.content)
