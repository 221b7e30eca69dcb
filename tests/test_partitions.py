"""Counties as partitions (migration 0024, issue #18): the conversion of an existing database
in place, the keys that still hold, reads by code that read one county's partition, and
`cadastre db county add|detach|list`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from cadastre.access.pii import audit_key
from cadastre.audit import verify
from cadastre.errors import InvalidInput, NotFound
from cadastre.exchange.fingerprint import register_fingerprint
from cadastre.query import features as F
from cadastre.query import records, registry
from cadastre.query import search as S
from cadastre.store import counties
from tests.partition_support import copy_register, migrate_before

COUNTY, OTHER = "330106", "330108"
PARTITIONED = ("unit", "boundary_point", "right_record", "right_party", "ownership_detail",
               "mortgage_detail", "pre_notice_detail", "seizure_detail", "objection_detail",
               "easement_detail", "cancellation_detail")


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM cad.{t}").fetchone()[0] for t in PARTITIONED}


@pytest.fixture(scope="module")
def converted(cluster, small_district, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The 60-parcel district in a database built by the migrations before 0024, then
    migrated: the fingerprint and row counts before and after, and the URL."""
    name = f"part_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = cluster.url(name)
    migrate_before(url, 24, tmp_path_factory.mktemp("migrations"))
    copy_register(small_district("partsrc"), url)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'cad.unit'::regclass"
                            ).fetchone()[0] == "r"
        before = (register_fingerprint(conn), _counts(conn))
    from cadastre.store.migrate import migrate

    migrate(url)
    with psycopg.connect(url) as conn:
        after = (register_fingerprint(conn), _counts(conn))
    yield {"url": url, "before": before, "after": after}
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migration_converts_in_place_keeping_the_fingerprint(converted) -> None:
    (fp_before, n_before), (fp_after, n_after) = converted["before"], converted["after"]
    assert fp_after == fp_before
    assert n_after == n_before and n_after["unit"] > 100 and n_after["right_party"] > 100
    with psycopg.connect(converted["url"]) as conn:
        for t in PARTITIONED:
            kinds = dict(conn.execute(
                "SELECT c.relname, c.relkind FROM pg_inherits i JOIN pg_class c "
                "ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass", (f"cad.{t}",)))
            assert kinds == {f"{t}_{COUNTY}": "r", f"{t}_default": "r"}, t
            assert conn.execute(f"SELECT count(*) FROM cad.{t}_default").fetchone()[0] == 0
        # the parents have statistics (autovacuum never analyses a partitioned table)
        for t in (t for t in PARTITIONED if n_after[t]):    # (an empty table has none)
            assert conn.execute("SELECT count(*) FROM pg_stats WHERE schemaname = 'cad' AND "
                                "tablename = %s AND inherited", (t,)).fetchone()[0] > 0, t
        # the sequences go on where they were
        last = conn.execute("SELECT max(version_id) FROM cad.unit").fetchone()[0]
        assert conn.execute("SELECT nextval(pg_get_serial_sequence('cad.unit', 'version_id'))"
                            ).fetchone()[0] > last


def _raises(conn: psycopg.Connection, error: type[Exception], sql: str, *args: Any) -> None:
    with pytest.raises(error), conn.transaction():
        conn.execute(sql, args)


