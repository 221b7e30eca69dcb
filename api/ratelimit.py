"""Anti-enumeration rate limits: token buckets per client address and per credential.

Every request takes one token from the bucket of its client address and, when it carries a
bearer token or an API key, one from the bucket of that credential (keyed by a hash, never the
credential itself). Buckets hold a minute's allowance and refill continuously, so a client gets
``N`` requests per minute with bursts up to ``N``. Paths fall in four classes with their own
limits (``CADASTRE_RATE_LIMIT_*``):

- ``auth``: login, owner and certificate verification (strict: guessing targets these);
- ``search``: search and what-is-here (enumeration by query);
- ``tiles``: vector/raster/3D tiles, glyphs, sprites, styles and the viewer's files (a map view
  loads hundreds);
- ``api``: everything else.

An empty bucket answers ``429 RATE_LIMITED`` with ``Retry-After`` (seconds) before routing. The
state is in memory, per worker process. Behind a reverse proxy, list its address in
``CADASTRE_TRUSTED_PROXIES`` so the client address comes from ``X-Forwarded-For``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cadastre.errors import CadastreError
from cadastre.settings import ApiSettings


class RateLimited(CadastreError):
    """Too many requests (HTTP 429); ``retry_after`` in seconds."""

    code = "RATE_LIMITED"

    def __init__(self, code: str | None = None, message: str = "", retry_after: int = 60
                 ) -> None:
        super().__init__(code, message or "请求过于频繁，请稍后再试 / too many requests, "
                         "please retry later")
        self.retry_after = max(1, int(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}


_AUTH = re.compile(r"^/api/v1/(auth/|owner/verify)|/verify(/|$)|^/api/v1/(certificates?|cert)/"
                   r"|^/(v|verify|cert|certificates?)/")
_SEARCH = re.compile(r"^/api/v1/(search|here)(/|$)")
_TILES = re.compile(r"/tiles/|^/(raster|3dtiles|glyphs|sprites|styles|fonts)/")


def path_class(path: str) -> str:
    """Which limit applies to ``path``: auth, search, tiles or api."""
    if _AUTH.search(path):
        return "auth"
    if _SEARCH.match(path):
        return "search"
    if _TILES.search(path) or not (path.startswith("/api/") or path.startswith("/ogc")):
        return "tiles"   # also the viewer's own files (/, /assets/…)
    return "api"


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


def client_address(scope: Mapping[str, Any], trusted: frozenset[str]) -> str:
    """The peer address, or behind a trusted proxy the last untrusted X-Forwarded-For hop."""
    client = scope.get("client")
    host = client[0] if client else "unknown"
    if host in trusted:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
                for hop in reversed(hops):
                    if hop not in trusted:
                        return hop
    return host


class RateLimitMiddleware:
    """ASGI middleware; limits come from ``ApiSettings`` given at construction."""

    def __init__(self, app: Any, settings: ApiSettings) -> None:
        self.app = app
        self.enabled = settings.rate_limit_enabled
        self.limits = {"api": settings.rate_limit_per_minute,
                       "tiles": settings.rate_limit_tiles_per_minute,
                       "search": settings.rate_limit_search_per_minute,
                       "auth": settings.rate_limit_auth_per_minute}
        self.trusted = frozenset(settings.trusted_proxies)
        self.buckets = TokenBuckets()

    def check(self, scope: dict[str, Any]) -> float:
        """0 if the request may proceed, else seconds to wait (takes the tokens)."""
        kind = path_class(scope.get("path", ""))
        limit = self.limits[kind]
        now = time.monotonic()
        keys = [("ip:" + client_address(scope, self.trusted), kind)]
        cred = _credential(dict(scope.get("headers", ())))
        if cred:
            keys.append(("cred:" + cred, kind))
        return max(self.buckets.take(k, limit, now) for k in keys)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self.enabled or scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        wait = self.check(scope)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        exc = RateLimited(retry_after=math.ceil(wait))
        body = json.dumps({"error": {"code": exc.code, "message": exc.message}},
                          ensure_ascii=False).encode("utf-8")
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(exc.retry_after).encode()),
            (b"cache-control", b"no-store"),
        ]})
        await send({"type": "http.response.body", "body": body})
