"""Database access: which server to use, connections, version checks."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from cadastre.errors import DatabaseUnavailable, DatabaseVersionError
from cadastre.settings import Settings
from cadastre.store.cluster import EmbeddedCluster

log = logging.getLogger(__name__)


def embedded_cluster(settings: Settings) -> EmbeddedCluster:
    return EmbeddedCluster(
        settings.data_dir,
        shared_buffers=settings.database.embedded_shared_buffers,
        port=settings.database.embedded_port,
    )


def database_url(settings: Settings, start: bool = True) -> str:
    """The URL in force: ``DATABASE_URL`` if set, else the embedded cluster (started if asked)."""
    if settings.database.url is not None:
        return settings.database.url.get_secret_value()
    cluster = embedded_cluster(settings)
    if start:
        cluster.start()
    return cluster.url()


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    info = conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def connect(url: str, autocommit: bool = False, **options: str) -> psycopg.Connection:
    """A connection; ``options`` are server settings for its session (``-c name=value``)."""
    extra: dict[str, Any] = (
        {"options": " ".join(f"-c {k}={v}" for k, v in options.items())} if options else {})
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name="cadastre",
                               connect_timeout=10, **extra)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(
            "DATABASE_UNREACHABLE",
            f"无法连接数据库 {redact(url)} / cannot connect to the database at {redact(url)}: "
            f"{reason}",
        ) from exc


# connections inside a ``batch_item`` block (how deep)
_ITEMS: weakref.WeakKeyDictionary[psycopg.Connection, int] = weakref.WeakKeyDictionary()


@contextmanager
def batch_item(conn: psycopg.Connection) -> Iterator[None]:
    """One all-or-nothing item of a batch: a savepoint around the block, and the steps inside
    make none of their own (``atomic``). Whatever fails inside fails the whole item, which rolls
    back here; a step's savepoint would only cost two more round trips."""
    with conn.transaction():
        _ITEMS[conn] = _ITEMS.get(conn, 0) + 1
        try:
            yield
        finally:
            _ITEMS[conn] -= 1


@contextmanager
def atomic(conn: psycopg.Connection) -> Iterator[None]:
    """The block all or nothing: ``conn.transaction()`` (a transaction, or a savepoint inside
    one), except inside a ``batch_item``, whose savepoint already covers it. Only for blocks
    whose failure nobody catches and carries on from within the same item."""
    if _ITEMS.get(conn):
        yield
    else:
        with conn.transaction():
            yield


def one(conn: psycopg.Connection, sql: str, params: Any = None) -> tuple[Any, ...]:
    """The one row ``sql`` returns: a statement that always returns a row (an aggregate, or a
    look-up of a row known to exist); no row is a bug, not bad input."""
    row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    if row is None:
        raise LookupError("the statement returned no row")
    return row


def scalar(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    """The first column of :func:`one`."""
    return one(conn, sql, params)[0]


@dataclass(frozen=True)
class ServerInfo:
    server_version: str
    server_version_num: int
    postgis_version: str | None


def server_info(conn: psycopg.Connection) -> ServerInfo:
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int"
    ).fetchone()
    assert row is not None
    postgis: str | None = None
    ext = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"
    ).fetchone()
    if ext:
        postgis = conn.execute("SELECT postgis_lib_version()").fetchone()[0]  # type: ignore[index]
    else:
        avail = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
        ).fetchone()
        postgis = avail[0] if avail else None
    return ServerInfo(row[0], row[1], postgis)


def _version_tuple(v: str) -> tuple[int, ...]:
    parts: list[int] = []
    for p in v.split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_versions(info: ServerInfo, min_server: int = 140000, min_postgis: str = "3.1") -> None:
    """Refuse servers older than PostgreSQL 14 / PostGIS 3.1, with a clear message."""
    if info.server_version_num < min_server:
        raise DatabaseVersionError(
            "POSTGRES_TOO_OLD",
            f"PostgreSQL 版本过低：{info.server_version}，至少需要 {min_server // 10000} / "
            f"PostgreSQL {info.server_version} is too old; "
            f"{min_server // 10000} or newer is needed",
        )
    if info.postgis_version is None:
        raise DatabaseVersionError(
            "POSTGIS_MISSING",
            "数据库服务器未安装 PostGIS / the database server has no PostGIS extension available",
        )
    if _version_tuple(info.postgis_version) < _version_tuple(min_postgis):
        raise DatabaseVersionError(
            "POSTGIS_TOO_OLD",
            f"PostGIS 版本过低：{info.postgis_version}，至少需要 {min_postgis} / "
            f"PostGIS {info.postgis_version} is too old; {min_postgis} or newer is needed",
        )