def test_keys_the_register_relies_on_still_hold(converted) -> None:
    with psycopg.connect(converted["url"]) as conn:
        code = conn.execute("SELECT unit_code FROM cad.unit WHERE valid_to IS NULL "
                            "ORDER BY unit_code LIMIT 1").fetchone()[0]
        copy = ("INSERT INTO cad.unit (feature_id, unit_code, county_code, floor_no, room_no, "
                "use, building_area, base_elevation, height, srid, geom, valid_from, valid_to, "
                "change_id) SELECT gen_random_uuid(), unit_code, {county}, floor_no, room_no, "
                "use, building_area, base_elevation, height, srid, geom, {start}, {end}, "
                "change_id FROM cad.unit WHERE unit_code = %s AND valid_to IS NULL")
        # a second current version of a unit code
        _raises(conn, psycopg.errors.IntegrityError,
                copy.format(county="county_code", start="valid_from + interval '1 day'",
                            end="NULL"), code)
        # a past version overlapping the current one
        _raises(conn, psycopg.errors.ExclusionViolation,
                copy.format(county="county_code", start="valid_from - interval '9 days'",
                            end="valid_from + interval '1 day'"), code)
        # a county that is not the code's
        _raises(conn, psycopg.errors.CheckViolation,
                copy.format(county=f"'{OTHER}'", start="valid_from - interval '9 days'",
                            end="valid_from - interval '1 day'"), code)
        # details and holders of a right that does not exist
        _raises(conn, psycopg.errors.ForeignKeyViolation,
                "INSERT INTO cad.ownership_detail (right_version_id, county_code) VALUES (-1, %s)",
                COUNTY)
        _raises(conn, psycopg.errors.ForeignKeyViolation,
                "INSERT INTO cad.right_party (right_version_id, county_code, party_id, role) "
                "SELECT -1, %s, party_id, 1 FROM pii.party LIMIT 1", COUNTY)


