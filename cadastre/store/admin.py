"""Operations the CLI and the server share: bring the database up, migrate, load the demo, count."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from cadastre.settings import Settings
from cadastre.store import migrate as migrations
from cadastre.store.db import ServerInfo, check_versions, connect, database_url, server_info

log = logging.getLogger(__name__)

COUNTED_TABLES = {
    "parcels": "SELECT count(*) FROM cad.parcel WHERE valid_to IS NULL",
    "parcel_versions": "SELECT count(*) FROM cad.parcel",
    "boundary_points": "SELECT count(*) FROM cad.boundary_point WHERE valid_to IS NULL",
    "buildings": "SELECT count(*) FROM cad.building WHERE valid_to IS NULL",
    "floors": "SELECT count(*) FROM cad.floor WHERE valid_to IS NULL",
    "units": "SELECT count(*) FROM cad.unit WHERE valid_to IS NULL",
    "parties": "SELECT count(*) FROM pii.party",
    "rights": "SELECT count(*) FROM cad.right_record",
    "rights_current": "SELECT count(*) FROM cad.right_record WHERE status = 1",
}


@dataclass(frozen=True)
class DatabaseReady:
    url: str
    info: ServerInfo
    applied: list[str]


def ensure_database(settings: Settings, migrate: bool = True) -> DatabaseReady:
    """Start the embedded cluster if it is the one in use, check versions, apply migrations."""
    url = database_url(settings, start=True)
    with connect(url) as conn:
        info = server_info(conn)
    check_versions(info, settings.database.min_server_version,
                   settings.database.min_postgis_version)
    applied = [m.path.name for m in migrations.migrate(url)] if migrate else []
    if migrate:   # the audit log's monthly partitions, two years ahead (migration 0027)
        with connect(url) as conn:
            conn.execute("SELECT audit.ensure_months(24)")
            conn.commit()
    return DatabaseReady(url, info, applied)


def registry_counts(conn: psycopg.Connection) -> dict[str, int]:
    if conn.execute("SELECT to_regclass('cad.parcel')").fetchone() == (None,):
        return {}
    out: dict[str, int] = {}
    for name, sql in COUNTED_TABLES.items():
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        out[name] = int(row[0]) if row else 0
    return out


def demo_loaded(conn: psycopg.Connection) -> bool:
    if conn.execute("SELECT to_regclass('cad.change_set')").fetchone() == (None,):
        return False
    return conn.execute("SELECT exists (SELECT 1 FROM cad.change_set WHERE kind = 'demo')"
                        ).fetchone() == (True,)


def database_size(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0
