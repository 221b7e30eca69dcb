"""The exchange import over HTTP: a registrar uploads, a background job validates with progress,
the report lists counts, the accept writes the register; others are refused; the bulletin
comes as JSON, CSV and PDF."""

from __future__ import annotations

import time

import psycopg

from cadastre.access.accounts import create_account
from cadastre.access.privacy import Role
from cadastre.settings import Settings
from tests.conftest import app_data_dir, client_for
from tests.exchange_support import make_message_set


def test_import_over_http(make_db, test_settings, tmp_path):
    url = make_db("xapi")
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, "reg.x", "registrar password", Role.REGISTRAR)
        create_account(conn, "svy.x", "surveyor password", Role.SURVEYOR)
    settings = Settings(storage={"data_dir": app_data_dir(test_settings, tmp_path / "app")})
    data = make_message_set(parcels=2, floors=2, per_floor=2).zip_bytes()
    with client_for(url, settings) as client:
        auth = {}
        for user, pw in (("reg.x", "registrar password"), ("svy.x", "surveyor password")):
            r = client.post("/api/v1/auth/login", json={"username": user, "password": pw})
            auth[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        files = {"file": ("set.zip", data, "application/zip")}
        assert client.post("/api/v1/exchange/imports", files=files).status_code == 401
        assert client.post("/api/v1/exchange/imports", files=files,
                           headers=auth["svy.x"]).status_code == 403
        r = client.post("/api/v1/exchange/imports", files=files, headers=auth["reg.x"])
        assert r.status_code == 202, r.text
        bid = r.json()["batch_id"]
        deadline = time.monotonic() + 60
        while True:
            status = client.get(f"/api/v1/exchange/imports/{bid}", headers=auth["reg.x"]).json()
            # the batch's status is committed just before its job is marked done
            if status["status"] in ("validated", "invalid", "failed") and \
                    status["job"]["status"] != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status["status"] == "validated", status
        assert status["job"]["status"] == "done" and status["job"]["progress"] == 1
        report = client.get(f"/api/v1/exchange/imports/{bid}/report",
                            headers=auth["reg.x"]).json()
        assert report["counts"]["unit"]["new"] == 8
        out = client.post(f"/api/v1/exchange/imports/{bid}/accept", headers=auth["reg.x"])
        assert out.status_code == 200, out.text
        assert out.json()["written"]["unit"] == 8
        again = client.post(f"/api/v1/exchange/imports/{bid}/accept", headers=auth["reg.x"])
        assert again.status_code == 400 and again.json()["code"] == "IMPORT_STATE"
        b = client.get("/api/v1/exchange/bulletins/330106/2026-06", headers=auth["reg.x"])
        assert b.status_code == 200 and b.json()["sample"]["sampled"] == 0
        pdf = client.get("/api/v1/exchange/bulletins/330106/2026-06?format=pdf",
                         headers=auth["reg.x"])
        assert pdf.content.startswith(b"%PDF")
        csv_text = client.get("/api/v1/exchange/bulletins/330106/2026-06?format=csv",
                              headers=auth["reg.x"]).text
        assert csv_text.startswith("section,key,value")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM cad.unit").fetchone()[0] == 8
