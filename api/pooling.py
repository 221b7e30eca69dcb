"""Connection checks on checkout, skipped for connections that just worked.

A pooled connection is checked (one round trip) before a request gets it, so a connection broken
while it sat idle (the database restarted, a replica died) is replaced instead of failing the
request. A connection given back to the pool less than ``BYPASS_SECONDS`` ago worked then and
is not checked again, as HikariCP does (its ``aliveBypassWindowMs``, 500 ms): under load that is
nearly every checkout, a round trip (and two process wake-ups) less per request. Anything idle
across an outage has been idle far longer than that and is still checked.
"""

from __future__ import annotations

import time
from weakref import WeakKeyDictionary

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

BYPASS_SECONDS = 0.5

_returned: WeakKeyDictionary[AsyncConnection, float] = WeakKeyDictionary()


async def returned(conn: AsyncConnection) -> None:
    """The pool's ``reset`` callback: when the connection came back (in working order)."""
    _returned[conn] = time.monotonic()


async def check(conn: AsyncConnection) -> None:
    """The pool's ``check`` callback."""
    back = _returned.get(conn)
    if back is not None and time.monotonic() - back < BYPASS_SECONDS:
        return
    await AsyncConnectionPool.check_connection(conn)
