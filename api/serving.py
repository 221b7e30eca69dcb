"""How ``cadastre serve`` runs uvicorn: logging that names the worker process when there are
several (an access line then says which process answered), and the pgbouncer in front of the
database for ``--pgbouncer``."""

from __future__ import annotations

import copy
import os
import signal
import sys
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from cadastre.settings import Settings
from cadastre.store import pgbouncer


def log_config(workers: int) -> dict[str, Any]:
    """uvicorn's logging configuration, with ``[pid]`` after the level when ``workers`` > 1."""
    config = copy.deepcopy(LOGGING_CONFIG)
    if workers > 1:
        for formatter in config["formatters"].values():
            formatter["fmt"] = formatter["fmt"].replace("%(levelprefix)s",
                                                        "%(levelprefix)s [%(process)d]")
    return config


def start_pgbouncer(settings: Settings, url: str, workers: int) -> pgbouncer.Bouncer:
    """pgbouncer in front of ``url`` for the workers about to start (they read its address
    from CADASTRE_POOLER_URL). The caller stops it when uvicorn returns."""
    # uvicorn raises the SIGTERM it caught again after its shutdown: exit through the caller's
    # `finally` (which stops pgbouncer) instead of dying of it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # the server connections: as many as one worker's request pool (N workers' pools share them)
    bouncer = pgbouncer.start(url, settings.data_dir,
                              pool_size=settings.database.pool_sizes(workers)[1],
                              statement_timeout_ms=settings.database.statement_timeout_ms)
    os.environ["CADASTRE_POOLER_URL"] = bouncer.url
    return bouncer