def _other_county_building(conn: psycopg.Connection) -> str:
    """Copies one building's current units, their ownership rights and holders to county
    OTHER, written into the parents (no partitions of OTHER yet: they land in the default
    ones). Returns the copied building code."""
    building = conn.execute(
        "SELECT u.building_code FROM cad.unit u JOIN cad.right_record r ON r.unit_code = "
        "u.unit_code AND r.valid_to IS NULL AND r.kind = 'ownership' WHERE u.valid_to IS NULL "
        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    new = f"{OTHER}{building[6:]}"
    conn.execute(
        "INSERT INTO cad.unit (feature_id, unit_code, county_code, floor_no, floor_count, "
        "room_no, seat, use, building_area, inner_area, shared_area, base_elevation, height, "
        "srid, geom, valid_from, change_id) SELECT gen_random_uuid(), %s || substr(unit_code, 7), "
        "%s, floor_no, floor_count, room_no, seat, use, building_area, inner_area, shared_area, "
        "base_elevation, height, srid, geom, valid_from, change_id FROM cad.unit "
        "WHERE building_code = %s AND valid_to IS NULL", (OTHER, OTHER, building))
    conn.execute("""
        WITH src AS (SELECT * FROM cad.right_record WHERE valid_to IS NULL
                     AND kind = 'ownership' AND unit_code LIKE %(b)s || '%%'),
        ins AS (INSERT INTO cad.right_record (right_id, kind, unit_code, county_code,
                    business_no, registration_type, right_type, registered_at, status,
                    valid_from, change_id)
                SELECT gen_random_uuid(), kind, %(c)s || substr(unit_code, 7), %(c)s,
                       business_no, registration_type, right_type, registered_at, 1,
                       valid_from, change_id FROM src
                RETURNING version_id, unit_code),
        parties AS (INSERT INTO cad.right_party (right_version_id, county_code, party_id,
                        role, seq, share, co_ownership)
                    SELECT ins.version_id, %(c)s, rp.party_id, rp.role, rp.seq, rp.share,
                           rp.co_ownership
                    FROM ins JOIN src ON substr(src.unit_code, 7) = substr(ins.unit_code, 7)
                    JOIN cad.right_party rp ON rp.right_version_id = src.version_id)
        INSERT INTO cad.ownership_detail (right_version_id, county_code, building_area)
        SELECT version_id, %(c)s, 88 FROM ins""", {"b": building, "c": OTHER})
    return new


@pytest.fixture(scope="module")
def two_counties(small_district, test_settings) -> Iterator[tuple[str, str, str]]:
    """A copy of the district with a second county (OTHER) in the default partitions:
    (url, a building code of COUNTY, the copied building of OTHER)."""
    url = small_district("parttwo")
    with psycopg.connect(url) as conn:
        new = _other_county_building(conn)
        conn.commit()
    yield url, COUNTY + new[6:], new


def _executed(plan: dict[str, Any]) -> set[str]:
    """Relations a plan (EXPLAIN ANALYZE, JSON) read at least once."""
    out = set()
    if plan.get("Relation Name") and plan.get("Actual Loops", 0) > 0:
        out.add(plan["Relation Name"])
    for child in plan.get("Plans", []):
        out |= _executed(child)
    return out


def _reads(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> set[str]:
    row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()
    rels = _executed(row[0][0]["Plan"])
    return {r for r in rels if r.split("_")[-1].isdigit() or r.endswith("_default")}


def test_county_add_moves_rows_and_reads_by_code_prune(two_counties, test_settings) -> None:
    url, ours, theirs = two_counties
    key = audit_key(test_settings)
    with psycopg.connect(url) as conn:
        units = conn.execute("SELECT count(*) FROM cad.unit WHERE building_code = %s",
                             (theirs,)).fetchone()[0]
        assert units > 0
        assert conn.execute("SELECT count(*) FROM cad.unit_default").fetchone()[0] == units
        moved = counties.add(conn, OTHER, key)
        rights = conn.execute("SELECT count(*) FROM cad.right_record_330108").fetchone()[0]
        assert rights > 0 and moved >= units + 2 * rights
        for t in PARTITIONED:
            assert conn.execute(f"SELECT count(*) FROM cad.{t}_default").fetchone()[0] == 0
        assert conn.execute(f"SELECT count(*) FROM cad.unit_{OTHER}").fetchone()[0] == units
        # the parent's statistics were taken with the new county's rows in it
        assert conn.execute("SELECT n_distinct FROM pg_stats WHERE schemaname = 'cad' AND "
                            "tablename = 'unit' AND attname = 'county_code' AND inherited"
                            ).fetchone()[0] == 2
        assert counties.add(conn, OTHER, key) == 0         # again: nothing to do
        # reads by a unit or building code touch only that county's partitions
        unit = conn.execute("SELECT unit_code FROM cad.unit_current WHERE building_code = %s "
                            "ORDER BY unit_code LIMIT 1", (ours,)).fetchone()[0]
        sens = F.Sensitive(certificate_all=True, owner_count=True).params()
        reads = {
            "unit": (F._UNIT.format(where=F._where("unit", ("code", unit))), {"ref": unit}),
            "building_table": (F._TABLE.format(where=F._where("building", ("code", ours))),
                               {"ref": ours}),
            "registry_unit": (registry._UNIT.format(when=registry._LATEST), {"code": unit}),
            "registry_records": (registry._RECORDS, {"code": unit, "at": None}),
            "rights_as_of": (records._RIGHTS_AT, {"unit": unit, "at": "2100-01-01",
                                                  "kind": None}),
        }
        for name, (sql, params) in reads.items():
            touched = _reads(conn, sql, {**sens, **params})
            if name == "registry_records":   # easements whose dominant land is this unit:
                # the servient unit, whose county holds the right, may be in any county
                touched = {r for r in touched if not r.startswith("easement_detail_")}
            assert touched and all(r.endswith(COUNTY) for r in touched), (name, sorted(touched))
        county = _reads(conn, "SELECT count(*) FROM cad.unit_current WHERE county_code = "
                        "%(c)s", {"c": OTHER})
        assert county == {f"unit_{OTHER}"}
        # a county-scoped caller's search reads its county's units only
        seat = conn.execute("SELECT left(seat, 4) FROM cad.unit_current WHERE building_code = %s "
                            "AND seat IS NOT NULL LIMIT 1", (theirs,)).fetchone()[0]
        for text in (seat, theirs[:14]):
            sql, params = S.build_sql(S.parse_query(text))
            touched = _reads(conn, sql, {**params, "counties": [OTHER]})
            assert {r for r in touched if r.startswith("unit_")} == {f"unit_{OTHER}"}, text


def test_county_detach_takes_rows_out_of_the_live_register(two_counties,
                                                           test_settings) -> None:
    url, _, theirs = two_counties
    key = audit_key(test_settings)
    with psycopg.connect(url) as conn:
        counties.add(conn, OTHER, key)
        units = conn.execute("SELECT count(*) FROM cad.unit WHERE building_code = %s",
                             (theirs,)).fetchone()[0]
        assert units > 0
        n_live = conn.execute("SELECT count(*) FROM cad.unit").fetchone()[0]
        assert counties.detach(conn, OTHER, key) == len(PARTITIONED)
        assert conn.execute("SELECT count(*) FROM cad.unit WHERE building_code = %s",
                            (theirs,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM cad.unit").fetchone()[0] == n_live - units
        assert conn.execute("SELECT count(*) FROM cad.right_current WHERE county_code = %s",
                            (OTHER,)).fetchone()[0] == 0
        # kept as plain tables for archive
        assert conn.execute(f"SELECT count(*) FROM cad.unit_{OTHER}").fetchone()[0] == units
        listed = {c.code: c for c in counties.counties(conn)}
        assert not listed[OTHER].attached and listed[OTHER].rows["unit"] == units
        assert listed[COUNTY].attached
        with pytest.raises(NotFound):
            counties.detach(conn, OTHER, key)
        with pytest.raises(InvalidInput):
            counties.add(conn, "33010", key)
        assert verify(conn, key).ok      # the audit rows of add and detach are in the chain


def test_cli_county_list_and_add(small_district, test_settings) -> None:
    url = small_district("partcli")
    env = {**os.environ, "DATABASE_URL": url, "CADASTRE_DATA_DIR": str(test_settings.data_dir)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", "db", "county", *args],
                              capture_output=True, text=True, env=env, timeout=120)

    p = run("add", "330110")
    assert p.returncode == 0, p.stderr
    p = run("list", "--json")
    assert p.returncode == 0, p.stderr
    listed = {c["code"]: c for c in json.loads(p.stdout)}
    assert listed[COUNTY]["attached"] and listed[COUNTY]["rows"]["unit"] > 0
    assert listed["330110"]["rows"] == {"unit": 0, "boundary_point": 0, "right_record": 0}
    p = run("add", "12345x")
    assert p.returncode == 1 and "COUNTY_CODE" in p.stderr + p.stdout


def test_migration_repairs_indexes_built_on_the_parent_only(cluster, tmp_path) -> None:
    """A register loaded before the bulk loader's fix had its unit and boundary-point GiST/GIN
    indexes rebuilt ``ON ONLY`` the parent: invalid, on no partition. Migration 0026 rebuilds
    them on every partition."""
    name = f"part_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = cluster.url(name)
    try:
        migrate_before(url, 26, tmp_path / "migrations")
        with psycopg.connect(url) as conn:   # what the old loader left behind
            conn.execute("SELECT cad.county_add(%s)", (COUNTY,))
            for idx, definition in conn.execute(
                    "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                    "WHERE indrelid IN ('cad.unit'::regclass, 'cad.boundary_point'::regclass) "
                    "AND indexrelid::regclass::text IN ('cad.unit_geom_3857_current', "
                    "'cad.unit_seat_trgm_current', 'cad.boundary_point_geom_3857')").fetchall():
                conn.execute(f"DROP INDEX {idx}")
                conn.execute(definition if " ON ONLY " in definition
                             else definition.replace(" ON ", " ON ONLY ", 1))
            broken = "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
            assert conn.execute(broken).fetchone()[0] == 3
            conn.commit()
        from cadastre.store.migrate import migrate

        migrate(url)
        with psycopg.connect(url) as conn:
            assert conn.execute(broken).fetchone()[0] == 0
            on_partitions = conn.execute(
                "SELECT count(*) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indrelid "
                "WHERE h.inhparent = 'cad.unit'::regclass AND pg_get_indexdef(i.indexrelid) "
                "LIKE '%USING gist (geom_3857)%'").fetchone()[0]
            assert on_partitions == conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'cad.unit'::regclass"
            ).fetchone()[0] >= 2
    finally:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
