"""Read replicas (issue 18), real processes: an embedded primary with two streaming replicas made
by ``cadastre db replica add``, a real ``cadastre serve`` reading public data and tiles from them,
a change on the primary visible through the replica path within the lag limit, and a replica
killed during a burst of tile and what-is-here requests failing none of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cadastre.access.accounts import create_account
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import Role
from cadastre.settings import Settings
from cadastre.store import replicas
from cadastre.store.cluster import EmbeddedCluster
from cadastre.store.migrate import migrate
from tests.conftest import SMALL_PARCELS, SMALL_SEED, app_data_dir
from tests.serve_support import Server, move_parcel, parcel_tile, start_server

MAX_LAG = 3.0
PASSWORD = "replica registrar password"


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], check=True, text=True,
                          capture_output=True, env={**env, "CADASTRE_DATA_DIR": str(data_dir)})


@pytest.fixture(scope="module")
def primary(test_settings: Settings, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[EmbeddedCluster]:
    from cadastre.demo.load import load_demo

    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("replica_app"))
    cluster = EmbeddedCluster(data_dir, shared_buffers="64MB")
    cluster.start()
    migrate(cluster.url())
    with psycopg.connect(cluster.url()) as conn:
        load_demo(conn, load_cipher(test_settings), parcels=SMALL_PARCELS, seed=SMALL_SEED)
        create_account(conn, "rep.reg", PASSWORD, Role.REGISTRAR)
    for name in ("r1", "r2"):
        _cli(data_dir, "db", "replica", "add", name)
    yield cluster
    for name in replicas.names(cluster):
        replicas.remove(cluster, name)
    cluster.destroy()


@pytest.fixture(scope="module")
def server(primary: EmbeddedCluster, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    log = Path(tmp_path_factory.mktemp("replica_serve")) / "serve.log"
    s = start_server(None, primary.data_dir, log, CADASTRE_RATE_LIMIT_ENABLED="false",
                     CADASTRE_TILE_CACHE="false", CADASTRE_READ_MAX_LAG_S=str(MAX_LAG))
    yield s
    s.stop()


def _scans(url: str) -> int:
    """Table scans the server at ``url`` has made (its own statistics, a standby's too; the
    router's health checks scan no table)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(conn.execute("SELECT sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)) "
                                "FROM pg_stat_user_tables").fetchone()[0])


def _tiles_on(server: Server, path: str, urls: list[str], n: int = 40) -> list[int]:
    """Table scans on each of ``urls`` while ``server`` answers ``n`` public tiles."""
    before = [_scans(u) for u in urls]
    for _ in range(n):
        assert server.request("GET", path).status == 200
    time.sleep(1.5)    # cumulative statistics are flushed about every second
    return [_scans(u) - b for u, b in zip(urls, before, strict=True)]


def test_replicas_are_streaming(primary: EmbeddedCluster) -> None:
    listed = _cli(primary.data_dir, "db", "replica", "list", "--json").stdout
    infos = {i.name: i for i in replicas.describe(primary)}
    assert set(infos) == {"r1", "r2"} and '"r1"' in listed
    for info in infos.values():
        assert info.running and info.state == "streaming"
        with psycopg.connect(info.url or "", autocommit=True) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("CREATE TABLE cad.nope (x int)")


def test_public_reads_go_to_the_replicas(primary: EmbeddedCluster, server: Server) -> None:
    _, path, _ = parcel_tile(primary.url(), z=17)
    grown = _tiles_on(server, path, [primary.url(), *replicas.urls(primary)])
    assert all(g >= 10 for g in grown[1:]), grown      # both replicas rendered tiles
    assert grown[0] < min(grown[1:]), grown            # the primary hardly
    print(f"\ntable scans for 40 tiles, primary and replicas: {grown}")


