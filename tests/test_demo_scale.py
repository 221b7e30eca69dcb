"""The parallel district builder (cadastre.demo.scale, issue #18) on a small district, real
PostGIS and real worker processes: the same register whatever the worker count, a build killed
midway never visible and completed by the next run, and the CLI's progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cadastre.access.pii import load_cipher
from cadastre.demo.scale import build, plan
from cadastre.exchange.fingerprint import register_fingerprint
from cadastre.settings import PROJECT_ROOT, Settings
from cadastre.store.cluster import EmbeddedCluster

PARCELS, SEED = 3000, 20260630
CHUNK = 16        # blocks per chunk here: ~17 chunks, so a build can be cut between them

_KILLABLE = """
import sys
from pathlib import Path

from cadastre.access.pii import load_cipher
from cadastre.demo.scale import build
from cadastre.settings import Settings

if __name__ == "__main__":
    settings = Settings(storage={"data_dir": Path(sys.argv[2])})
    build(sys.argv[1], load_cipher(settings), int(sys.argv[3]), int(sys.argv[4]), workers=2,
          chunk_blocks=int(sys.argv[5]))
"""


def _exists(cluster: EmbeddedCluster, name: str) -> bool:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             (name,)).fetchone() is not None


@pytest.fixture(scope="module")
def names(cluster: EmbeddedCluster) -> Iterator[dict[str, str]]:
    out = {k: f"scale_{k}_{uuid.uuid4().hex[:8]}" for k in ("one", "two", "cut")}
    yield out
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        for name in out.values():
            for n in (name, f"{name}_building", f"{name}_old"):
                admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


@pytest.fixture(scope="module")
def one_worker(cluster: EmbeddedCluster, names: dict[str, str],
               test_settings: Settings) -> dict[str, str]:
    """The district built by one worker, as the reference fingerprint."""
    report = build(cluster.url(names["one"]), load_cipher(test_settings), PARCELS, SEED,
                   workers=1, chunk_blocks=CHUNK)
    assert report.stats.parcels >= PARCELS and report.workers == 1
    with psycopg.connect(cluster.url(names["one"])) as conn:
        return register_fingerprint(conn)


def _constraints(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype IN ('x', 'f') AND connamespace = 'cad'::regnamespace").fetchall()
        rows += conn.execute(
            "SELECT indrelid::regclass::text, indexrelid::regclass::text FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
            "WHERE c.relnamespace IN ('cad'::regnamespace, 'pii'::regnamespace)").fetchall()
    return set(rows)


def _assert_partitions_indexed(url: str) -> None:
    """Every index valid, and every partition of a partitioned table has each of its indexes
    (an index recreated ``ON ONLY`` the parent would leave the partitions without)."""
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_index i JOIN pg_class c "
                            "ON c.oid = i.indexrelid WHERE NOT i.indisvalid AND "
                            "c.relnamespace IN ('cad'::regnamespace, 'pii'::regnamespace)"
                            ).fetchone() == (0,)
        missing = conn.execute(
            "SELECT p.indexrelid::regclass::text, part.inhrelid::regclass::text "
            "FROM pg_index p JOIN pg_class pc ON pc.oid = p.indrelid AND pc.relkind = 'p' "
            "JOIN pg_inherits part ON part.inhparent = p.indrelid "
            "WHERE NOT EXISTS (SELECT 1 FROM pg_inherits ii JOIN pg_index ci "
            "ON ci.indexrelid = ii.inhrelid WHERE ii.inhparent = p.indexrelid "
            "AND ci.indrelid = part.inhrelid)").fetchall()
        assert missing == []


def test_two_workers_build_the_same_register_as_one(cluster: EmbeddedCluster,
                                                     names: dict[str, str],
                                                     test_settings: Settings,
                                                     one_worker: dict[str, str]) -> None:
    seen: list[tuple[int, int]] = []
    report = build(cluster.url(names["two"]), load_cipher(test_settings), PARCELS, SEED,
                   workers=2, chunk_blocks=CHUNK, progress=lambda d, t: seen.append((d, t)))
    assert report.workers == 2 and report.resumed_chunks == 0
    url = cluster.url(names["two"])
    with psycopg.connect(url) as conn:
        assert register_fingerprint(conn) == one_worker
        # a complete district: the planted defects, units with rights, parties encrypted
        kinds = {r[0] for r in conn.execute("SELECT kind FROM cad.demo_defect")}
        assert kinds == {"overlap", "sliver_gap", "area_discrepancy"}
        units, parcels = conn.execute(
            "SELECT (SELECT count(*) FROM cad.unit), (SELECT count(*) FROM cad.parcel "
            "WHERE valid_to IS NULL)").fetchone()  # type: ignore[misc]
        assert parcels == sum(h.parcels for h in plan(PARCELS, SEED))
        assert 7 <= units / parcels <= 13          # the layout at scale: ~10 units a parcel
        assert conn.execute("SELECT count(*) FROM cad.unit u WHERE NOT EXISTS (SELECT 1 "
                            "FROM cad.unit_status s WHERE s.unit_code = u.unit_code) "
                            "AND EXISTS (SELECT 1 FROM cad.right_record r "
                            "WHERE r.unit_code = u.unit_code)").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pii.party WHERE name_enc IS NULL "
                            "OR name_hash IS NULL").fetchone() == (0,)
        assert conn.execute("SELECT to_regnamespace('demo_build')").fetchone() == (None,)
        # the right-record sequence continues after the generated ids
        nxt = conn.execute("SELECT nextval(pg_get_serial_sequence('cad.right_record', "
                           "'version_id'))").fetchone()[0]  # type: ignore[index]
        assert nxt > conn.execute("SELECT max(version_id) FROM cad.right_record"
                                  ).fetchone()[0]  # type: ignore[index]
    assert not _exists(cluster, names["two"] + "_building")
    # every index and constraint dropped for the load is back
    assert _constraints(url) == _constraints(cluster.url(names["one"]))
    assert ("cad.unit_330106", "unit_330106_code_versions") in _constraints(url)
    _assert_partitions_indexed(url)
    # progress: from what was done to the whole district, never backwards
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] >= PARCELS
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_killed_build_is_invisible_and_the_next_run_completes_it(
        cluster: EmbeddedCluster, names: dict[str, str], test_settings: Settings,
        one_worker: dict[str, str], tmp_path: Path) -> None:
    name = names["cut"]
    staging = cluster.url(f"{name}_building")
    script = tmp_path / "killable.py"
    script.write_text(_KILLABLE)
    proc = subprocess.Popen(
        [sys.executable, str(script), cluster.url(name), str(test_settings.data_dir),
         str(PARCELS), str(SEED), str(CHUNK)], cwd=PROJECT_ROOT, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    done = 0
    deadline = time.monotonic() + 120
    try:
        while done < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                with psycopg.connect(staging) as conn:
                    done = conn.execute("SELECT count(*) FROM demo_build.chunk").fetchone()[0]  # type: ignore[index]
            except psycopg.Error:
                continue
    finally:
        os.killpg(proc.pid, signal.SIGKILL)     # the builder and its workers, mid-load
        proc.wait(30)
    assert done >= 3, "the build did not get going"
    with psycopg.connect(staging) as conn:
        cut_at = conn.execute("SELECT count(*) FROM demo_build.chunk").fetchone()[0]  # type: ignore[index]
    total = len(range(0, len(plan(PARCELS, SEED)), CHUNK))
    assert 3 <= cut_at < total
    assert not _exists(cluster, name)      # nothing half-built under the register's name

    report = build(cluster.url(name), load_cipher(test_settings), PARCELS, SEED, workers=2,
                   chunk_blocks=CHUNK)
    assert report.resumed_chunks >= cut_at
    assert not _exists(cluster, f"{name}_building")
    with psycopg.connect(cluster.url(name)) as conn:
        assert register_fingerprint(conn) == one_worker
    assert _constraints(cluster.url(name)) == _constraints(cluster.url(names["one"]))
    _assert_partitions_indexed(cluster.url(name))


def test_another_build_in_the_staging_database_starts_again(
        cluster: EmbeddedCluster, test_settings: Settings) -> None:
    """A staging database left by a build of another district is dropped, not resumed."""
    name = f"scale_other_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}_building"')
        with psycopg.connect(cluster.url(f"{name}_building"), autocommit=True) as conn:
            conn.execute("CREATE SCHEMA demo_build; CREATE TABLE demo_build.meta (parcels "
                         "integer, seed bigint, chunk_blocks integer, change_id bigint)")
            conn.execute("INSERT INTO demo_build.meta VALUES (99, 1, 16, 1)")
        report = build(cluster.url(name), load_cipher(test_settings), 300, SEED, workers=1)
        assert report.resumed_chunks == 0 and report.stats.parcels >= 300
    finally:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            for n in (name, f"{name}_building"):
                admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def test_cli_builds_with_workers_and_shows_progress(fresh_db: str, tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "api.cli", "demo", "--scale", "1500", "--workers", "2",
         "--no-serve"], capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": fresh_db, "CADASTRE_DATA_DIR": str(tmp_path),
             "COLUMNS": "160"})
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    assert "演示数据 demo --scale 1500" in out and "ETA" in out
    assert "with 2 workers" in out and "disk use" in out and "cad.unit" in out
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) >= 1500 FROM cad.parcel").fetchone() == (True,)
    again = subprocess.run(
        [sys.executable, "-m", "api.cli", "demo", "--scale", "1500", "--workers", "2",
         "--no-serve"], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": fresh_db, "CADASTRE_DATA_DIR": str(tmp_path)})
    assert again.returncode == 0 and "already loaded" in again.stdout
