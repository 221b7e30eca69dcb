"""Backups of the register database, and their restore.

A backup is a folder: ``database.dump`` (``pg_dump`` custom format: every schema, the register,
the audit chain, the applied migrations) and ``manifest.json`` (when, from which server and
schema version, and the register's fingerprint taken in the very snapshot that was dumped).
With ``keys`` it also holds a copy of ``secrets.json`` (PII, look-up, token and audit keys):
such a backup must be kept as safe as the keys themselves (see docs/operations.md).

pg_dump rather than pg_basebackup: the register is small next to what a physical copy carries
(indexes, bloat, WAL), a logical dump restores into any PostgreSQL of the same or a newer major
version (upgrades go through it), into the embedded cluster or a server of one's own, and it works
with ``DATABASE_URL`` without replication rights. Point-in-time recovery needs WAL archiving on
top, which the guide describes for a server of one's own.

Restore goes into an empty database only, in one transaction, and is checked: the restored
register's fingerprint must equal the manifest's, else nothing is kept.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cadastre.errors import CadastreError
from cadastre.store.cluster import find_postgres

MANIFEST = "manifest.json"
DUMP = "database.dump"
SECRETS = "secrets.json"
FORMAT = 1

#: the register: spatial units, registration records, parties, lineage, and the audit chain
REGISTER_TABLES = ("cad.parcel", "cad.boundary_point", "cad.boundary_line", "cad.building",
                   "cad.floor", "cad.unit", "cad.lineage", "cad.right_record", "pii.party",
                   "audit.log")


class BackupError(CadastreError):
    code = "BACKUP_FAILED"


@dataclass(frozen=True)
class Manifest:
    format: int
    created_at: str
    server_version: str
    schema_version: int
    fingerprint: dict[str, str]
    with_keys: bool

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.is_file() or not (folder / DUMP).is_file():
            raise BackupError("BACKUP_NOT_FOUND",
                              f"不是备份目录 / not a backup folder: {folder} "
                              f"(needs {MANIFEST} and {DUMP})")
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise BackupError("BACKUP_FORMAT", f"未知备份格式 / unknown backup format "
                              f"{data.get('format')!r}")
        return cls(**data)


def register_fingerprint(conn: psycopg.Connection) -> dict[str, str]:
    """Row count and a content hash of every register table (order-independent)."""
    out = {}
    for table in REGISTER_TABLES:
        schema, name = table.split(".")
        row = conn.execute(sql.SQL(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(md5(x::text), '' "
            "ORDER BY md5(x::text))), '') FROM {} x").format(sql.Identifier(schema, name))
        ).fetchone()
        out[table] = str(row[0]) if row else ""
    return out


def _tool(name: str) -> str:
    """pg_dump / pg_restore of the newest installed PostgreSQL (never older than the server)."""
    try:
        return str(find_postgres().bindir / name)
    except CadastreError:
        found = shutil.which(name)
        if found is None:
            raise BackupError("BACKUP_TOOL_MISSING", f"找不到 {name} / {name} not found "
                              "(apt-get install postgresql-client)") from None
        return found


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"{what}_FAILED",
                          f"{cmd[0].rsplit('/', 1)[-1]} 失败 / failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-1500:]}")


def backup(url: str, folder: Path, secrets: Path | None = None) -> Manifest:
    """Dump the database at ``url`` into the new folder ``folder``; with ``secrets`` (the data
    dir's secrets.json) the keys are copied along (mode 0600)."""
    if folder.exists() and any(folder.iterdir()):
        raise BackupError("BACKUP_TARGET_EXISTS",
                          f"备份目录已存在且非空 / the backup folder is not empty: {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / (DUMP + ".partial")
    with psycopg.connect(url) as conn:
        # the fingerprint and the dump read one snapshot: the manifest describes the dump exactly
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()
        version = conn.execute("SELECT current_setting('server_version'), "
                               "(SELECT max(version) FROM public.schema_migrations)").fetchone()
        assert snapshot is not None and version is not None
        fingerprint = register_fingerprint(conn)
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
              f"--snapshot={snapshot[0]}", f"--file={partial}", f"--dbname={url}"], "BACKUP")
        conn.rollback()
    partial.rename(folder / DUMP)
    if secrets is not None:
        target = folder / SECRETS
        shutil.copyfile(secrets, target)
        os.chmod(target, 0o600)
    manifest = Manifest(FORMAT, datetime.now(UTC).isoformat(timespec="seconds"), version[0],
                        int(version[1] or 0), fingerprint, secrets is not None)
    (folder / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2, ensure_ascii=False),
                                   encoding="utf-8")
    return manifest


def is_empty(conn: psycopg.Connection) -> bool:
    """No register schema and no applied migrations: a database a backup may go into."""
    row = conn.execute("SELECT to_regnamespace('cad') IS NULL AND "
                       "to_regclass('public.schema_migrations') IS NULL").fetchone()
    return bool(row and row[0])


def restore(folder: Path, url: str) -> Manifest:
    """Restore the backup in ``folder`` into the empty database at ``url`` (one transaction),
    then compare the register's fingerprint with the manifest's."""
    manifest = Manifest.read(folder)
    with psycopg.connect(url) as conn:
        if not is_empty(conn):
            raise BackupError("RESTORE_TARGET_NOT_EMPTY",
                              "目标数据库非空，恢复只写入空库 / the target database is not empty: "
                              "restore goes into an empty database only")
    _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
          "--single-transaction", f"--dbname={url}", str(folder / DUMP)], "RESTORE")
    with psycopg.connect(url) as conn:
        found = register_fingerprint(conn)
    if found != manifest.fingerprint:
        differ = sorted(t for t in REGISTER_TABLES
                        if found.get(t) != manifest.fingerprint.get(t))
        raise BackupError("RESTORE_MISMATCH", "恢复后的登记簿与备份清单不符 / the restored "
                          f"register differs from the manifest: {', '.join(differ)}")
    return manifest


def restore_keys(folder: Path, secrets: Path) -> bool:
    """Put the backup's keys at ``secrets`` (the data dir's secrets.json) if there are none
    there; refuse to overwrite different keys. Returns whether keys were copied."""
    source = folder / SECRETS
    if not source.is_file():
        return False
    if secrets.exists():
        if json.loads(secrets.read_text()) != json.loads(source.read_text()):
            raise BackupError("RESTORE_KEYS_DIFFER",
                              f"{secrets} 已有不同的密钥，未覆盖 / holds other keys; not "
                              "overwritten (move it away to use the backup's keys)")
        return False
    secrets.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, secrets)
    os.chmod(secrets, 0o600)
    return True


def describe(manifest: Manifest) -> dict[str, Any]:
    """What the CLI prints about a backup."""
    rows = {t: int(v.split(":", 1)[0]) for t, v in manifest.fingerprint.items()}
    return {"created_at": manifest.created_at, "server_version": manifest.server_version,
            "schema_version": manifest.schema_version, "with_keys": manifest.with_keys,
            "rows": rows}
