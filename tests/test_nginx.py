"""nginx in front (issue 18), a real nginx process on the configuration ``cadastre deploy nginx``
writes, in front of a real ``cadastre serve``: a cached public tile is served without touching
the server, the edit of its parcel reaches nginx's visitors (revalidated with the server's
ETag), and a registrar's role-aware tile is never served to the public (nor the public's to
a registrar)."""

from __future__ import annotations

import gzip
import http.client
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mapbox_vector_tile
import pytest

from cadastre.access.privacy import Role
from cadastre.settings import Settings
from tests.conftest import app_data_dir
from tests.serve_support import Server, move_parcel, parcel_tile, start_server
from tests.support import free_port

PASSWORD = "nginx registrar password"
FRESH = 2   # seconds nginx serves a public tile before revalidating it

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None,
                                reason="nginx is not installed (scripts/setup.sh --test)")


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory
        ) -> dict:
    url = small_district("nginx", [("n.reg", PASSWORD, Role.REGISTRAR)])
    return {"url": url, "data_dir": app_data_dir(test_settings,
                                                 tmp_path_factory.mktemp("nginx_app"))}


@pytest.fixture(scope="module")
def server(env: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = Path(tmp_path_factory.mktemp("nginx_serve")) / "serve.log"
    s = start_server(env["url"], env["data_dir"], log, workers=2,
                     CADASTRE_TRUSTED_PROXIES='["127.0.0.1"]')
    yield s
    s.stop()


@pytest.fixture(scope="module")
def nginx(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    prefix = Path(tmp_path_factory.mktemp("nginx_prefix"))
    port = free_port()
    subprocess.run([sys.executable, "-m", "api.cli", "deploy", "nginx",
                    "--upstream", f"127.0.0.1:{server.port}", "--listen", f"127.0.0.1:{port}",
                    "--cache-dir", str(prefix / "cache"), "--fresh", str(FRESH),
                    "--standalone", str(prefix), "--user", "root"], check=True,
                   capture_output=True)
    proc = subprocess.Popen(["nginx", "-p", str(prefix), "-c", "nginx.conf"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if _get(port, "/health").status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError((prefix / "error.log").read_text())
    yield port
    proc.terminate()     # SIGTERM: nginx's fast shutdown
    proc.wait(20)


class Reply:
    def __init__(self, r: http.client.HTTPResponse) -> None:
        self.status = r.status
        self.headers = {k.lower(): v for k, v in r.getheaders()}
        self.body = r.read()

    def tile(self) -> dict:
        data = self.body
        if self.headers.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
        return mapbox_vector_tile.decode(data) if data else {}


def _get(port: int, path: str, **headers: str) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "gzip", **headers})
        return Reply(conn.getresponse())
    finally:
        conn.close()


def _reached_server(server: Server, path: str) -> int:
    """How many requests for ``path`` the server's access log shows."""
    text = server.log.read_text(errors="replace")
    return len(re.findall(r'"GET ' + re.escape(path) + r" HTTP", text))


def _token(port: int) -> str:
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/auth/login", body=json.dumps(
        {"username": "n.reg", "password": PASSWORD}), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200
    return str(json.loads(r.read())["access_token"])


def test_a_cached_tile_is_served_without_the_server(nginx: int, server: Server, env: dict
                                                    ) -> None:
    _, path, _ = parcel_tile(env["url"], z=16)
    first = _get(nginx, path)
    assert first.status == 200 and first.headers["x-cache-status"] == "MISS"
    assert "parcels" in first.tile()
    again = [_get(nginx, path) for _ in range(5)]
    assert {r.headers["x-cache-status"] for r in again} == {"HIT"}
    assert {r.headers["etag"] for r in again} == {first.headers["etag"]}
    assert {r.body for r in again} == {first.body}
    time.sleep(0.5)   # the access log is written after the response
    assert _reached_server(server, path) == 1
    # identity (no gzip) is its own cache entry, with its own ETag
    plain = _get(nginx, path, **{"Accept-Encoding": "identity"})
    assert plain.status == 200 and "content-encoding" not in plain.headers
    assert plain.headers["etag"] != first.headers["etag"]
    assert plain.tile() == first.tile()
    # after the freshness window nginx revalidates: the server answers 304, nginx the tile
    time.sleep(FRESH + 0.5)
    later = _get(nginx, path)
    assert later.status == 200 and later.body == first.body
    assert later.headers["x-cache-status"] in ("REVALIDATED", "STALE", "UPDATING", "HIT")


def test_a_registrars_tile_is_never_served_to_the_public(nginx: int, server: Server,
                                                         env: dict) -> None:
    _, path, _ = parcel_tile(env["url"], z=17)
    token = _token(nginx)
    auth = {"Authorization": f"Bearer {token}"}
    direct_public = server.request("GET", path, headers={"Accept-Encoding": "gzip"})
    direct_registrar = server.request("GET", path, headers={"Accept-Encoding": "gzip", **auth})
    assert direct_public.headers["etag"] != direct_registrar.headers["etag"]  # role-aware
    # the registrar asks first: bypassed, not stored
    mine = [_get(nginx, path, **auth) for _ in range(3)]
    assert {r.headers["x-cache-status"] for r in mine} == {"BYPASS"}
    assert {r.headers["etag"] for r in mine} == {direct_registrar.headers["etag"]}
    assert all(r.headers["cache-control"].startswith("private") for r in mine)
    # the public then gets the public tile (a miss: nothing was stored), then from the cache
    public = [_get(nginx, path) for _ in range(3)]
    assert [r.headers["x-cache-status"] for r in public] == ["MISS", "HIT", "HIT"]
    assert {r.headers["etag"] for r in public} == {direct_public.headers["etag"]}
    public_fields = {k for f in public[0].tile()["parcels"]["features"] for k in f["properties"]}
    mine_fields = {k for f in mine[0].tile()["parcels"]["features"] for k in f["properties"]}
    assert public_fields < mine_fields
    # and the registrar, with the public tile cached, still gets the registrar's
    again = _get(nginx, path, **auth)
    assert again.headers["x-cache-status"] == "BYPASS"
    assert again.headers["etag"] == direct_registrar.headers["etag"]
    key = _get(nginx, path, **{"X-API-Key": "not-a-key"})   # any credential bypasses
    assert key.headers["x-cache-status"] == "BYPASS"


def test_an_edit_reaches_nginx_visitors(nginx: int, server: Server, env: dict) -> None:
    code, path, moved = parcel_tile(env["url"], z=18)
    before = _get(nginx, path)
    assert _get(nginx, path).headers["x-cache-status"] == "HIT"
    move_parcel(env["url"], code, moved)
    deadline = time.monotonic() + FRESH + 15
    now = before
    while time.monotonic() < deadline:
        now = _get(nginx, path)
        if now.headers["etag"] != before.headers["etag"]:
            break
        time.sleep(0.3)
    assert now.status == 200 and now.headers["etag"] != before.headers["etag"]
    assert now.headers["etag"] == server.request(
        "GET", path, headers={"Accept-Encoding": "gzip"}).headers["etag"]
    assert now.tile() != before.tile()
