"""Issue #21 item by item, with the exact requests the issue lists and their neighbours, through
the real app on a small district of its own (and, for the proxy headers, real ``cadastre serve``
processes): proxy headers, NUL bytes, number bounds, body limits, security headers, one error
shape with HEAD/404/405, rate-limit classes by route, no echo, health, docs/errors.md."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.problems import MEDIA_TYPE, is_problem
from cadastre.access.accounts import create_account
from cadastre.access.idnumber import build_id_number
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import Role
from cadastre.settings import Settings

PASSWORD = "hardening registrar password"


@pytest.fixture(scope="module")
def env(make_db, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from cadastre.demo.load import load_demo

    url = make_db("hard")
    with psycopg.connect(url) as conn:
        load_demo(conn, load_cipher(test_settings), parcels=40, seed=21)
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, "hard.reg", PASSWORD, Role.REGISTRAR)
    data_dir = tmp_path_factory.mktemp("hard_app")
    (data_dir / "secrets.json").write_bytes((test_settings.data_dir / "secrets.json").read_bytes())
    return {"url": url, "data_dir": data_dir}


def _client(env: dict, **api: object) -> TestClient:
    from api.app import create_app

    return TestClient(create_app(Settings(storage={"data_dir": env["data_dir"]},
                                          database={"url": env["url"]}, api=api)))


@pytest.fixture(scope="module")
def client(env: dict) -> Iterator[TestClient]:
    with _client(env, rate_limit_enabled=False) as c:
        yield c


def _problem(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith(MEDIA_TYPE)
    body = r.json()
    assert is_problem(body, status), body
    if code:
        assert body["code"] == code, body
    return body


def _names(c: TestClient) -> tuple[str, str]:
    names = c.get("/api/v1/3d/datasets").json()["datasets"]
    return (names[0]["name"] if names else "demo-units"), "demo-ortho"


# ------------------------------------------------------------------ 1. proxy headers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(env: dict, **extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        env={**os.environ, "DATABASE_URL": env["url"], "CADASTRE_DATA_DIR": str(env["data_dir"]),
             **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("cadastre serve did not start")


def _guess(base: str, i: int, **headers: str) -> httpx.Response:
    stranger = build_id_number("330106", date(1960, 1, 1 + i % 28), 300 + i)
    return httpx.post(base + "/api/v1/owner/verify", headers=headers, timeout=10, json={
        "name": "赵无名", "id_number": stranger,
        "certificate_no": f"浙(2020)杭州市不动产权第{i:07d}号"})


def test_forwarded_for_is_believed_only_from_trusted_proxies(env: dict) -> None:
    forged = {"X-Forwarded-For": "198.51.100.1"}
    with psycopg.connect(env["url"], autocommit=True) as conn:
        conn.execute("DELETE FROM auth.failure")
    proc, base = _serve(env)          # no trusted proxy: 127.0.0.1's header is not believed
    try:
        assert [_guess(base, i).status_code for i in range(5)] == [401] * 5
        _problem(_guess(base, 5), 429, "OWNER_LOCKED")
        locked = _guess(base, 6, **forged)          # the bypass: still locked
        _problem(locked, 429, "OWNER_LOCKED")
        assert int(locked.headers["retry-after"]) >= 1
        _problem(_guess(base, 7, **{"X-Forwarded-For": "198.51.100.2, 127.0.0.1"}), 429)
    finally:
        proc.terminate()
        proc.wait(20)
    # a configured proxy (this test plays it from 127.0.0.1): the forwarded client counts
    proc, base = _serve(env, CADASTRE_TRUSTED_PROXIES='["127.0.0.1"]')
    try:
        assert _guess(base, 8, **forged).status_code == 401       # another client
        _problem(_guess(base, 9), 429, "OWNER_LOCKED")            # the proxy itself: locked
    finally:
        proc.terminate()
        proc.wait(20)
        with psycopg.connect(env["url"], autocommit=True) as conn:
            conn.execute("DELETE FROM auth.failure")


# ------------------------------------------------------------------ 2. NUL bytes
def test_nul_bytes_answer_400_and_keep_the_connection(client: TestClient) -> None:
    threed, _ = _names(client)
    for url in ("/api/v1/search?q=abc%00def", f"/3dtiles/{threed}/%00.json",
                f"/3dtiles/{threed}/tileset.json%00", "/app/%00.js", "/vendor/%00",
                "/tiles/parcels/16/54613/26700.mvt%00", "/api/v1/search?q=%00",
                "/api/v1/parcels/%00", "/glyphs/%00/0-255.pbf", "/ogc/collections/%00"):
        _problem(client.get(url), 400, "REQUEST_INVALID")
    # a NUL inside a JSON body: the database refuses the text, the caller gets a 400
    _problem(client.post("/api/v1/auth/login", json={"username": "a\x00b", "password": "x\x00"}),
             400, "INVALID_INPUT")
    # neighbours without NUL still work
    assert client.get("/api/v1/search?q=abcdef").status_code == 200


def test_nul_over_a_real_keep_alive_connection(env: dict) -> None:
    proc, base = _serve(env)
    try:
        with httpx.Client(base_url=base, timeout=10) as h:
            for _ in range(3):
                r = h.get("/api/v1/search?q=abc%00def")
                _problem(r, 400, "REQUEST_INVALID")
                assert r.headers.get("connection") != "close"
            assert h.get("/api/v1/search?q=abcdef").status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)


# ------------------------------------------------------------------ 3. numbers
@pytest.mark.parametrize("url", [
    "/api/v1/here?lon=120.02&lat=30.24&floor=99999999999999999999",
    "/api/v1/here?lon=120.02&lat=30.24&floor=201", "/api/v1/here?lon=120.02&lat=30.24&floor=-10",
    "/tiles/units/16/54613/26700.mvt?floor=99999999999999999999",
    "/api/v1/search?q=abcdef&limit=99999999999999999999",
    "/ogc/collections/units/items?floor=99999999999999999999",
    "/ogc/collections/parcels/items?limit=99999999999999999999",
    "/api/v1/here?lon=1e999&lat=30.24", "/api/v1/here?lon=nan&lat=30.24",
])
def test_out_of_range_numbers_are_4xx(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert 400 <= r.status_code < 500, (url, r.status_code)
    _problem(r, r.status_code)


def test_in_range_numbers_still_work(client: TestClient) -> None:
    assert client.get("/api/v1/here?lon=120.02&lat=30.24&floor=3").status_code in (200, 404)
    assert client.get("/tiles/units/16/54613/26700.mvt?floor=3").status_code in (200, 204)


# ------------------------------------------------------------------ 4. body limits
def test_request_bodies_are_limited(client: TestClient) -> None:
    big = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    for path in ("/api/v1/owner/verify", "/api/v1/auth/login", "/api/v1/owner/verify-qr",
                 "/api/v1/qa/runs", "/api/v1/3d/builds"):
        r = client.post(path, content=big, headers={"Content-Type": "application/json"})
        _problem(r, 413, "BODY_TOO_LARGE")

    def chunks() -> Iterator[bytes]:     # no Content-Length: counted while streamed
        yield b'{"name": "'
        for _ in range(200):
            yield b"y" * 65536
        yield b'"}'
    _problem(client.post("/api/v1/auth/login", content=chunks(),
                         headers={"Content-Type": "application/json"}), 413, "BODY_TOO_LARGE")
    # just under the limit: parsed and answered normally
    ok = client.post("/api/v1/auth/login", json={"username": "x" * 100, "password": "y" * 100})
    _problem(ok, 422)


def test_upload_route_has_the_upload_limit(env: dict, client: TestClient) -> None:
    from api.guards import RequestGuard

    guard = RequestGuard(None, body_bytes=64 * 1024, upload_bytes=200 * 1024 * 1024)  # type: ignore[arg-type]
    assert guard.limit({"method": "POST", "path": "/api/v1/surveys"}) > 200 * 1024 * 1024
    assert guard.limit({"method": "POST", "path": "/api/v1/auth/login"}) == 64 * 1024
    token = client.post("/api/v1/auth/login", json={"username": "hard.reg",
                                                   "password": PASSWORD}).json()["access_token"]
    # a 1 MB upload passes the body limit (then the reader judges the file)
    r = client.post("/api/v1/surveys", headers={"Authorization": f"Bearer {token}"},
                    files={"file": ("survey.geojson", b" " * 1024 * 1024, "application/json")})
    assert r.status_code != 413


# ------------------------------------------------------------------ 5. security headers
def test_security_headers_on_every_kind_of_response(client: TestClient) -> None:
    for r in (client.get("/"), client.get("/api/v1/search?q=abcdef"), client.get("/nope"),
              client.get("/tiles/parcels/16/54613/26700.mvt"), client.get("/docs"),
              client.get("/styles/cadastre.json")):
        h = r.headers
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "script-src 'self'" in h["content-security-policy"]
        assert "'wasm-unsafe-eval'" in h["content-security-policy"]
        assert ("'unsafe-eval'" in h["content-security-policy"]) is (r.url.path == "/")
        assert h["x-frame-options"] == "DENY" and h["referrer-policy"] == "no-referrer"
        assert h["x-content-type-options"] == "nosniff"


# ------------------------------------------------------------------ 6. one error shape
def test_unknown_routes_wrong_methods_and_head(client: TestClient) -> None:
    _problem(client.get("/no/such/path"), 404, "ROUTE_NOT_FOUND")
    _problem(client.get("/api/v1/nope"), 404, "ROUTE_NOT_FOUND")
    r = client.put("/api/v1/search?q=abcdef")
    _problem(r, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in r.headers["allow"]
    _problem(client.delete("/api/v1/auth/login"), 405)
    _problem(client.request("PROPFIND", "/api/v1/search"), 405)
    _problem(client.post("/api/v1/auth/login", content=b"{not json",
                         headers={"Content-Type": "application/json"}), 422, "INVALID_REQUEST")
    _problem(client.get("/api/v1/units/nope"), 404, "UNIT_NOT_FOUND")
    _problem(client.get("/api/v1/qa/rules"), 401)
    # HEAD works wherever GET does: same status and headers, no body
    threed, _ = _names(client)
    for url in ("/api/v1/search?q=abcdef", "/health", "/openapi.json", "/styles/cadastre.json",
                "/api/v1/parcels/nope", "/", f"/3dtiles/{threed}/tileset.json",
                "/tiles/parcels/16/54613/26700.mvt", "/api/v1/rasters", "/docs"):
        get, head = client.get(url), client.head(url)
        assert head.status_code == get.status_code, url
        assert head.content == b"" and head.headers.get("content-type") == \
            get.headers.get("content-type"), url


def test_every_error_in_the_crawl_has_the_shape(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    seen = 0
    for template, ops in spec["paths"].items():
        url = template.replace("{", "").replace("}", "")     # placeholders as literal names
        for method in ops:
            r = client.request(method.upper(), url)
            if r.status_code >= 400:
                _problem(r, r.status_code)
                seen += 1
    assert seen >= 40


# ------------------------------------------------------------------ 7. rate-limit classes
def test_rate_limit_classes_follow_routes_not_substrings(env: dict) -> None:
    with _client(env, rate_limit_auth_per_minute=2) as c:
        for _ in range(5):    # /api/v1/audit/verify is in the general bucket now
            _problem(c.get("/api/v1/audit/verify"), 401)
        bad = {"username": "nobody.x", "password": "wrong password"}
        assert [c.post("/api/v1/auth/login", json=bad).status_code for _ in range(3)] == \
            [401, 401, 429]
        _problem(c.post("/api/v1/owner/verify", json={}), 429, "RATE_LIMITED")
        _problem(c.get("/verify/c/abc"), 429)
        assert c.get("/api/v1/audit/verify").status_code == 401     # still not strict
        assert c.get("/api/v1/auth/purposes").status_code == 200
    with psycopg.connect(env["url"], autocommit=True) as conn:
        conn.execute("DELETE FROM auth.failure")


# ------------------------------------------------------------------ 8. no echo
def test_errors_echo_nothing_of_the_request(client: TestClient) -> None:
    threed, raster = _names(client)
    secret = "John Smith passport E1234567"
    for url in (f"/3dtiles/{threed}/John%20Smith%20passport%20E1234567.json",
                f"/3dtiles/{threed}/tileset.json/John%20Smith%20passport%20E1234567",
                "/3dtiles/John%20Smith%20passport%20E1234567/tileset.json",
                "/raster/John%20Smith%20passport%20E1234567/1/0/0.png",
                "/glyphs/John%20Smith%20passport%20E1234567/0-255.pbf",
                "/glyphs/Noto%20Sans%20CJK%20SC%20Regular/E1234567.pbf",
                "/api/v1/parcels/John%20Smith%20passport%20E1234567",
                "/styles/John%20Smith%20passport%20E1234567.json",
                "/app/John%20Smith%20passport%20E1234567.js"):
        r = client.get(url)
        assert 400 <= r.status_code < 500, url
        for word in secret.split():
            assert word not in r.text, (url, r.text)


# ------------------------------------------------------------------ 9. health
def test_public_health_says_up_only_staff_see_details(env: dict, client: TestClient) -> None:
    public = client.get("/health")
    assert public.status_code == 200 and public.json() == {"status": "ok"}
    token = client.post("/api/v1/auth/login", json={"username": "hard.reg",
                                                   "password": PASSWORD}).json()["access_token"]
    staff = client.get("/health", headers={"Authorization": f"Bearer {token}"}).json()
    with psycopg.connect(env["url"]) as conn:
        parcels = conn.execute("SELECT count(*) FROM cad.parcel WHERE valid_to IS NULL").fetchone()
    assert staff["status"] == "ok" and staff["postgresql"] and staff["counts"]["parcels"] == \
        parcels[0] > 0


# ------------------------------------------------------------------ docs/errors.md
def test_error_docs_are_generated_from_the_code() -> None:
    from api.errordocs import catalogue, render
    from cadastre.settings import PROJECT_ROOT

    assert (PROJECT_ROOT / "docs" / "errors.md").read_text() == render(), \
        "docs/errors.md is stale: python -m api.errordocs > docs/errors.md"
    codes = {e.code: e for e in catalogue()}
    for code, status in (("OWNER_LOCKED", 429), ("RATE_LIMITED", 429), ("BODY_TOO_LARGE", 413),
                         ("ROUTE_NOT_FOUND", 404), ("METHOD_NOT_ALLOWED", 405),
                         ("REQUEST_INVALID", 400), ("DATABASE_UNREACHABLE", 503),
                         ("UNIT_NOT_FOUND", 404), ("FLOOR_REQUIRED", 400),
                         ("INVALID_REQUEST", 422), ("INTERNAL_ERROR", 500)):
        assert status in codes[code].statuses, code
