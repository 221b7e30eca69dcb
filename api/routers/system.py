"""Health: up or down for everyone, versions and counts for staff. (The landing page ``/`` is
the web viewer: ``api/routers/viewer.py``.)"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from psycopg import AsyncConnection

from api.auth import caller
from api.state import app_state
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.store.admin import COUNTED_TABLES

router = APIRouter(tags=["system"])

_COUNT_TTL = 30.0  # counting millions of rows on every probe would be wasteful


async def _scalar(conn: AsyncConnection, sql: str) -> Any:
    cur = await conn.execute(sql)  # type: ignore[arg-type]
    row = await cur.fetchone()
    return row[0] if row else None


async def _collect(conn: AsyncConnection) -> dict[str, Any]:
    counts: dict[str, int] = {}
    if await _scalar(conn, "SELECT to_regclass('cad.parcel') IS NOT NULL"):
        for name, sql in COUNTED_TABLES.items():
            counts[name] = int(await _scalar(conn, sql))
    schema = None
    if await _scalar(conn, "SELECT to_regclass('public.schema_migrations') IS NOT NULL"):
        schema = await _scalar(conn, "SELECT max(version) FROM public.schema_migrations")
    size = int(await _scalar(conn, "SELECT pg_database_size(current_database())"))
    return {"schema_version": schema, "database_bytes": size, "counts": counts}


STAFF = {Role.REGISTRAR, Role.SURVEYOR, Role.AUDITOR}


@router.get("/health", summary="服务健康状态 / health (up or down; details for staff)",
            responses={503: {"description": "数据库不可用 / the database is down"}})
async def health(request: Request,
                 who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    """``{"status": "ok"}`` when the database answers (503 ``DATABASE_UNREACHABLE`` with
    Retry-After when it does not). Staff tokens also get the PostgreSQL/PostGIS versions, schema
    version, database size, registry row counts and the read replicas' state (healthy, lag)."""
    state = app_state(request)
    async with state.pool.connection() as conn:   # bounded by the pool timeout
        await _scalar(conn, "SELECT 1")
        if who.role not in STAFF:
            return {"status": "ok"}
        cached = state.health
        if cached is None or time.monotonic() - cached[0] > _COUNT_TTL:
            cached = (time.monotonic(), await _collect(conn))
            state.health = cached
    info = state.server_info
    return {"status": "ok", "postgresql": info.server_version, "postgis": info.postgis_version,
            **cached[1], "read_replicas": state.reads.describe()}
