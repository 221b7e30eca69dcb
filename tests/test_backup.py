"""The backup/restore drill of docs/operations.md, as an operator runs it: `cadastre db backup`
of a small register with an audit chain, `cadastre db restore` into a brand-new embedded cluster
in another data dir, and there the same register fingerprint and an audit chain that verifies
with the backed-up keys. A restore never writes into a database that has data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from cadastre.access.pii import audit_key
from cadastre.settings import Settings
from cadastre.store.backup import register_fingerprint
from cadastre.store.cluster import EmbeddedCluster
from tests.conftest import app_data_dir
from tests.support import seal_audit_rows


def cadastre(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "COLUMNS": "200", **env})


@pytest.fixture()
def register(small_district, test_settings: Settings, tmp_path: Path) -> dict:
    """The small district plus 40 audit rows sealed with the test keys."""
    url = small_district("backup")
    data_dir = app_data_dir(test_settings, tmp_path / "source")
    seal_audit_rows(url, audit_key(Settings(storage={"data_dir": data_dir})), 40)
    return {"url": url, "data_dir": data_dir}


def test_backup_and_restore_into_a_new_cluster(register: dict, tmp_path: Path) -> None:
    with psycopg.connect(register["url"]) as conn:
        before = register_fingerprint(conn)
    source = {"DATABASE_URL": register["url"], "CADASTRE_DATA_DIR": str(register["data_dir"])}
    folder = tmp_path / "backup-2026-12-06"
    made = cadastre("db", "backup", str(folder), "--with-keys", env=source)
    assert made.returncode == 0, made.stdout + made.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["fingerprint"] == before
    assert int(before["cad.parcel"].split(":")[0]) >= 60
    assert int(before["audit.log"].split(":")[0]) == 40
    assert oct((folder / "secrets.json").stat().st_mode & 0o777) == "0o600"
    # a second backup into the same folder is refused (nothing is overwritten)
    again = cadastre("db", "backup", str(folder), env=source)
    assert again.returncode == 1 and "BACKUP_TARGET_EXISTS" in again.stderr

    # a new place: an empty data dir, its own embedded cluster, no keys of its own
    target_dir = tmp_path / "restored"
    target = {"CADASTRE_DATA_DIR": str(target_dir)}
    cluster = EmbeddedCluster(target_dir, shared_buffers="32MB")
    try:
        done = cadastre("db", "restore", str(folder), env=target)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "fingerprint matches" in done.stdout
        with psycopg.connect(cluster.url()) as conn:
            assert register_fingerprint(conn) == before
        # the audit chain verifies there, with the keys that came with the backup
        verified = cadastre("audit", "verify", "--json", env=target)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        result = json.loads(verified.stdout)
        assert result["ok"] is True and result["rows"] == 40
        # and nothing is restored over data: the same restore again is refused
        twice = cadastre("db", "restore", str(folder), env=target)
        assert twice.returncode == 1 and "RESTORE_TARGET_NOT_EMPTY" in twice.stderr
        with psycopg.connect(cluster.url()) as conn:
            assert register_fingerprint(conn) == before
    finally:
        cluster.destroy()


def test_restore_refuses_other_keys(register: dict, tmp_path: Path,
                                    test_settings: Settings) -> None:
    source = {"DATABASE_URL": register["url"], "CADASTRE_DATA_DIR": str(register["data_dir"])}
    folder = tmp_path / "b"
    assert cadastre("db", "backup", str(folder), "--with-keys", env=source).returncode == 0
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    (elsewhere / "secrets.json").write_text(json.dumps({"pii_key": "other"}))
    refused = cadastre("db", "restore", str(folder),
                       env={"DATABASE_URL": register["url"], "CADASTRE_DATA_DIR": str(elsewhere)})
    assert refused.returncode == 1 and "RESTORE_KEYS_DIFFER" in refused.stderr
    assert json.loads((elsewhere / "secrets.json").read_text()) == {"pii_key": "other"}
