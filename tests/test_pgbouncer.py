"""``cadastre serve --workers 2 --pgbouncer`` as real processes (issue 18): the workers' requests
go through a pgbouncer in transaction pooling (its own statistics say so), repeated reads work
without prepared statements, LISTEN/NOTIFY invalidation still reaches the workers over their
direct connections, and the pgbouncer ends with the server."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cadastre.settings import Settings
from cadastre.store.cluster import server_home
from tests.conftest import app_data_dir
from tests.serve_support import Server, move_parcel, parcel_tile, start_server

WORKERS = 2


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory
        ) -> dict:
    return {"url": small_district("bouncer"),
            "data_dir": app_data_dir(test_settings, tmp_path_factory.mktemp("bouncer_app"))}


@pytest.fixture(scope="module")
def server(env: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = Path(tmp_path_factory.mktemp("bouncer_log")) / "serve.log"
    s = start_server(env["url"], env["data_dir"], log, workers=WORKERS, args=("--pgbouncer",),
                     CADASTRE_TILE_CACHE="true")
    yield s
    s.stop()


def _folder(data_dir: Path) -> Path:
    return server_home(data_dir, "pgbouncer")


def _bouncer_port(data_dir: Path) -> int:
    ini = (_folder(data_dir) / "pgbouncer.ini").read_text()
    return int(next(line.split("=")[1] for line in ini.splitlines()
                    if line.startswith("listen_port")))


def _transactions(env: dict) -> int:
    """Transactions pgbouncer has passed to the database (SHOW STATS of its admin console)."""
    target = conninfo_to_dict(env["url"])
    admin = make_conninfo(host="127.0.0.1", port=_bouncer_port(env["data_dir"]),
                          dbname="pgbouncer", user=target["user"],
                          password=target.get("password"))
    out = subprocess.run(["psql", admin, "-AtF", "|", "-c", "SHOW STATS"], check=True,
                         capture_output=True, text=True).stdout
    db = target["dbname"]
    return sum(int(line.split("|")[1]) for line in out.splitlines()
               if line.split("|")[0] == db)


def test_requests_go_through_pgbouncer(server: Server, env: dict) -> None:
    with psycopg.connect(env["url"]) as conn:
        unit, seat = conn.execute(
            "SELECT unit_code, left(seat, 4) FROM cad.unit_current WHERE seat IS NOT NULL "
            "ORDER BY unit_code LIMIT 1").fetchone()
    before = _transactions(env)
    # more than psycopg's prepare threshold (5) on every worker: no prepared statements
    # (a code search never prepares, a text search would on a direct connection)
    paths = [f"/api/v1/units/{unit.strip()}", f"/api/v1/search?q={unit.strip()[:12]}",
             "/api/v1/here?lon=120.1&lat=30.27", f"/api/v1/search?q={quote(seat)}"]
    answers = [server.request("GET", p) for _ in range(8 * WORKERS) for p in paths]
    assert {a.status for a in answers[0::4]} == {200}
    assert {a.status for a in answers[1::4]} == {200}
    assert {a.status for a in answers[2::4]} <= {200, 404}
    assert {a.status for a in answers[3::4]} == {200}
    assert all(a.json()["items"] for a in answers[3::4])
    assert len(set(server.worker_of(answers).values())) == WORKERS
    time.sleep(1)   # pgbouncer's statistics are updated every second
    assert _transactions(env) - before >= len(answers)
    assert "pgbouncer (transaction pooling)" in server.log.read_text()


def test_invalidation_still_reaches_the_workers(server: Server, env: dict) -> None:
    code, path, moved = parcel_tile(env["url"])
    first = {server.request("GET", path).headers.get("etag") for _ in range(4 * WORKERS)}
    assert len(first) == 1
    move_parcel(env["url"], code, moved)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = {server.request("GET", path).headers.get("etag") for _ in range(4 * WORKERS)}
        if not now & first:
            break
        time.sleep(0.5)
    assert not now & first, "a worker still serves the tile from before the edit"


def test_pgbouncer_ends_with_the_server(env: dict, test_settings: Settings,
                                        tmp_path: Path) -> None:
    data_dir = app_data_dir(test_settings, tmp_path / "app")   # (the module's server runs on)
    s = start_server(env["url"], data_dir, tmp_path / "serve.log", workers=1,
                     args=("--pgbouncer",))
    pid = int((_folder(data_dir) / "pgbouncer.pid").read_text())
    assert Path(f"/proc/{pid}").exists()
    s.stop()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists()
