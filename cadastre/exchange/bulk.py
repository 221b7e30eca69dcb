"""Bulk writing of a large import: memory for the transaction and secondary indexes set aside.

A large accept (an existing register loaded into a new server) inserts more rows into a table
than the table holds. Maintaining each secondary index row by row then costs far more than
building it once afterwards (random page writes of B-trees on random keys, GiST and GIN inserts),
so the plain indexes of such a table — not the primary key, unique or exclusion indexes, which
keep the register correct while it is written — are dropped in the accept's transaction and
rebuilt before it commits. DDL is transactional: a failed accept rolls the drop back with
everything else. The price: the dropped tables are locked (ACCESS EXCLUSIVE) until the commit,
so readers of the register wait for a large import; a small one leaves the indexes alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

MIN_ROWS = 50_000          # a table receiving fewer rows keeps its indexes
WORK_MEM = "256MB"         # sorts and hash joins of the big statements stay in memory
MAINTENANCE_WORK_MEM = "1GB"   # index rebuilds


def tune(conn: psycopg.Connection) -> None:
    """Memory settings for the current transaction only."""
    conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    conn.execute(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")


def defer_indexes(conn: psycopg.Connection, incoming: Mapping[str, int],
                  min_rows: int = MIN_ROWS) -> list[str]:
    """Drop the plain indexes of each table that will receive at least ``min_rows`` rows and at
    least as many as it holds; their definitions, to be passed to :func:`rebuild`."""
    definitions: list[str] = []
    for table, rows in incoming.items():
        held = conn.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class "
                            "WHERE oid = %s::regclass", (table,)).fetchone()[0]  # type: ignore[index]
        if rows < min_rows or rows < held:
            continue
        for name, ddl in conn.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
                "FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT i.indisunique "
                "AND NOT i.indisprimary AND NOT i.indisexclusion AND NOT EXISTS (SELECT 1 "
                "FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
                "ORDER BY i.indexrelid", (table,)).fetchall():
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))   # name from the catalog
            definitions.append(ddl)
    return definitions


def rebuild(conn: psycopg.Connection, definitions: list[str]) -> None:
    for ddl in definitions:
        conn.execute(ddl)     # pg_get_indexdef: the catalog's own text
