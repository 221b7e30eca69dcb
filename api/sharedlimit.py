"""Token buckets shared by every worker process: rows of ``auth.rate_bucket`` (migration 0018).

One statement takes a token from each of a request's buckets (client address, credential) and
refills them by the time passed, atomically under the row locks, so the limit holds whichever
worker answers. Bucket keys are HMACs (the lockout key) of the key and class: no address or
credential is stored. A database error falls back to the caller's in-process buckets (a limit per
process is better than none, and an outage must not turn every request into a 500).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

_TAKE = """
INSERT INTO auth.rate_bucket AS b (key, tokens, granted, stamp)
SELECT k, %(cap)s - 1, true, clock_timestamp() FROM unnest(%(keys)s::bytea[]) AS k
ON CONFLICT (key) DO UPDATE SET
    granted = least(%(cap)s, b.tokens + extract(epoch FROM clock_timestamp() - b.stamp)
                    * %(rate)s) >= 1,
    tokens = least(%(cap)s, b.tokens + extract(epoch FROM clock_timestamp() - b.stamp)
                   * %(rate)s)
             - CASE WHEN least(%(cap)s, b.tokens + extract(epoch FROM clock_timestamp()
                                                                  - b.stamp) * %(rate)s) >= 1
                    THEN 1 ELSE 0 END,
    stamp = clock_timestamp()
RETURNING granted, tokens
"""

_PRUNE = "DELETE FROM auth.rate_bucket WHERE stamp < now() - make_interval(secs => %s)"


class SharedBuckets:
    """Buckets of ``capacity`` tokens refilled at ``capacity`` per ``period`` seconds, in the
    database every worker uses (the primary: every take is a write)."""

    def __init__(self, key: bytes, period: float = 60.0) -> None:
        self.key = key
        self.period = period
        self._pruned = time.monotonic()

    def bucket(self, name: str, kind: str) -> bytes:
        return hmac.new(self.key, f"{kind}\x00{name}".encode(), hashlib.sha256).digest()[:20]

    async def take(self, pool: Any, names: list[str], kind: str, capacity: int) -> float:
        """Take one token from each bucket: 0 when all granted, else the seconds to wait."""
        rate = capacity / self.period
        # sorted: two requests sharing two buckets lock them in the same order (no deadlock)
        keys = sorted({self.bucket(n, kind) for n in names})
        async with pool.connection() as conn:
            cur = await conn.execute(_TAKE, {"cap": float(capacity), "rate": rate, "keys": keys})
            rows = await cur.fetchall()
            if time.monotonic() - self._pruned > self.period:
                self._pruned = time.monotonic()
                await conn.execute(_PRUNE, (self.period * 2,))
        waits = [0.0 if granted else (1.0 - tokens) / rate for granted, tokens in rows]
        return max(waits, default=0.0)
