"""Migrations from an empty database, forward-only rules, schema constraints, version checks."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from cadastre.errors import DatabaseVersionError, MigrationError
from cadastre.store import migrate as m
from cadastre.store.db import ServerInfo, check_versions, server_info

EXPECTED_TABLES = {
    "cad.change_set", "cad.parcel", "cad.boundary_point", "cad.boundary_line", "cad.building",
    "cad.floor", "cad.unit", "cad.lineage", "cad.right_record", "cad.right_party",
    "cad.ownership_detail", "cad.mortgage_detail", "cad.pre_notice_detail", "cad.seizure_detail",
    "cad.objection_detail", "cad.easement_detail", "cad.cancellation_detail", "pii.party",
}


def test_migrate_from_empty(empty_db: str) -> None:
    applied = m.migrate(empty_db)
    assert [x.version for x in applied] == [x.version for x in m.available()]
    assert applied[0].version == 1
    assert m.migrate(empty_db) == []  # second run: nothing to do
    with psycopg.connect(empty_db) as conn:
        tables = {f"{s}.{t}" for s, t in conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('cad', 'pii')")}
        assert EXPECTED_TABLES <= tables
        ext = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        assert {"postgis", "pg_trgm", "btree_gist"} <= ext
        # spatial indexes on the Web-Mercator columns used by tiles
        idx = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'cad' AND indexdef LIKE "
            "'%USING gist (geom_3857)%'")}
        assert {"parcel_geom_3857_current", "building_geom_3857_current",
                "unit_geom_3857_current"} <= idx
        check_versions(server_info(conn))


def _copy_migrations(tmp_path: Path) -> Path:
    d = tmp_path / "migrations"
    shutil.copytree(m.MIGRATIONS_DIR, d)
    return d


def test_modified_migration_is_refused(empty_db: str, tmp_path: Path) -> None:
    d = _copy_migrations(tmp_path)
    m.migrate(empty_db, d)
    first = sorted(d.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after being applied\n")
    with pytest.raises(MigrationError) as exc:
        m.migrate(empty_db, d)
    assert exc.value.code == "MIGRATION_MODIFIED"


def test_new_migration_applies_forward_only(empty_db: str, tmp_path: Path) -> None:
    d = _copy_migrations(tmp_path)
    m.migrate(empty_db, d)
    n = m.available(d)[-1].version + 1
    (d / f"{n:04d}_add_probe.sql").write_text("CREATE TABLE cad.probe (id int);")
    applied = m.migrate(empty_db, d)
    assert [x.version for x in applied] == [n]
    # the shipped program does not know migration n: the database is newer than the code
    with pytest.raises(MigrationError) as exc:
        m.migrate(empty_db)
    assert exc.value.code == "DATABASE_NEWER"


def test_failed_migration_leaves_nothing(empty_db: str, tmp_path: Path) -> None:
    d = _copy_migrations(tmp_path)
    m.migrate(empty_db, d)
    n = m.available(d)[-1].version + 1
    (d / f"{n:04d}_broken.sql").write_text(
        "CREATE TABLE cad.half_done (id int);\nSELECT no_such_function();")
    with pytest.raises(MigrationError) as exc:
        m.migrate(empty_db, d)
    assert exc.value.code == "MIGRATION_FAILED"
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT to_regclass('cad.half_done')").fetchone() == (None,)
        assert n not in m.applied(conn)


def test_numbers_may_have_gaps_and_arrive_late(empty_db: str, tmp_path: Path) -> None:
    """Numbers are reserved per branch: a gap is fine, and a lower number merged after a higher
    one was applied is applied then; one number twice is refused."""
    d = _copy_migrations(tmp_path)
    top = m.available(d)[-1].version
    (d / f"{top + 3:04d}_later.sql").write_text("CREATE TABLE cad.later (id int);")
    applied = m.migrate(empty_db, d)
    assert applied[-1].version == top + 3 and top + 1 not in [x.version for x in applied]
    (d / f"{top + 1:04d}_merged_late.sql").write_text("CREATE TABLE cad.merged_late (id int);")
    assert [x.version for x in m.migrate(empty_db, d)] == [top + 1]
    (d / f"{top + 1:04d}_twin.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError) as exc:
        m.available(d)
    assert exc.value.code == "MIGRATION_SEQUENCE"


def test_bad_migration_file_names(tmp_path: Path) -> None:
    d = _copy_migrations(tmp_path)
    (d / "9_x.sql").write_text("")
    with pytest.raises(MigrationError) as exc:
        m.available(d)
    assert exc.value.code == "MIGRATION_NAME"


@pytest.mark.parametrize(
    ("info", "code"),
    [
        (ServerInfo("13.9", 130009, "3.3.2"), "POSTGRES_TOO_OLD"),
        (ServerInfo("15.4", 150004, "3.0.5"), "POSTGIS_TOO_OLD"),
        (ServerInfo("15.4", 150004, None), "POSTGIS_MISSING"),
    ],
)
def test_version_checks_refuse_old_servers(info: ServerInfo, code: str) -> None:
    with pytest.raises(DatabaseVersionError) as exc:
        check_versions(info)
    assert exc.value.code == code
    assert "/" in exc.value.message  # Chinese / English


def test_version_checks_accept_supported() -> None:
    check_versions(ServerInfo("14.0", 140000, "3.1.0"))
    check_versions(ServerInfo("17.2", 170002, "3.5.0dev"))


def _change(conn: psycopg.Connection) -> int:
    return conn.execute("INSERT INTO cad.change_set (kind, actor) VALUES ('edit', 'test') "
                        "RETURNING id").fetchone()[0]


def _parcel(conn: psycopg.Connection, code: str, valid_from: str, valid_to: str | None,
            fid: uuid.UUID | None = None) -> None:
    cid = _change(conn)
    conn.execute(
        "INSERT INTO cad.parcel (feature_id, parcel_code, land_use, right_type, srid, geom, "
        "valid_from, valid_to, change_id) VALUES (%s, %s, '0701', 3, 4528, "
        "ST_Multi(ST_MakeEnvelope(40502000, 3347000, 40502010, 3347010, 4528)), %s, %s, %s)",
        (fid or uuid.uuid4(), code, valid_from, valid_to, cid))


def test_schema_rejects_bad_codes_and_overlapping_versions(fresh_db: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            _parcel(conn, "330106001001XB00001", "2020-01-01", None)  # X is not an ownership char
        conn.rollback()
        _parcel(conn, "330106001001GB00001", "2010-01-01", "2020-01-01")
        _parcel(conn, "330106001001GB00001", "2020-01-01", None)  # next version: fine
        conn.commit()
        with pytest.raises(psycopg.errors.ExclusionViolation):
            _parcel(conn, "330106001001GB00001", "2015-01-01", "2016-01-01")  # overlaps history
        conn.rollback()
        row = conn.execute(
            "SELECT ST_SRID(geom_3857), round(ST_X(ST_Centroid(geom_3857))) FROM cad.parcel "
            "WHERE valid_to IS NULL").fetchone()
        assert row[0] == 3857 and 13_360_000 < row[1] < 13_370_000  # ≈ 120.0°E in Web Mercator
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO cad.parcel (feature_id, parcel_code, land_use, right_type, srid, geom,"
                " valid_from, change_id) VALUES (%s, '330106001001GB00002', '0701', 3, 4528, "
                "ST_Multi(ST_MakeEnvelope(0, 0, 1, 1, 4326)), now(), %s)",
                (uuid.uuid4(), _change(conn)))  # geometry SRID must match srid
