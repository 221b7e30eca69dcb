"""The application's runtime state, typed: what the lifespan opens and what routes derive from the
settings once (keys, ciphers) or cache for a while (health counts, extents).

One object per app, at ``app.state.cadastre``; routes reach it through ``app_state(request)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from cadastre.access import apikeys, lockout
from cadastre.access.pii import PiiCipher, audit_key, load_cipher
from cadastre.settings import Settings
from cadastre.store.db import ServerInfo
from tiles.cache import TileCache

if TYPE_CHECKING:
    from api.answers import AnswerMemo
    from api.jobs import WorkerThreads
    from api.reads import ReadRouter
    from cadastre.certificates.issue import IssuingContext
    from cadastre.query.ogc import Extent
    from cadastre.sharing.delivery import Dispatcher


@dataclass
class AppState:
    settings: Settings
    database_url: str
    server_info: ServerInfo
    pool: AsyncConnectionPool          # async routes
    sync_pool: ConnectionPool          # plain ``def`` routes (FastAPI's thread pool)
    workers: WorkerThreads             # queue workers of this process (cadastre.jobs)
    dispatcher: Dispatcher | None      # event deliveries of this process (cadastre.sharing)
    tile_cache: TileCache
    reads: ReadRouter                  # public reads and tiles: replicas, else the primary
    answers: AnswerMemo                # public answers by the rows they were made from
    tile_epoch: int = 0                # bumped whenever cached tiles were dropped
    # short-lived caches: (monotonic time, value)
    health: tuple[float, dict[str, Any]] | None = None
    ogc_extents: dict[str, tuple[float, Extent]] = field(default_factory=dict)
    data_bounds: list[float] | None = None

    def data_changed(self) -> None:
        """The register changed (this or another worker process said so): tiles rendered from
        before are not cached, and the short-lived caches derived from the data are dropped."""
        self.tile_epoch += 1
        self.health = None
        self.ogc_extents.clear()
        self.data_bounds = None

    @cached_property
    def cipher(self) -> PiiCipher:
        """Decrypts parties' personal data (registry and owner views)."""
        return load_cipher(self.settings)

    @cached_property
    def audit_key(self) -> bytes:
        return audit_key(self.settings)

    @cached_property
    def api_key_hmac(self) -> bytes:
        return apikeys.hashing_key(self.settings)

    @cached_property
    def lockout_key(self) -> bytes:
        """Keys the failure hashes of logins, verifications and progress queries."""
        return lockout.hashing_key(self.settings)

    @cached_property
    def issuing(self) -> IssuingContext:
        """Electronic certificates: keys, settings and the office's signer (loaded once)."""
        from cadastre.certificates.issue import IssuingContext
        from cadastre.certificates.signing import signing_files

        return IssuingContext(self.settings, self.cipher, self.audit_key,
                              signing_files(self.settings))


def app_state(request: Request) -> AppState:
    return request.app.state.cadastre  # type: ignore[no-any-return]


def maybe_state(app: Any) -> AppState | None:
    """The state of ``app`` once its lifespan has started (None before, or for other apps)."""
    state = getattr(app, "state", None)
    return getattr(state, "cadastre", None) if state is not None else None


def app_settings(request: Request) -> Settings:
    """The settings alone: routes that serve files from the data dir need nothing else, and
    work in an app that has settings but no database (``app.state.settings``)."""
    return request.app.state.settings  # type: ignore[no-any-return]


def install(app: FastAPI, state: AppState) -> None:
    app.state.cadastre = state
    app.state.settings = state.settings
