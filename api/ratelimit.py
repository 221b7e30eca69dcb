"""Anti-enumeration rate limits: token buckets per client address and per credential.

Every request takes one token from the bucket of its client address and, when it carries a
bearer token or an API key, one from the bucket of that credential (keyed by a hash, never the
credential itself). Buckets hold a minute's allowance and refill continuously, so a client gets
``N`` requests per minute with bursts up to ``N``. Requests fall in four classes with their
own limits (``CADASTRE_RATE_LIMIT_*``), decided by the route they reach, never by a substring:

- ``auth``: routes declared with ``rate_class("auth")``: login, owner and certificate
  verification (strict: guessing targets these);
- ``search``: routes declared with ``rate_class("search")``: search and what-is-here;
- ``tiles``: every path outside ``/api/`` and ``/ogc`` (vector/raster/3D tiles, glyphs,
  sprites, styles, the viewer's files: a map view loads hundreds);
- ``api``: everything else.

An empty bucket answers ``429 RATE_LIMITED`` with ``Retry-After`` (seconds) before routing. The
buckets are in memory, per worker process, or, with several workers
(``CADASTRE_RATE_LIMIT_STORE``), in the database every worker shares (``api.sharedlimit``).
The client address is the connection's peer; only a
proxy listed in ``CADASTRE_TRUSTED_PROXIES`` may replace it with ``X-Forwarded-For`` (uvicorn's
proxy-headers middleware, installed by ``api.app`` from that setting; ``cadastre serve`` turns
uvicorn's own, which trusts 127.0.0.1 by default, off).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout
from starlette.routing import compile_path

from api.problems import send_problem
from api.sharedlimit import SharedBuckets
from api.state import maybe_state
from cadastre.errors import CadastreError
from cadastre.settings import ApiSettings

log = logging.getLogger("api.ratelimit")


class RateLimited(CadastreError):
    """Too many requests (HTTP 429); ``retry_after`` in seconds."""

    code = "RATE_LIMITED"

    def __init__(self, code: str | None = None, message: str = "", retry_after: int = 60
                 ) -> None:
        super().__init__(code, message or "请求过于频繁，请稍后再试 / too many requests, "
                         "please retry later")
        self.retry_after = max(1, int(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}


SHARED_RETRY_S = 10.0           # after a failure of the shared buckets, in-process ones this long
RATE_CLASS = "x-rate-limit"     # the OpenAPI extension a route declares its class with
CLASSES = ("auth", "search", "tiles", "api")


def rate_class(kind: str) -> dict[str, str]:
    """``openapi_extra`` of a route in the ``auth`` or ``search`` class."""
    assert kind in CLASSES
    return {RATE_CLASS: kind}


def default_class(path: str) -> str:
    """The class of a path no route declares one for."""
    return "api" if path.startswith("/api/") or path == "/ogc" or path.startswith("/ogc/") \
        else "tiles"


class RouteClasses:
    """Which class a request's route declares: read from the app's OpenAPI document (where
    ``x-rate-limit`` is published too) on first use, path templates compiled as routing does."""

    def __init__(self) -> None:
        self._table: list[tuple[Any, str]] | None = None

    def _build(self, app: Any) -> list[tuple[Any, str]]:
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            kinds = {op.get(RATE_CLASS) for op in operations.values() if isinstance(op, dict)}
            kinds.discard(None)
            if kinds:
                table.append((compile_path(template)[0], str(kinds.pop())))
        return table

    def of(self, scope: dict[str, Any]) -> str:
        path = scope.get("path", "")
        if self._table is None:
            app = scope.get("app")
            if app is None or not hasattr(app, "openapi"):
                return default_class(path)
            self._table = self._build(app)
        for regex, kind in self._table:
            if regex.match(path):
                return kind
        return default_class(path)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Buckets of ``capacity`` tokens refilled at ``capacity`` per ``period`` seconds."""

    def __init__(self, max_keys: int = 200_000, period: float = 60.0) -> None:
        self.period = period
        self.max_keys = max_keys
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def take(self, key: tuple[str, str], capacity: int, now: float) -> float:
        """Take one token; 0 when granted, else the seconds until one is available."""
        rate = capacity / self.period
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            b = self._buckets[key] = _Bucket(float(capacity), now)
        else:
            b.tokens = min(float(capacity), b.tokens + (now - b.stamp) * rate)
            b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / rate

    def _prune(self, now: float) -> None:
        """Forget buckets idle long enough to be full again (they behave like new ones)."""
        idle = [k for k, b in self._buckets.items() if now - b.stamp >= self.period]
        for k in idle:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:   # still full: drop the oldest half
            for k, _ in sorted(self._buckets.items(), key=lambda kv: kv[1].stamp)[
                    : self.max_keys // 2]:
                del self._buckets[k]


def _credential(headers: dict[bytes, bytes]) -> str | None:
    raw = headers.get(b"authorization") or headers.get(b"x-api-key")
    if not raw:
        return None
    return hashlib.sha256(raw).hexdigest()[:32]


def client_address(scope: Any) -> str:
    """The client's address: the peer, or what a trusted proxy said (set before us)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitMiddleware:
    """ASGI middleware; limits come from ``ApiSettings`` given at construction."""

    def __init__(self, app: Any, settings: ApiSettings) -> None:
        self.app = app
        self.enabled = settings.rate_limit_enabled
        self.limits = {"api": settings.rate_limit_per_minute,
                       "tiles": settings.rate_limit_tiles_per_minute,
                       "search": settings.rate_limit_search_per_minute,
                       "auth": settings.rate_limit_auth_per_minute}
        self.classes = RouteClasses()
        self.buckets = TokenBuckets()
        self.shared = settings.shared_rate_limits
        self._shared: SharedBuckets | None = None
        self._shared_down_until = 0.0

    def check(self, scope: dict[str, Any]) -> float:
        """0 if the request may proceed, else seconds to wait (takes the tokens)."""
        kind, names = self._keys(scope)
        now = time.monotonic()
        return max(self.buckets.take((n, kind), self.limits[kind], now) for n in names)

    def _keys(self, scope: dict[str, Any]) -> tuple[str, list[str]]:
        names = ["ip:" + client_address(scope)]
        cred = _credential(dict(scope.get("headers", ())))
        if cred:
            names.append("cred:" + cred)
        return self.classes.of(scope), names

    async def check_shared(self, scope: dict[str, Any]) -> float:
        """``check`` against the buckets every worker shares; in-process ones if the database
        does not answer (or before the app's state exists)."""
        state = maybe_state(scope.get("app"))
        if state is None or time.monotonic() < self._shared_down_until:
            return self.check(scope)
        if self._shared is None:
            self._shared = SharedBuckets(state.lockout_key)
        kind, names = self._keys(scope)
        try:
            return await self._shared.take(state.pool, names, kind, self.limits[kind])
        except (psycopg.Error, PoolTimeout):
            # not again for a while: an outage must not add a pool timeout to every request
            self._shared_down_until = time.monotonic() + SHARED_RETRY_S
            log.warning("shared rate limits unavailable; limiting in this process")
            return self.check(scope)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self.enabled or scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        wait = await self.check_shared(scope) if self.shared else self.check(scope)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        exc = RateLimited(retry_after=math.ceil(wait))
        await send_problem(send, 429, exc.code, exc.message,
                           [(b"retry-after", str(exc.retry_after).encode())])
