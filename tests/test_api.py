"""The HTTP server: health endpoint through the app, and a real `cadastre serve` process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from cadastre.settings import Settings
from tests.support import free_port


def test_health_reports_versions_and_counts(demo_url: str, test_settings: Settings,
                                            registrar_token: str) -> None:
    """Staff see versions and counts (the public sees up/down only: test_http_hardening)."""
    settings = Settings(storage={"data_dir": test_settings.data_dir},
                        database={"url": demo_url})
    with TestClient(create_app(settings)) as client:
        r = client.get("/health", headers={"Authorization": f"Bearer {registrar_token}"})
        assert r.status_code == 200
        body = r.json()
    assert body["status"] == "ok"
    assert body["postgresql"].startswith(("14", "15", "16", "17"))
    assert body["postgis"].startswith("3.")
    assert body["schema_version"] >= 1
    with psycopg.connect(demo_url) as conn:
        units = conn.execute("SELECT count(*) FROM cad.unit WHERE valid_to IS NULL").fetchone()[0]
    assert body["counts"]["units"] == units >= 20000
    assert body["counts"]["parcels"] >= 2000


def test_errors_have_stable_codes(demo_url: str, test_settings: Settings) -> None:
    settings = Settings(storage={"data_dir": test_settings.data_dir},
                        database={"url": demo_url})
    with TestClient(create_app(settings)) as client:
        r = client.get("/no/such/path")
    assert r.status_code == 404


def test_cadastre_serve_process_answers(demo_url: str, test_settings: Settings,
                                        registrar_token: str) -> None:
    """`cadastre serve` as a real process against the demo database."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": demo_url, "CADASTRE_PORT": str(port),
           "CADASTRE_DATA_DIR": str(test_settings.data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5,
                              headers={"Authorization": f"Bearer {registrar_token}"})
                if r.status_code == 200:
                    body = r.json()
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert body is not None, proc.stdout.read() if proc.poll() is not None else "no answer"
        assert body["counts"]["parcels"] >= 2000
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "不动产" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
