"""Bulk loads into an empty registry: GiST/GIN indexes and exclusion constraints are dropped
before and rebuilt after (one index build is much faster than millions of inserts into it).
A partitioned table's index is dropped and rebuilt on the table (its partitions' indexes go and
come with it); exclusion constraints live on the partitions themselves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

SCHEMAS = ["cad", "pii"]


def recreate_sql(indexdef: str) -> str:
    """``pg_get_indexdef`` of an index, as the statement that makes it again with its
    partitions' indexes: the definition of a partitioned table's index reads ``ON ONLY``,
    which would make the parent index alone (invalid, and no partition indexed)."""
    return indexdef.replace(" ON ONLY ", " ON ", 1)


@contextmanager
def deferred_indexes(cur: psycopg.Cursor) -> Iterator[None]:
    constraints = cur.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
           FROM pg_constraint WHERE contype = 'x'
             AND connamespace IN (SELECT oid FROM pg_namespace WHERE nspname = ANY(%s))""",
        (SCHEMAS,)).fetchall()
    indexes = cur.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_am am ON am.oid = c.relam
           WHERE c.relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname = ANY(%s))
             AND am.amname IN ('gist', 'gin') AND NOT c.relispartition
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""",
        (SCHEMAS,)).fetchall()
    for table, name, _ in constraints:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f"DROP INDEX {name}")
    yield
    for _, definition in indexes:
        cur.execute(recreate_sql(definition))
    for table, name, definition in constraints:
        cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
