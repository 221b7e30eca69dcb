"""A database in the layout before migration 0024 (built by the earlier migrations) holding a
given district: the partition migration's tests convert it in place."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from cadastre.store.migrate import MIGRATIONS_DIR, migrate

SCHEMAS = ("cad", "pii", "auth", "audit", "reg", "share", "xchg")


def migrate_before(url: str, version: int, folder: Path) -> None:
    """Apply the migrations numbered below ``version`` only."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) < version:
            shutil.copy(path, folder / path.name)
    migrate(url, folder)


def _tables(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT c.oid::regclass::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
        (list(SCHEMAS),))]


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", (table,))]


def copy_register(source: str, target: str) -> None:
    """Every row of every table of ``target``'s schemas, read from the same table of
    ``source`` (the columns ``target`` has), and the sequences where ``source`` left them.
    Foreign keys and triggers are off while copying (the rows are consistent in ``source``)."""
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        dst.execute("SET session_replication_role = replica")
        tables = _tables(dst)
        dst.execute(f"TRUNCATE {', '.join(tables)}")
        for table in tables:
            cols = ", ".join(_columns(dst, table))
            with src.cursor().copy(f"COPY (SELECT {cols} FROM {table}) TO STDOUT") as out, \
                    dst.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as into:
                for block in out:
                    into.write(block)
        for seq, value in src.execute(
                "SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences "
                "WHERE schemaname = ANY(%s) AND last_value IS NOT NULL", (list(SCHEMAS),)):
            dst.execute("SELECT setval(%s, %s)", (seq, value))
        dst.commit()