def test_external_read_urls(primary: EmbeddedCluster, tmp_path: Path) -> None:
    """``DATABASE_URL`` + ``CADASTRE_READ_URLS``: reads go to the listed replica only."""
    import json

    r1, r2 = (replicas.replica(primary, n).url() for n in ("r1", "r2"))
    other = start_server(primary.url(), primary.data_dir, tmp_path / "serve.log",
                         CADASTRE_RATE_LIMIT_ENABLED="false", CADASTRE_TILE_CACHE="false",
                         CADASTRE_READ_URLS=json.dumps([r2]))
    try:
        _, path, _ = parcel_tile(primary.url(), z=16)
        on_r1, on_r2 = _tiles_on(other, path, [r1, r2])
    finally:
        other.stop()
    assert on_r2 >= 20 and on_r1 == 0, (on_r1, on_r2)


def test_a_change_is_visible_through_the_replicas(primary: EmbeddedCluster,
                                                  server: Server) -> None:
    code, path, moved = parcel_tile(primary.url(), z=18, offset=4)
    before = server.request("GET", path).headers["etag"]
    move_parcel(primary.url(), code, moved)
    changed = time.monotonic()
    seen = None
    while time.monotonic() - changed < MAX_LAG + 5:
        if server.request("GET", path).headers["etag"] != before:
            seen = time.monotonic() - changed
            break
        time.sleep(0.1)
    assert seen is not None and seen <= MAX_LAG + 1, seen
    print(f"\nedit visible through the replica path after {seen:.2f} s")
    # and from then on every answer has the change (no replica serves the old tile)
    assert all(server.request("GET", path).headers["etag"] != before for _ in range(20))


def _replica_health(server: Server) -> list[dict]:
    token = server.request("POST", "/api/v1/auth/login", {"username": "rep.reg",
                                                          "password": PASSWORD}).json()
    health = server.request("GET", "/health",
                            headers={"Authorization": f"Bearer {token['access_token']}"})
    return list(health.json()["read_replicas"])


def test_a_lagging_replica_is_taken_out(primary: EmbeddedCluster, server: Server) -> None:
    lagging = replicas.replica(primary, "r2").url()
    code, path, moved = parcel_tile(primary.url(), z=17, offset=2)
    before = server.request("GET", path).headers["etag"]
    with psycopg.connect(lagging, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            move_parcel(primary.url(), code, moved)
            deadline = time.monotonic() + MAX_LAG + 10
            lags: list = []
            while time.monotonic() < deadline:
                lags = [r["lag_s"] for r in _replica_health(server)]
                if any(lag is not None and lag > MAX_LAG for lag in lags):
                    break
                time.sleep(0.3)
            assert any(lag is not None and lag > MAX_LAG for lag in lags), lags
            # the paused replica still holds the old parcel: nobody is served from it
            answers = [server.request("GET", path) for _ in range(20)]
            assert {a.status for a in answers} == {200}
            assert before not in {a.headers["etag"] for a in answers}
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:   # caught up: in use again
        if all(r["healthy"] and r["lag_s"] <= MAX_LAG for r in _replica_health(server)):
            break
        time.sleep(0.3)
    assert all(r["healthy"] and r["lag_s"] <= MAX_LAG for r in _replica_health(server))


def test_killing_a_replica_during_a_burst_fails_no_request(primary: EmbeddedCluster,
                                                           server: Server) -> None:
    with psycopg.connect(primary.url()) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointOnSurface(geom), 4326) p "
            "FROM cad.parcel WHERE valid_to IS NULL ORDER BY parcel_code LIMIT 1) q").fetchone()
    _, tile, _ = parcel_tile(primary.url(), z=16)
    paths = [tile, f"/api/v1/here?lon={lon}&lat={lat}"]
    statuses: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def client(i: int) -> None:
        n = i
        while not stop.is_set():
            try:
                statuses.append(server.request("GET", paths[n % 2]).status)
            except OSError as exc:
                errors.append(repr(exc))
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    victim = replicas.replica(primary, "r1")
    pid = victim.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)          # the replica's postmaster dies without a word
    killed_at = len(statuses)
    time.sleep(4.0)
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(statuses) - killed_at >= 20, (killed_at, len(statuses))
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert not victim.status().running
    print(f"\nburst: {killed_at} requests before the kill, {len(statuses) - killed_at} in the "
          "4 s after it, none failed")
