"""FastAPI application factory. Pools and caches live in the lifespan, in one typed ``AppState``
(``api.state``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from api import errors
from api.fastpath import WarmTileMiddleware
from api.ratelimit import RateLimitMiddleware
from api.routers import (
    assets,
    audit,
    certificates,
    ogc,
    owner,
    public,
    qa,
    raster,
    surveys,
    system,
    threed,
    tiles,
    viewer,
)
from api.routers import auth as auth_router
from api.routers import registry as registry_router
from api.state import AppState
from api.state import install as install_state
from cadastre.access import logsafe
from cadastre.certificates.signing import signing_files
from cadastre.settings import Settings, get_settings
from cadastre.store.db import check_versions, connect, database_url, server_info
from tiles.cache import TileCache

log = logging.getLogger("api")


async def _configure(conn) -> None:  # type: ignore[no-untyped-def]
    await conn.execute("SET search_path = cad, public")


async def _invalidation_listener(state: AppState) -> None:
    """Drop cached tiles as soon as the database says data changed (LISTEN/NOTIFY), and sweep
    the queue every few seconds in case a notification was missed."""
    import psycopg

    cache, url = state.tile_cache, state.database_url
    while True:
        try:
            with psycopg.connect(url, autocommit=True) as drain_conn:
                aconn = await psycopg.AsyncConnection.connect(url, autocommit=True)
                async with aconn:
                    await aconn.execute("LISTEN tile_invalidation")
                    while True:
                        entries, _ = await asyncio.to_thread(cache.drain_queue, drain_conn)
                        if entries:
                            state.tile_epoch += 1
                        async for _note in aconn.notifies(timeout=5.0):
                            break
        except asyncio.CancelledError:
            raise
        except Exception:  # the database went away: retry, the queue keeps what we missed
            log.exception("tile invalidation listener failed; retrying")
            await asyncio.sleep(2)


async def _scheduled_qa(state: AppState) -> None:
    """District-wide QA every ``CADASTRE_QA_SCHEDULE_HOURS``, stored as runs like manual ones."""
    from cadastre.jobs import JobTracker, create_job
    from cadastre.qa.engine import run_qa
    from cadastre.qa.scope import Scope

    settings, url = state.settings, state.database_url

    def run_once() -> None:
        with connect(url) as conn:
            job_id = create_job(conn, "qa_run", "schedule")
            conn.commit()
        with JobTracker(url, job_id) as job, connect(url) as conn:
            run_qa(conn, Scope("district"), settings.qa, "schedule", job_id=job_id,
                   progress=lambda i, n, r: job.update(i / max(n, 1), r))
            conn.commit()

    while True:
        await asyncio.sleep(settings.qa.schedule_hours * 3600)
        try:
            await asyncio.to_thread(run_once)
        except Exception:
            log.exception("scheduled QA run failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logsafe.install()   # mask ID/phone/certificate numbers in every log record

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
        # for plain `def` routes (blocking work runs in FastAPI's thread pool)
        sync_pool = ConnectionPool(url, min_size=0, max_size=4, open=True,
                                   kwargs={"autocommit": True, "application_name": "cadastre-api"})
        state = AppState(
            settings=settings, database_url=url, server_info=info, pool=pool,
            sync_pool=sync_pool,
            job_pool=ThreadPoolExecutor(max_workers=2, thread_name_prefix="job"),
            tile_cache=TileCache(settings.data_dir / "cache" / "tiles",
                                 enabled=settings.tiles.cache))
        install_state(app, state)
        # the office's signing key and certificate: the local CA's are made on first start;
        # configured files that are missing stop the start here
        signing_files(settings)
        listener = asyncio.create_task(_invalidation_listener(state))
        scheduled = (asyncio.create_task(_scheduled_qa(state))
                     if settings.qa.schedule_hours > 0 else None)
        try:
            yield
        finally:
            listener.cancel()
            if scheduled:
                scheduled.cancel()
            state.job_pool.shutdown(wait=False, cancel_futures=True)
            sync_pool.close()
            await pool.close()

    app = FastAPI(
        title="Cadastre server / 不动产登记查询与三维可视化服务",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(WarmTileMiddleware)   # innermost: CORS and gzip still wrap it
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(RateLimitMiddleware, settings=settings.api)  # inside CORS: 429s get CORS
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.api.cors_origins, allow_methods=["GET", "POST"],
        allow_headers=["*"],
    )
    errors.install(app)
    app.include_router(system.router)
    app.include_router(auth_router.router)
    app.include_router(tiles.router)
    app.include_router(assets.router)
    app.include_router(ogc.router)
    app.include_router(raster.router)
    app.include_router(surveys.router)
    app.include_router(qa.router)
    app.include_router(threed.router)
    app.include_router(public.router)
    app.include_router(registry_router.router)
    app.include_router(owner.router)
    app.include_router(certificates.router)
    app.include_router(audit.router)
    app.include_router(viewer.router)   # last: serves / and the viewer's files
    return app
