"""``cadastre serve --workers 4`` as real processes (issue 18): one rate limit and one lockout for
every worker (kept in the database), and a register change dropping cached tiles in every
worker (LISTEN/NOTIFY). Which worker answered a request is read from the access log, where each
line names its process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cadastre.access.privacy import Role
from cadastre.settings import Settings
from tests.conftest import app_data_dir
from tests.serve_support import Server, move_parcel, parcel_tile, start_server

PASSWORD = "workers registrar password"
WORKERS = 4
LIMIT = 20   # CADASTRE_RATE_LIMIT_AUTH_PER_MINUTE (the default)


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory
        ) -> dict:
    url = small_district("workers", [("w.locked", PASSWORD, Role.REGISTRAR),
                                     ("w.reg", PASSWORD, Role.REGISTRAR)])
    return {"url": url, "data_dir": app_data_dir(test_settings,
                                                 tmp_path_factory.mktemp("workers_app"))}


@pytest.fixture(scope="module")
def server(env: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = Path(tmp_path_factory.mktemp("workers_log")) / "serve.log"
    s = start_server(env["url"], env["data_dir"], log, workers=WORKERS,
                     CADASTRE_RATE_LIMIT_AUTH_PER_MINUTE=str(LIMIT))
    yield s
    s.stop()


def _login(server: Server, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return server.request("POST", "/api/v1/auth/login",
                          {"username": username, "password": password})


def test_one_rate_limit_and_one_lockout_for_four_workers(server: Server) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        # five wrong passwords lock the account: the right one is then refused by any worker
        wrong = list(pool.map(lambda _: _login(server, "w.locked", "wrong"), range(5)))
        locked = _login(server, "w.locked")
        # the rest of the minute's 20 logins, and 8 more: refused whichever worker answers
        burst = list(pool.map(lambda _: _login(server, "w.reg"), range(LIMIT - 6 + 8)))
    elapsed = time.monotonic() - started
    assert [a.status for a in wrong] == [401] * 5
    assert locked.status == 401 and locked.json()["code"] == "LOGIN_FAILED"
    granted = [a for a in burst if a.status == 200]
    refused = [a for a in burst if a.status == 429]
    assert len(granted) + len(refused) == len(burst), [a.status for a in burst]
    # a bucket of 20 refilled at 20 a minute: 6 + granted ≤ 20 + what refilled meanwhile
    assert 6 + len(granted) <= LIMIT + int(elapsed * LIMIT / 60), (len(granted), elapsed)
    assert len(refused) >= 8 - int(elapsed * LIMIT / 60)
    for a in refused:
        assert a.json()["code"] == "RATE_LIMITED" and int(a.headers["retry-after"]) >= 1
    # the requests were answered by several worker processes, the refusals too
    pids = server.worker_of([*wrong, locked, *burst])
    assert len(pids) == len(burst) + 6
    assert len(set(pids.values())) >= 2, pids
    assert len({pids[a.client_port] for a in refused}) >= 2, pids
    assert len({pids[a.client_port] for a in [*wrong, locked]}) >= 1


def test_an_edit_drops_the_cached_tile_in_every_worker(server: Server, env: dict) -> None:
    code, path, moved = parcel_tile(env["url"])

    def twelve() -> list:
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda _: server.request("GET", path), range(12)))

    first = twelve()
    assert {a.status for a in first} == {200}
    etag = first[0].headers["etag"]
    assert {a.headers["etag"] for a in first} == {etag}   # one shared disk cache
    move_parcel(env["url"], code, moved)
    deadline = time.monotonic() + 15
    after: list = []
    while time.monotonic() < deadline:
        after = twelve()
        if all(a.headers.get("etag") != etag for a in after):
            break
        time.sleep(0.3)
    assert {a.status for a in after} == {200}
    assert etag not in {a.headers["etag"] for a in after}
    assert len({a.headers["etag"] for a in after}) == 1
    pids = server.worker_of(after)
    assert len(set(pids.values())) >= 2, pids
