"""Reads routed to replicas: public reads and public tiles go to a healthy replica, everything
else (writes, staff reads, read-your-writes) to the primary.

A replica is used only while it is healthy: it answered the last check (every
``CADASTRE_READ_CHECK_INTERVAL_S``) and its replay lag is within ``CADASTRE_READ_MAX_LAG_S``.
The lag is measured against the primary's own WAL position: each check samples the primary's
``pg_current_wal_lsn()``, and a replica's lag is the age of the newest sample its
``pg_last_wal_replay_lsn()`` has passed (an upper bound, exact to the check interval, and right
when the primary is idle, where replay timestamps would grow for nothing).

After a register change (the tile invalidation notification) replicas are used again only once
they have replayed past the primary's position at the notification (``hold``/``fence``): a tile
rendered on a replica is therefore never older than the invalidation that made room for it.

A read that fails on a replica for a connection reason is retried on the primary and the replica
taken out until its next good check: a replica dying under load fails no request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api import pooling
from cadastre.settings import Settings

log = logging.getLogger("api.reads")
T = TypeVar("T")
_LSN = "SELECT (pg_current_wal_lsn() - '0/0')::bigint"
_REPLAY = ("SELECT pg_is_in_recovery(), "
           "(coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn()) - '0/0')::bigint")
_RETRY = (psycopg.OperationalError, psycopg.errors.SerializationFailure, PoolTimeout)


@dataclass
class Replica:
    url: str
    pool: AsyncConnectionPool
    healthy: bool = False
    replay: int = -1             # replayed WAL position at the last check
    lag: float = float("inf")    # seconds, at the last check
    taken_out: int = 0           # times it was taken out (reported by /health for staff)


@dataclass
class ReadRouter:
    primary: AsyncConnectionPool
    replicas: list[Replica]
    max_lag: float
    interval: float
    fence: int | None = 0        # replicas must have replayed this far (None: primary only)
    _samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4096))
    _next: int = 0
    _task: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, primary: AsyncConnectionPool, urls: list[str], max_lag: float,
               interval: float, kwargs: dict[str, Any], configure: Any) -> ReadRouter:
        replicas = [Replica(u, AsyncConnectionPool(
            u, min_size=primary.min_size, max_size=primary.max_size, kwargs=kwargs,
            configure=configure,
            check=pooling.check, reset=pooling.returned, timeout=1.0, open=False,
            reconnect_timeout=3600)) for u in urls]
        return cls(primary, replicas, max_lag, interval)

    async def open(self) -> None:
        for r in self.replicas:
            await r.pool.open(wait=False)
        if self.replicas:
            await self.check()
            self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        for r in self.replicas:
            await r.pool.close()

    # ------------------------------------------------------------- choosing
    def pick(self) -> Replica | None:
        """A healthy replica (round robin) that has replayed past the fence, or None."""
        if self.fence is None:
            return None
        ok = [r for r in self.replicas
              if r.healthy and r.lag <= self.max_lag and r.replay >= self.fence]
        if not ok:
            return None
        self._next = (self._next + 1) % len(ok)
        return ok[self._next]

    async def run(self, fn: Callable[[Any], Awaitable[T]], replica: bool = True) -> T:
        """``fn(conn)`` on a replica when ``replica`` and one is fit, else on the primary; a
        replica that fails is taken out and ``fn`` runs again on the primary."""
        r = self.pick() if replica else None
        if r is not None:
            try:
                async with r.pool.connection() as conn:
                    return await fn(conn)
            except psycopg.errors.QueryCanceled:
                raise                  # the statement timeout: as on the primary
            except _RETRY as exc:
                self._take_out(r, exc)
        async with self.primary.connection() as conn:
            return await fn(conn)

    def _take_out(self, r: Replica, exc: BaseException) -> None:
        if r.healthy:
            r.taken_out += 1
            log.warning("read replica taken out: %s", type(exc).__name__)
        r.healthy = False

    # ------------------------------------------------------------- fencing
    def hold(self) -> None:
        """The register changed: primary only until ``set_fence``."""
        self.fence = None

    def set_fence(self, lsn: int) -> None:
        self.fence = lsn

    async def primary_lsn(self) -> int:
        async with self.primary.connection() as conn:
            row = await (await conn.execute(_LSN)).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------- health
    async def check(self) -> None:
        now = time.monotonic()
        try:
            self._samples.append((now, await self.primary_lsn()))
        except _RETRY:
            return          # the primary is down: the replicas keep their last state
        await asyncio.gather(*(self._check_one(r, now) for r in self.replicas))

    async def _check_one(self, r: Replica, now: float) -> None:
        try:
            async with r.pool.connection(timeout=min(1.0, self.interval * 2)) as conn:
                row = await (await conn.execute(_REPLAY)).fetchone()
        except _RETRY as exc:
            self._take_out(r, exc)
            return
        if row is None:
            return
        in_recovery, replay = bool(row[0]), int(row[1])
        if not in_recovery:        # not a physical standby (an external copy): trust it
            r.replay, r.lag, r.healthy = 2**62, 0.0, True
            return
        reached = [t for t, lsn in self._samples if lsn <= replay]
        oldest = self._samples[0][0] if self._samples else now
        r.replay = replay
        r.lag = now - max(reached) if reached else now - oldest + self.interval
        r.healthy = True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("read replica check failed")

    def describe(self) -> list[dict[str, Any]]:
        return [{"healthy": r.healthy, "lag_s": None if r.lag == float("inf") else round(r.lag, 3),
                 "taken_out": r.taken_out} for r in self.replicas]


def read_urls(settings: Settings) -> list[str]:
    """``CADASTRE_READ_URLS``, and the embedded cluster's replicas that are running."""
    from cadastre.store import replicas
    from cadastre.store.db import embedded_cluster

    out = [u.get_secret_value() for u in settings.database.read_urls]
    if settings.embedded:
        out += replicas.urls(embedded_cluster(settings))
    return out
