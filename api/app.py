"""FastAPI application factory. The pool lives in the lifespan, on ``app.state``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from psycopg_pool import AsyncConnectionPool

from api import errors
from api.routers import system
from cadastre.settings import Settings, get_settings
from cadastre.store.db import check_versions, connect, database_url, server_info

log = logging.getLogger("api")


async def _configure(conn) -> None:  # type: ignore[no-untyped-def]
    await conn.execute("SET search_path = cad, public")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url(settings, start=True)
        with connect(url) as conn:
            info = server_info(conn)
        check_versions(info, settings.database.min_server_version,
                       settings.database.min_postgis_version)
        pool = AsyncConnectionPool(
            url,
            min_size=settings.database.pool_min,
            max_size=settings.database.pool_max,
            kwargs={"options": f"-c statement_timeout={settings.database.statement_timeout_ms}",
                    "autocommit": True, "application_name": "cadastre-api"},
            configure=_configure,
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        app.state.pool = pool
        app.state.settings = settings
        app.state.server_info = info
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Cadastre server / 不动产登记查询与三维可视化服务",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.api.cors_origins, allow_methods=["GET", "POST"],
        allow_headers=["*"],
    )
    errors.install(app)
    app.include_router(system.router)
    return app
