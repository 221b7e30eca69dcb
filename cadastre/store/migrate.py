"""Versioned, forward-only schema migrations.

Files ``migrations/NNNN_name.sql`` are applied in order, each in its own transaction, under an
advisory lock so concurrent starters do not race. An applied file must never change: its checksum
is recorded and a mismatch stops everything (write a new migration instead).

Numbers are handed out to branches before they are written, so the sequence may have gaps (a
branch that did not need its number) and a lower number may arrive after a higher one was
applied: every known migration that is not applied yet is pending and applied in number order.
Two files with one number are refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cadastre.errors import MigrationError
from cadastre.store.db import connect

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 7_346_001
OWNED_SCHEMAS = ("cad", "pii", "auth", "audit", "reg", "share")   # every schema the
# migrations create (dropped by `cadastre demo --reset`)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError("MIGRATION_NAME", f"bad migration file name: {path.name}")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions) or 0 in versions:
        raise MigrationError("MIGRATION_SEQUENCE",
                             f"migration numbers must be unique and start at 1: {versions}")
    return found


def _ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS public.schema_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            checksum   text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def applied(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    exists = conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()
    if not exists or exists[0] is None:
        return {}
    rows = conn.execute("SELECT version, name, checksum FROM public.schema_migrations").fetchall()
    return {v: (n, c) for v, n, c in rows}


def pending(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    done = applied(conn)
    known = available(directory)
    _check_history(done, known)
    return [m for m in known if m.version not in done]


def _check_history(done: dict[int, tuple[str, str]], known: list[Migration]) -> None:
    by_version = {m.version: m for m in known}
    for version, (name, checksum) in sorted(done.items()):
        mig = by_version.get(version)
        if mig is None:
            raise MigrationError(
                "DATABASE_NEWER",
                f"数据库的迁移版本 {version} ({name}) 比本程序新 / the database has migration "
                f"{version} ({name}) that this program does not know; upgrade the program",
            )
        if mig.checksum != checksum:
            raise MigrationError(
                "MIGRATION_MODIFIED",
                f"已应用的迁移 {mig.path.name} 被修改 / applied migration {mig.path.name} was "
                "modified; migrations are forward-only, add a new file instead",
            )


def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every pending migration; returns those applied (empty when up to date)."""
    done_now: list[Migration] = []
    with connect(url) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            _ensure_table(conn)
        while True:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                todo = pending(conn, directory)
                if not todo:
                    break
                mig = todo[0]
                try:
                    conn.execute(mig.sql)  # type: ignore[arg-type]  # multi-statement, no params
                except psycopg.Error as exc:
                    raise MigrationError(
                        "MIGRATION_FAILED", f"migration {mig.path.name} failed: {exc}"
                    ) from exc
                conn.execute(
                    "INSERT INTO public.schema_migrations (version, name, checksum) "
                    "VALUES (%s, %s, %s)",
                    (mig.version, mig.name, mig.checksum),
                )
                done_now.append(mig)
    return done_now


def reset(url: str) -> None:
    """Drop everything the migrations created (the demo's ``--reset``); migrate again after."""
    with connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        for schema in OWNED_SCHEMAS:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute("DROP TABLE IF EXISTS public.schema_migrations")
