"""FastAPI application factory. Pools and caches live in the lifespan, in one typed ``AppState``
(``api.state``)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import errors, pooling
from api.answers import AnswerMemo
from api.fastpath import WarmTileMiddleware
from api.guards import HeadAsGet, RequestGuard, SecurityHeaders
from api.httpcache import ValidatedGZip
from api.jobs import WorkerThreads
from api.ratelimit import RateLimitMiddleware
from api.reads import ReadRouter, read_urls
from api.routers import (
    assets,
    audit,
    cases,
    certificates,
    docs,
    documents,
    exchange,
    field_maps,
    handover,
    ogc,
    owner,
    progress,
    public,
    qa,
    raster,
    sharing,
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
from cadastre.cases import clock
from cadastre.certificates.signing import signing_files
from cadastre.settings import Settings, get_settings
from cadastre.sharing.delivery import Dispatcher
from cadastre.store.db import check_versions, connect, database_url, server_info
from cadastre.survey.submission import MAX_UPLOAD_BYTES
from tiles.cache import TileCache

log = logging.getLogger("api")


async def _configure(conn) -> None:  # type: ignore[no-untyped-def]
    await conn.execute("SET search_path = cad, public")


async def _invalidation_listener(state: AppState) -> None:
    """Drop cached tiles as soon as the database says data changed (LISTEN/NOTIFY), and sweep
    the queue every few seconds in case a notification was missed. Every worker process
    listens: the one that drains the queue deletes the files of the shared disk cache, and
    every one forgets what it derived from the old data (``AppState.data_changed``)."""
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
                            state.data_changed()
                        if state.reads.fence is None:   # replicas again once past the change
                            state.reads.set_fence(await state.reads.primary_lsn())
                        async for _note in aconn.notifies(timeout=5.0):
                            state.reads.hold()
                            state.data_changed()   # renders in flight may predate the change
                            break
        except asyncio.CancelledError:
            raise
        except Exception:  # the database went away: retry, the queue keeps what we missed
            log.exception("tile invalidation listener failed; retrying")
            await asyncio.sleep(2)


async def _scheduled_qa(state: AppState) -> None:
    """District-wide QA every ``CADASTRE_QA_SCHEDULE_HOURS``: a queued job like a manual run,
    once per period whichever of several worker processes (or hosts) gets there first."""
    from cadastre.jobs import create_job

    settings, url = state.settings, state.database_url

    def enqueue() -> None:
        with connect(url) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('cadastre scheduled qa'))")
            recent = conn.execute(
                "SELECT 1 FROM cad.job WHERE kind = 'qa_run' AND created_by = 'schedule' "
                "AND created_at > now() - make_interval(secs => %s)",
                (settings.qa.schedule_hours * 1800,)).fetchone()
            if recent is None:
                create_job(conn, "qa_run", "schedule", {"actor": "schedule"})
            conn.commit()

    while True:
        await asyncio.sleep(settings.qa.schedule_hours * 3600)
        try:
            await asyncio.to_thread(enqueue)
        except Exception:
            log.exception("scheduled QA run could not be queued")


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
        with connect(url) as conn:   # calendar far enough ahead, deadlines under these settings
            clock.ensure_current(conn, settings.cases)
            conn.commit()
        db = settings.database
        conn_kwargs: dict[str, Any] = {
            "options": f"-c statement_timeout={db.statement_timeout_ms}", "autocommit": True,
            "application_name": "cadastre-api", "connect_timeout": db.connect_timeout_s}
        pool_url, direct_kwargs = url, conn_kwargs     # (replicas are always direct)
        if db.pooler_url is not None:   # pgbouncer, transaction pooling: no session state
            pool_url = db.pooler_url.get_secret_value()
            conn_kwargs = {**{k: v for k, v in conn_kwargs.items() if k != "options"},
                           "prepare_threshold": None}
        pool_min, pool_max = db.pool_sizes(settings.api.workers)
        pool = AsyncConnectionPool(
            pool_url,
            min_size=pool_min,
            max_size=pool_max,
            kwargs=conn_kwargs,
            configure=_configure,
            check=pooling.check, reset=pooling.returned,   # no broken connection after an outage
            timeout=db.pool_timeout_s,
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        reads = ReadRouter.create(pool, read_urls(settings), db.read_max_lag_s,
                                  db.read_check_interval_s, direct_kwargs, _configure)
        await reads.open()
        # for plain `def` routes (blocking work runs in FastAPI's thread pool)
        sync_pool = ConnectionPool(pool_url, min_size=0, max_size=4, open=True,
                                   timeout=db.pool_timeout_s,
                                   check=ConnectionPool.check_connection,
                                   kwargs={k: v for k, v in conn_kwargs.items()
                                           if k != "options"})
        state = AppState(
            settings=settings, database_url=url, server_info=info, pool=pool,
            sync_pool=sync_pool,
            workers=WorkerThreads(settings, url, settings.api.job_workers).start(),
            dispatcher=Dispatcher(url, settings).start() if settings.api.deliveries else None,
            tile_cache=TileCache(settings.data_dir / "cache" / "tiles",
                                 enabled=settings.tiles.cache),
            reads=reads, answers=AnswerMemo(settings.api.answer_memo_mb * 2**20))
        install_state(app, state)
        # the office's signing key and certificate: the local CA's are made on first start;
        # configured files that are missing stop the start here
        signing_files(settings)
        listener = asyncio.create_task(_invalidation_listener(state))
        scheduled = (asyncio.create_task(_scheduled_qa(state))
                     if settings.qa.schedule_hours > 0 else None)
        # What start-up made (modules, routes, models, pools: ~260,000 objects) lives as long as
        # the process: out of the collector's sight, a full collection no longer stops every
        # request of this worker for 80-190 ms under load (the 99.9th percentile was those).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()     # (an app started again in this process, as tests do)
            listener.cancel()
            if scheduled:
                scheduled.cancel()
            state.workers.stop()
            if state.dispatcher:
                state.dispatcher.stop()
            sync_pool.close()
            await reads.close()
            await pool.close()

    app = FastAPI(
        title="Cadastre server / 不动产登记查询与三维可视化服务",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,      # served from local files by api/routers/docs.py
    )
    app.add_middleware(WarmTileMiddleware)   # innermost: CORS and gzip still wrap it
    # level 5, not Starlette's 9: half the CPU per JSON response (a 楼盘表 of ~25 KiB: 0.7 vs
    # 1.3 ms) for 4 % more bytes
    app.add_middleware(ValidatedGZip, minimum_size=1024, compresslevel=5)
    app.add_middleware(RateLimitMiddleware, settings=settings.api)  # inside CORS: 429s get CORS
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.api.cors_origins, allow_methods=["GET", "POST"],
        allow_headers=["*"],
    )
    app.add_middleware(RequestGuard, body_bytes=settings.api.max_body_bytes,
                       upload_bytes=MAX_UPLOAD_BYTES,
                       document_bytes=settings.api.document_max_bytes)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    if settings.api.trusted_proxies:      # outermost: the client address for everything inside
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.api.trusted_proxies)
    errors.install(app)
    # the public reads first: routes are matched in order, and these take most requests (no
    # other route matches their paths: checked when the order was chosen)
    app.include_router(public.router)
    app.include_router(system.router)
    app.include_router(docs.router)
    app.include_router(auth_router.router)
    app.include_router(tiles.router)
    app.include_router(assets.router)
    app.include_router(ogc.router)
    app.include_router(raster.router)
    app.include_router(field_maps.router)   # before surveys: /surveys/{submission_id}
    app.include_router(surveys.router)
    app.include_router(exchange.router)
    app.include_router(qa.router)
    app.include_router(threed.router)
    app.include_router(registry_router.router)
    app.include_router(owner.router)
    app.include_router(certificates.router)
    app.include_router(audit.router)
    app.include_router(cases.router)
    app.include_router(documents.router)
    app.include_router(handover.router)
    app.include_router(progress.router)
    app.include_router(sharing.router)
    app.include_router(viewer.router)   # last: serves / and the viewer's files
    return app
