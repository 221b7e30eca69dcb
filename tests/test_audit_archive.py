"""The audit log by month (migration 0027, issue #18): the conversion keeps the chain, old months
are archived (to files or detached tables) under sealed records, and `cadastre audit verify`
still checks the whole chain — a tampered record, file or month is named; a broken month is
never archived."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from cadastre import audit
from cadastre.audit.archive import archive_before, verify_file
from cadastre.errors import Conflict, InvalidInput, NotFound
from tests.partition_support import migrate_before

KEY = b"audit-archive-test-key-32-bytes!"
# months in the past of any run of this suite (the log's months are Beijing months)
MONTHS = {"2025-01": 5, "2025-02": 3, "2025-04": 4}


HEAD = "SELECT seq, row_hash FROM audit.head"


def _raw_append(conn: psycopg.Connection, key: bytes, at: datetime, target: str,
                head_sql: str = HEAD) -> None:
    """A sealed row at a chosen time (the appender stamps now(); old months need old rows)."""
    head = conn.execute(head_sql).fetchone()
    seq, prev = (head[0] + 1, bytes(head[1])) if head else (1, audit.GENESIS)
    entry = audit.Entry(actor="00000000-0000-0000-0000-000000000001", role="registrar",
                        action="unit.read", target=target, result_count=1)
    conn.execute(audit._INSERT, audit._row(seq, at, entry, prev,
                                           audit.seal(key, prev, seq, at, entry)))


def _fill(conn: psycopg.Connection, key: bytes = KEY, head_sql: str = HEAD) -> None:
    for month, n in MONTHS.items():
        y, m = map(int, month.split("-"))
        start = datetime(y, m, 1, tzinfo=audit.BEIJING)
        for i in range(n):
            _raw_append(conn, key, start + timedelta(days=i, hours=1), f"{month}:{i}", head_sql)
    conn.commit()


@pytest.fixture()
def log(fresh_db: str) -> str:
    with psycopg.connect(fresh_db) as conn:
        _fill(conn)
        conn.execute("SELECT audit.ensure_months(24)")     # rows waiting in default move out
        for i in range(2):                                 # and two of today
            audit.append(conn, KEY, audit.Entry("cli:test", "operator", "test.now", str(i)))
        conn.commit()
    return fresh_db


def _partitions(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'audit.log'::regclass")}


def test_rows_live_in_their_month_and_the_head_follows(log: str) -> None:
    with psycopg.connect(log) as conn:
        where = dict(conn.execute("SELECT tableoid::regclass::text, count(*) FROM audit.log "
                                  "GROUP BY 1").fetchall())
        assert where["audit.log_202501"] == 5 and where["audit.log_202504"] == 4
        assert "audit.log_default" not in where
        head = conn.execute("SELECT seq FROM audit.head").fetchone()[0]
        assert head == sum(MONTHS.values()) + 2
        assert audit.verify(conn, KEY).ok


def test_archive_to_files_keeps_the_chain_verifiable(log: str, tmp_path: Path) -> None:
    with psycopg.connect(log) as conn:
        done = archive_before(conn, KEY, "2025-03", "cli:test", tmp_path)
        assert [(m.month, m.rows, m.first_seq, m.last_seq) for m in done] == [
            ("2025-01", 5, 1, 5), ("2025-02", 3, 6, 8)]
        assert {"log_202501", "log_202502"}.isdisjoint(_partitions(conn))
        assert "log_202504" in _partitions(conn)
        # the partitions are gone, the files hold the rows, the records vouch for them
        assert conn.execute("SELECT to_regclass('audit.log_202501')").fetchone()[0] is None
        with gzip.open(tmp_path / "audit-2025-01.jsonl.gz", "rt") as fh:
            assert [json.loads(line)["seq"] for line in fh] == [1, 2, 3, 4, 5]
        record = json.loads((tmp_path / "audit-2025-02.json").read_text())
        assert record["first_seq"] == 6 and record["rows"] == 3
        v = audit.verify(conn, KEY)
        assert v.ok and v.archived_rows == 8 and v.archived_months == ("2025-01", "2025-02")
        assert v.rows == 4 + 2 + 1          # April, today's two and the archive's own row
        last = conn.execute("SELECT action, result_count FROM audit.log ORDER BY seq DESC "
                            "LIMIT 1").fetchone()
        assert last == ("audit.archive", 8)
        for f in ("audit-2025-01.jsonl.gz", "audit-2025-02.jsonl.gz"):
            assert verify_file(conn, KEY, tmp_path / f).ok
        # a file altered after the archive no longer matches its sealed record
        bad = tmp_path / "audit-2025-02.jsonl.gz"
        lines = gzip.decompress(bad.read_bytes()).decode().splitlines()
        row = json.loads(lines[1])
        row["target"] = "330106001001GB99999F00010001"
        lines[1] = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        bad.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        v = verify_file(conn, KEY, bad)
        assert not v.ok and v.first_bad_seq == 7 and "altered" in (v.reason or "")
        # the next archive continues from the sealed records
        more = archive_before(conn, KEY, "2025-05", "cli:test", tmp_path)
        assert [(m.month, m.rows) for m in more] == [("2025-03", 0), ("2025-04", 4)]
        assert audit.verify(conn, KEY).archived_rows == 12


def test_archive_without_a_folder_detaches_tables_for_pg_dump(log: str) -> None:
    with psycopg.connect(log) as conn:
        done = archive_before(conn, KEY, "2025-02", "cli:test")
        assert [(m.month, m.table) for m in done] == [("2025-01", "audit.archived_202501")]
        assert conn.execute("SELECT count(*) FROM audit.archived_202501").fetchone()[0] == 5
        assert conn.execute("SELECT detached_as FROM audit.archive").fetchone()[0] == \
            "audit.archived_202501"
        assert audit.verify(conn, KEY).ok
        # nothing left before that month: a clear error
        with pytest.raises(NotFound) as e:
            archive_before(conn, KEY, "2025-02", "cli:test")
        assert e.value.code == "AUDIT_NOTHING_TO_ARCHIVE"


@pytest.mark.parametrize("tamper, reason", [
    ("UPDATE audit.archive SET rows = rows - 1, last_seq = last_seq - 1 "
     "WHERE month = (SELECT min(month) FROM audit.archive)", "altered"),
    ("DELETE FROM audit.archive WHERE month = (SELECT max(month) FROM audit.archive)",
     "missing"),
    ("DELETE FROM audit.archive WHERE month = (SELECT min(month) FROM audit.archive)",
     "do not continue"),
])
def test_a_tampered_archive_record_breaks_verification(log: str, tmp_path: Path, tamper: str,
                                                       reason: str) -> None:
    with psycopg.connect(log) as conn:
        archive_before(conn, KEY, "2025-03", "cli:test", tmp_path)
        conn.execute(tamper)
        conn.commit()
        v = audit.verify(conn, KEY)
        assert not v.ok and reason in (v.reason or ""), v


def test_a_broken_month_is_never_archived(log: str, tmp_path: Path) -> None:
    with psycopg.connect(log) as conn:
        conn.execute("UPDATE audit.log SET target = 'x' WHERE seq = 7")
        conn.commit()
        with pytest.raises(Conflict) as e:
            archive_before(conn, KEY, "2025-03", "cli:test", tmp_path)
        assert e.value.code == "AUDIT_CHAIN_BROKEN" and "2025-02" in e.value.message
        # nothing changed: partitions attached, no record, no file
        assert {"log_202501", "log_202502"} <= _partitions(conn)
        assert conn.execute("SELECT count(*) FROM audit.archive").fetchone()[0] == 0
        assert list(tmp_path.iterdir()) == []
        # nor the current month, nor a malformed one
        for month, code in (("2999-01", "AUDIT_MONTH_CURRENT"), ("2025-13", "AUDIT_MONTH")):
            with pytest.raises(InvalidInput) as bad:
                archive_before(conn, KEY, month, "cli:test")
            assert bad.value.code == code


def test_deleting_the_newest_rows_is_seen_after_the_next_append(log: str) -> None:
    with psycopg.connect(log) as conn:
        top = conn.execute("SELECT max(seq) FROM audit.log").fetchone()[0]
        conn.execute("DELETE FROM audit.log WHERE seq = %s", (top,))
        audit.append(conn, KEY, audit.Entry("cli:test", "operator", "test.after"))
        conn.commit()
        v = audit.verify(conn, KEY)
        assert not v.ok and v.first_bad_seq == top and "missing" in (v.reason or "")


def test_migration_converts_an_existing_log_in_place(cluster, tmp_path: Path) -> None:
    name = "auditmonths"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = cluster.url(name)
    try:
        migrate_before(url, 27, tmp_path / "migrations")
        with psycopg.connect(url) as conn:
            _fill(conn, head_sql="SELECT seq, row_hash FROM audit.log ORDER BY seq DESC LIMIT 1")
            before = conn.execute("SELECT seq, row_hash FROM audit.log ORDER BY seq").fetchall()
        from cadastre.store.migrate import migrate

        migrate(url)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT seq, row_hash FROM audit.log ORDER BY seq"
                                ).fetchall() == before
            assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'audit.log'::regclass"
                                ).fetchone()[0] == "p"
            assert {"log_202501", "log_202502", "log_202503", "log_202504"} <= _partitions(conn)
            now = datetime.now(UTC).astimezone(audit.BEIJING)
            assert f"log_{now.year + 2}{now.month:02d}" in _partitions(conn)  # two years ahead
            audit.append(conn, KEY, audit.Entry("cli:test", "operator", "after.migration"))
            conn.commit()
            v = audit.verify(conn, KEY)
            assert v.ok and v.rows == len(before) + 1
    finally:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_cli_archive_and_verify_archive(log: str, test_settings, tmp_path: Path) -> None:
    from cadastre.access.pii import audit_key
    from cadastre.settings import Settings
    from tests.conftest import app_data_dir

    data_dir = app_data_dir(test_settings, tmp_path / "data")
    key = audit_key(Settings(storage={"data_dir": data_dir}))
    with psycopg.connect(log) as conn:     # the chain under this data dir's key
        conn.execute("TRUNCATE audit.log")
        conn.commit()
        _fill(conn, key)
        conn.execute("SELECT audit.ensure_months(24)")
        conn.commit()
    env = {**os.environ, "DATABASE_URL": log, "COLUMNS": "200",
           "CADASTRE_DATA_DIR": str(data_dir)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "api.cli", "audit", *args],
                              capture_output=True, text=True, timeout=180, env=env)

    out = tmp_path / "archive"
    r = cli("archive", "--before", "2025-03", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "2025-01: 5 rows, seq 1..5" in r.stdout and "audit-2025-02.jsonl.gz" in r.stdout
    r = cli("verify", "--json")
    assert r.returncode == 0, r.stdout
    result = json.loads(r.stdout)
    assert result["ok"] and result["archived_rows"] == 8
    assert cli("verify-archive", str(out / "audit-2025-01.jsonl.gz")).returncode == 0
    (out / "audit-2025-01.jsonl.gz").write_bytes(gzip.compress(b'{"seq": 1}\n'))
    r = cli("verify-archive", str(out / "audit-2025-01.jsonl.gz"))
    assert r.returncode == 1 and "NOT match" in r.stdout
    r = cli("archive", "--before", "2025-13")
    assert r.returncode == 1 and "AUDIT_MONTH" in r.stderr
