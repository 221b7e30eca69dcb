"""Crashes, with real server processes killed by SIGKILL: an event committed with its 登簿 but not
yet delivered is delivered after a restart (the outbox), and a survey validation interrupted in
the middle is retried by a worker (never left "running")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from cadastre.access import apikeys
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import Role
from cadastre.settings import Settings
from cadastre.sharing import subscriptions as subs
from tests.conftest import app_data_dir
from tests.sharing_support import Receiver
from tests.support import free_port


class Server:
    """``cadastre serve`` (or ``cadastre worker``) as a process on the database at ``url``."""

    def __init__(self, url: str, data_dir: Path, command: str = "serve", **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CADASTRE_")}
        environ.update({"DATABASE_URL": url, "CADASTRE_DATA_DIR": str(data_dir),
                        "CADASTRE_PORT": str(self.port), **env})
        self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", command], env=environ,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self) -> Server:
        for _ in range(300):
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server did not start")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    url = small_district("crash", [("reg.crash", "registrar password", Role.REGISTRAR, "孙登簿")])
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("crash_app"))
    settings = Settings(storage={"data_dir": data_dir})
    with psycopg.connect(url, autocommit=True) as conn:
        apikeys.create_key(conn, apikeys.hashing_key(settings), "gas", ["330106"],
                           ["unit.unit_code", "unit.seat", "party.name", "party.role"])
    return {"url": url, "data_dir": data_dir, "settings": settings}


def _login(base: str) -> dict[str, str]:
    token = httpx.post(base + "/api/v1/auth/login", json={
        "username": "reg.crash", "password": "registrar password"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_an_event_committed_before_a_crash_is_delivered_after_the_restart(env) -> None:
    url = env["url"]
    receiver = Receiver().start()
    with psycopg.connect(url) as conn:
        _, receiver.secret = subs.add(conn, load_cipher(env["settings"]), "gas-co",
                                      receiver.url, "gas", ["transfer.recorded"])
        conn.commit()
        unit = conn.execute(
            "SELECT r.unit_code FROM cad.right_record r WHERE r.kind = 'ownership' AND "
            "r.status = 1 AND NOT EXISTS (SELECT 1 FROM cad.right_record x WHERE x.unit_code = "
            "r.unit_code AND x.status = 1 AND x.kind NOT IN ('ownership', 'cancellation')) "
            "ORDER BY 1 LIMIT 1").fetchone()[0].strip()
    first = Server(url, env["data_dir"], CADASTRE_DELIVERIES="false").wait_ready()
    try:
        h = _login(first.base)
        case_no = httpx.post(first.base + "/api/v1/cases", headers=h, json={
            "business_type": 7, "unit_codes": [unit],
            "parties": [{"name": "上官燕", "id_number": "11010519491231002X"}],
            "request": {"transaction_price": "450"}}).json()["case_no"]
        for body in ({"action": "review", "review": {"step": "初审", "opinion": "同意"}},
                     {"action": "register"}):
            assert httpx.post(f"{first.base}/api/v1/cases/{case_no}/actions", headers=h,
                              json=body, timeout=30).status_code == 200
    finally:
        first.kill()            # committed, never delivered
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM share.event WHERE type = 'transfer.recorded' "
                            "AND case_no = %s", (case_no,)).fetchone()[0] == 1
    assert receiver.attempts == []
    second = Server(url, env["data_dir"]).wait_ready()
    try:
        receiver.wait_for(1, timeout=60)
    finally:
        second.kill()
        receiver.stop()
    (event,) = receiver.processed.values()
    assert event["type"] == "transfer.recorded" and event["units"][0]["unit_code"] == unit
    assert any(p.get("name") == "上官燕" for r in event["rights"] for p in r["parties"])


def test_a_validation_killed_midway_is_retried_by_a_worker(env, tmp_path: Path) -> None:
    url = env["url"]
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT parcel_code, ST_AsGeoJSON(ST_GeometryN(geom, 1), 3) FROM "
                           "cad.parcel WHERE valid_to IS NULL ORDER BY parcel_code LIMIT 1"
                           ).fetchone()
    survey = tmp_path / "one.geojson"
    survey.write_text('{"type": "FeatureCollection", "crs": {"type": "name", "properties": '
                      '{"name": "urn:ogc:def:crs:EPSG::4528"}}, "features": [{"type": "Feature",'
                      f' "properties": {{"kind": "parcel", "ZDDM": "{row[0]}", "seat": '
                      f'"崩溃测试路1号"}}, "geometry": {row[1]}}}]}}', encoding="utf-8")
    lease = {"CADASTRE_JOB_LEASE_SECONDS": "3", "CADASTRE_JOB_WORKERS": "1"}
    blocker = psycopg.connect(url)
    blocker.execute("LOCK TABLE cad.survey_feature IN ACCESS EXCLUSIVE MODE")  # the job's start
    first = Server(url, env["data_dir"], **lease).wait_ready()
    try:
        h = _login(first.base)
        with survey.open("rb") as fh:
            r = httpx.post(first.base + "/api/v1/surveys", headers=h,
                           files={"file": (survey.name, fh)}, timeout=30)
        job_id = r.json()["job_id"]
        with psycopg.connect(url, autocommit=True) as watch:
            deadline = time.monotonic() + 30
            while watch.execute("SELECT status FROM cad.job WHERE job_id = %s",
                                (job_id,)).fetchone()[0] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        first.kill()            # in the middle of the validation
        blocker.rollback()
        blocker.close()
    with psycopg.connect(url) as conn:
        status, attempts = conn.execute("SELECT status, attempts FROM cad.job WHERE "
                                        "job_id = %s", (job_id,)).fetchone()
    assert (status, attempts) == ("running", 1)
    worker = Server(url, env["data_dir"], "worker", **lease)     # `cadastre worker` takes over
    try:
        deadline = time.monotonic() + 90
        while True:
            with psycopg.connect(url) as conn:
                status, attempts, error = conn.execute(
                    "SELECT status, attempts, error_code FROM cad.job WHERE job_id = %s",
                    (job_id,)).fetchone()
                sub = conn.execute("SELECT status FROM cad.survey_submission WHERE job_id = %s",
                                   (job_id,)).fetchone()[0]
            if status in ("done", "failed"):
                break
            assert time.monotonic() < deadline, (status, attempts)
            time.sleep(0.5)
    finally:
        worker.kill()
    assert (status, attempts, error) == ("done", 2, None)
    assert sub in ("validated", "invalid")
