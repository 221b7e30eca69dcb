"""The demo district: counts, validity, planted defects, encrypted parties, history, as-of."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import psycopg
import pytest

from cadastre.access.idnumber import validate_id_number
from cadastre.access.pii import load_cipher
from cadastre.codes import UnitCode, validate_parcel_code, validate_unit_code
from cadastre.demo.load import load_demo
from cadastre.query.records import owners_as_of, parcel_as_of, parcel_lineage, rights_as_of
from cadastre.settings import Settings


def _one(conn: psycopg.Connection, sql: str, *args: object) -> object:
    return conn.execute(sql, args or None).fetchone()[0]  # type: ignore[index]


def test_counts_meet_the_brief(demo_conn: psycopg.Connection) -> None:
    c = demo_conn
    assert _one(c, "SELECT count(*) FROM cad.parcel WHERE valid_to IS NULL") >= 2000
    assert _one(c, "SELECT count(*) FROM cad.building") >= 300
    assert _one(c, "SELECT count(*) FROM cad.unit") >= 20000
    assert _one(c, "SELECT min(floors_above) FROM cad.building") == 1
    assert _one(c, "SELECT max(floors_above) FROM cad.building") == 33
    kinds = dict(c.execute("SELECT kind, count(*) FROM cad.right_record GROUP BY kind"))
    for kind in ("ownership", "land_use", "mortgage", "pre_notice", "seizure", "objection",
                 "easement", "cancellation"):
        assert kinds.get(kind, 0) > 0, kind
    # some history: transfers, cancelled mortgages, split parcels
    assert _one(c, "SELECT count(*) FROM cad.right_record WHERE status = 2") > 1000
    assert _one(c, "SELECT count(*) FROM cad.parcel WHERE valid_to IS NOT NULL") > 5
    assert _one(c, "SELECT count(*) FROM cad.lineage WHERE event = 'split'") > 10


def test_bulk_load_leaves_every_index_valid(demo_conn: psycopg.Connection) -> None:
    """The load drops GiST/GIN indexes and rebuilds them: on a partitioned table the rebuilt
    index must reach every partition (an ``ON ONLY`` rebuild left it invalid on the parent)."""
    c = demo_conn
    invalid = c.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid"
                        ).fetchall()
    assert invalid == []
    # every partition of cad.unit has the spatial index what-is-here and 3D picking read
    parts = c.execute(
        "SELECT p.inhrelid::regclass::text, EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x "
        "ON x.oid = i.indexrelid JOIN pg_am a ON a.oid = x.relam WHERE i.indrelid = p.inhrelid "
        "AND a.amname = 'gist' AND pg_get_indexdef(i.indexrelid) LIKE '%(geom_3857)%') "
        "FROM pg_inherits p WHERE p.inhparent = 'cad.unit'::regclass").fetchall()
    assert parts and all(has for _, has in parts), parts


def test_every_code_is_valid(demo_conn: psycopg.Connection) -> None:
    units = [r[0] for r in demo_conn.execute("SELECT unit_code FROM cad.unit")]
    assert all(not validate_unit_code(u) for u in units)
    parcels = [r[0] for r in demo_conn.execute("SELECT DISTINCT parcel_code FROM cad.parcel")]
    assert all(not validate_parcel_code(p) for p in parcels)
    rights = [r[0] for r in demo_conn.execute("SELECT DISTINCT unit_code FROM cad.right_record")]
    assert all(not validate_unit_code(u) for u in rights)
    # every unit code is its building code + 4-digit 户号, and the building is on its parcel
    assert _one(demo_conn, """
        SELECT count(*) FROM cad.unit u LEFT JOIN cad.building b USING (building_code)
        WHERE b.building_code IS NULL""") == 0
    parsed = UnitCode.parse(units[0])
    assert parsed.building_code == units[0][:24]


def test_geometry_is_valid_and_consistent(demo_conn: psycopg.Connection) -> None:
    c = demo_conn
    assert _one(c, "SELECT count(*) FROM cad.parcel WHERE NOT ST_IsValid(geom)") == 0
    assert _one(c, "SELECT count(*) FROM cad.unit WHERE NOT ST_IsValid(geom)") == 0
    assert _one(c, "SELECT DISTINCT srid FROM cad.parcel") == 4528
    # units inside their building footprint, buildings inside their parcel
    assert _one(c, """SELECT count(*) FROM cad.unit u JOIN cad.building b USING (building_code)
                     WHERE NOT ST_CoveredBy(u.geom, b.geom)""") == 0
    assert _one(c, """SELECT count(*) FROM cad.building b JOIN cad.parcel p
                     ON p.parcel_code = b.parcel_code AND p.valid_to IS NULL
                     WHERE NOT ST_CoveredBy(b.geom, p.geom)""") == 0
    # each unit volume stacks on its floor: base elevation = the floor's base elevation
    assert _one(c, """SELECT count(*) FROM cad.unit u JOIN cad.floor f
                     ON f.building_code = u.building_code AND f.floor_no = u.floor_no
                     WHERE u.base_elevation <> f.base_elevation""") == 0
    # boundary points are the parcel's vertices, to the millimetre
    assert _one(c, """SELECT count(*) FROM cad.boundary_point bp JOIN cad.parcel p
                     ON p.parcel_code = bp.parcel_code
                        AND p.valid_to IS NULL AND bp.valid_to IS NULL
                     WHERE ST_Distance(bp.geom, ST_Boundary(p.geom)) > 0.0005""") == 0
    # Hangzhou, West Lake district
    lon, lat = c.execute("SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_Centroid("
                         "ST_Collect(geom)), 4490) g FROM cad.parcel) s").fetchone()
    assert 119.9 < lon < 120.3 and 30.1 < lat < 30.4


def test_planted_defects_are_there_and_only_there(demo_conn: psycopg.Connection) -> None:
    c = demo_conn
    defects = {k: (codes, m) for k, codes, m in c.execute(
        "SELECT kind, parcel_codes, measure FROM cad.demo_defect")}
    assert set(defects) == {"overlap", "sliver_gap", "area_discrepancy"}
    overlaps = c.execute("""
        SELECT a.parcel_code, b.parcel_code, ST_Area(ST_Intersection(a.geom, b.geom))
        FROM cad.parcel a JOIN cad.parcel b
          ON a.parcel_code < b.parcel_code AND ST_Intersects(a.geom_3857, b.geom_3857)
        WHERE a.valid_to IS NULL AND b.valid_to IS NULL
          AND ST_Relate(a.geom, b.geom, '2********')""").fetchall()
    assert len(overlaps) == 1
    a, b, area = overlaps[0]
    assert sorted(defects["overlap"][0]) == [a, b]
    assert area == pytest.approx(defects["overlap"][1], abs=0.01)
    # sliver: the two neighbours no longer touch; the strip between them is 15 cm wide
    g1, g2 = defects["sliver_gap"][0]
    dist = _one(c, """SELECT ST_Distance(a.geom, b.geom) FROM cad.parcel a, cad.parcel b
                      WHERE a.parcel_code = %s AND b.parcel_code = %s
                        AND a.valid_to IS NULL AND b.valid_to IS NULL""", g1, g2)
    assert dist == pytest.approx(0.15, abs=0.001)
    # area: exactly one parcel's registered area differs from its computed area
    off = c.execute("""SELECT parcel_code, registered_area / ST_Area(geom) FROM cad.parcel
                       WHERE valid_to IS NULL AND abs(registered_area - ST_Area(geom)) > 0.01
                       """).fetchall()
    planted = defects["area_discrepancy"][0][0]
    overlap_grown = sorted(defects["overlap"][0])[0]
    sliver_shrunk = g1
    assert {r[0] for r in off} <= {planted, overlap_grown, sliver_shrunk}
    ratio = dict(off)[planted]
    assert float(ratio) == pytest.approx(1.12, abs=0.001)


def test_parties_are_encrypted_and_valid(demo_conn: psycopg.Connection,
                                         test_settings: Settings) -> None:
    cipher = load_cipher(test_settings)
    rows = demo_conn.execute(
        "SELECT name_enc, id_number_enc, phone_enc, id_type, name_hash, id_number_hash "
        "FROM pii.party ORDER BY party_id LIMIT 800").fetchall()
    persons = 0
    for name_enc, id_enc, phone_enc, id_type, name_hash, id_hash in rows:
        name, idn, phone = (cipher.decrypt(name_enc), cipher.decrypt(id_enc),
                            cipher.decrypt(phone_enc))
        assert name and idn and name.encode() not in bytes(name_enc)
        assert cipher.lookup_hash(name) == bytes(name_hash)
        assert cipher.lookup_hash(idn) == bytes(id_hash)
        if id_type == 1:
            persons += 1
            validate_id_number(idn)
            assert re.fullmatch(r"1[3-9]\d{9}", phone)
    assert persons > 300
    # no identity in any other table: party names never appear in cad.*
    sample = [cipher.decrypt(r[0]) for r in demo_conn.execute(
        "SELECT name_enc FROM pii.party WHERE id_type = 1 LIMIT 50")]
    text_cols = demo_conn.execute("""
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'cad' AND data_type IN ('text', 'character', 'character varying')
    """).fetchall()
    for table, col in text_cols:
        hits = _one(demo_conn, f"SELECT count(*) FROM cad.{table} WHERE {col} = ANY(%s)", sample)
        assert hits == 0, (table, col)


def test_as_of_query_returns_past_owner(demo_conn: psycopg.Connection,
                                        test_settings: Settings) -> None:
    c = demo_conn
    unit, transfer = c.execute("""
        SELECT unit_code, valid_to FROM cad.right_record
        WHERE kind = 'ownership' AND status = 2 ORDER BY unit_code LIMIT 1""").fetchone()
    before = owners_as_of(c, unit, transfer - timedelta(days=1))
    after = owners_as_of(c, unit, transfer + timedelta(days=1))
    assert before and after and set(before).isdisjoint(after)
    cipher = load_cipher(test_settings)
    old_names = [cipher.decrypt(r[0]) for r in c.execute(
        "SELECT name_enc FROM pii.party WHERE party_id = ANY(%s)", (list(before),))]
    assert all(old_names)
    # before the first registration nobody owned it
    first = _one(c, "SELECT min(valid_from) FROM cad.right_record WHERE unit_code = %s "
                    "AND kind = 'ownership'", unit)
    assert owners_as_of(c, unit, first - timedelta(days=1)) == ()
    # mortgages of the old owner closed at the transfer at the latest
    now_rights = rights_as_of(c, unit, transfer + timedelta(days=1))
    assert all(r.valid_from <= transfer + timedelta(days=1) for r in now_rights)


def test_as_of_parcel_before_and_after_a_split(demo_conn: psycopg.Connection) -> None:
    c = demo_conn
    code, fid, split = c.execute("""SELECT parcel_code, feature_id, valid_to FROM cad.parcel
                                    WHERE valid_to IS NOT NULL ORDER BY parcel_code LIMIT 1"""
                                 ).fetchone()
    old = parcel_as_of(c, code, split - timedelta(days=1))
    assert old.feature_id == fid
    children = parcel_lineage(c, fid)["children"]
    assert len(children) == 2
    child_codes = [r[0] for r in c.execute(
        "SELECT parcel_code FROM cad.parcel WHERE feature_id = ANY(%s)", (children,))]
    for cc in child_codes:
        assert parcel_as_of(c, cc, split + timedelta(days=1)).valid_from == split
    area_children = _one(c, "SELECT sum(ST_Area(geom)) FROM cad.parcel WHERE feature_id = ANY(%s)",
                         children)
    assert area_children == pytest.approx(old.computed_area, rel=1e-6)
    from cadastre.errors import NotFound

    with pytest.raises(NotFound):
        parcel_as_of(c, code, split + timedelta(days=1))


def _fingerprint(url: str) -> str:
    h = hashlib.sha256()
    with psycopg.connect(url) as conn:
        for q in ("SELECT parcel_code, ST_AsEWKB(geom), registered_area FROM cad.parcel "
                  "ORDER BY parcel_code, valid_from",
                  "SELECT unit_code, building_area, ST_AsEWKB(geom) FROM cad.unit ORDER BY 1",
                  "SELECT unit_code, kind, status, valid_from, certificate_no FROM cad.right_record"
                  " ORDER BY version_id"):
            for row in conn.execute(q):  # type: ignore[arg-type]
                h.update(repr(row).encode())
    return h.hexdigest()


def test_generator_is_deterministic(make_db, test_settings: Settings) -> None:
    urls = [make_db(f"det_{i}") for i in range(2)]
    for url in urls:
        with psycopg.connect(url) as conn:
            stats = load_demo(conn, load_cipher(test_settings), parcels=120, seed=7)
            assert stats.parcels >= 120
    assert _fingerprint(urls[0]) == _fingerprint(urls[1])
