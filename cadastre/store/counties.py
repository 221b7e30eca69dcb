"""Counties as partitions (migration 0024): add a county's partitions, detach one for archive,
list them with their row counts.

The large versioned tables (units, rights with their holders and details, boundary points) are
``PARTITION BY LIST (county_code)``. A county without partitions of its own is not refused: its
rows wait in the ``*_default`` partitions, and ``add`` moves them into the county's new
partitions. ``detach`` takes a county out of the live register: its partitions become plain
tables ``cad.<table>_<county>`` (dump them with pg_dump, then drop them), the tiles over it are
invalidated and its units' status rows go.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from cadastre import audit
from cadastre.codes import is_valid_county_code
from cadastre.errors import Conflict, InvalidInput, NotFound

ROW_TABLES = ("unit", "boundary_point", "right_record")   # the tables counted by ``list``


@dataclass(frozen=True)
class County:
    code: str              # 6 digits, or "default" for the catch-all partitions
    attached: bool         # part of the live register
    rows: dict[str, int]   # table → rows (units, boundary points, rights)


def _check(code: str) -> None:
    if not is_valid_county_code(code):
        raise InvalidInput("COUNTY_CODE", "区县代码须为6位行政区划代码 / a county code is the "
                                          "6-digit administrative division code")


def _actor_entry(action: str, code: str, count: int, actor: str) -> audit.Entry:
    return audit.Entry(actor=actor, role="admin", action=action, target=f"county:{code}",
                       result_count=count)


def _analyze_parents(conn: psycopg.Connection) -> None:
    """Statistics of the partitioned tables after their partitions changed (autovacuum analyses
    partitions, never a partitioned parent; the planner's join estimates read the parent's)."""
    for (table,) in conn.execute(
            "SELECT p.partrelid::regclass::text FROM pg_partitioned_table p JOIN pg_class c "
            "ON c.oid = p.partrelid WHERE NOT c.relispartition AND c.relnamespace = "
            "'cad'::regnamespace ORDER BY 1").fetchall():
        conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(table)))


def add(conn: psycopg.Connection, code: str, audit_key: bytes, actor: str = "cli") -> int:
    """Create ``code``'s partitions (those that exist are kept); returns the rows moved in
    from the default partitions."""
    _check(code)
    with conn.transaction():
        row = conn.execute("SELECT cad.county_add(%s)", (code,)).fetchone()
        moved = int(row[0]) if row else 0
        _analyze_parents(conn)
        audit.append(conn, audit_key, _actor_entry("county.add", code, moved, actor))
    return moved


def detach(conn: psycopg.Connection, code: str, audit_key: bytes, actor: str = "cli") -> int:
    """Take ``code`` out of the live register; returns the partitions detached."""
    _check(code)
    if not conn.execute("SELECT 1 FROM pg_inherits WHERE inhparent = 'cad.unit'::regclass "
                        "AND inhrelid = to_regclass(%s)", (f"cad.unit_{code}",)).fetchone():
        raise NotFound("COUNTY_NOT_FOUND", "该区县没有分区 / no partitions for this county")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM cad.certificate WHERE county_code = %s "
                        "AND right_version_id IS NOT NULL LIMIT 1", (code,)).fetchone():
            raise Conflict("COUNTY_HAS_CERTIFICATES",
                           "该区县仍有证书记录，须先归档 / certificates of this county are still "
                           "in the register; archive them first")
        for entity in ("unit", "boundary_point"):    # its tiles change: queue their extent
            conn.execute(sql.SQL(
                "INSERT INTO cad.tile_invalidation (entity, bbox) "
                "SELECT %s, cad.bbox_3857(ST_Extent(geom_3857)::geometry) FROM {} "
                "WHERE valid_to IS NULL HAVING count(*) > 0").format(
                    sql.Identifier("cad", f"{entity}_{code}")), (entity,))
        conn.execute("DELETE FROM cad.unit_status WHERE left(unit_code, 6) = %s", (code,))
        row = conn.execute("SELECT cad.county_detach(%s)", (code,)).fetchone()
        n = int(row[0]) if row else 0
        _analyze_parents(conn)
        audit.append(conn, audit_key, _actor_entry("county.detach", code, n, actor))
        conn.execute("SELECT pg_notify('tile_invalidation', 'unit')")
    return n


def counties(conn: psycopg.Connection) -> list[County]:
    """Every county with partitions (attached or detached and not yet dropped), and the
    default partitions, with their row counts."""
    names = [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'cad' AND c.relkind = 'r' AND c.relname ~ '^unit_([0-9]{6}|default)$' "
        "ORDER BY c.relname")]
    out = []
    for name in names:
        code = name.removeprefix("unit_")
        attached = bool(conn.execute(
            "SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass",
            (f"cad.{name}",)).fetchone())
        rows = {}
        for table in ROW_TABLES:
            r = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier("cad", f"{table}_{code}"))).fetchone()
            rows[table] = int(r[0]) if r else 0
        out.append(County(code, attached, rows))
    return out
