"""Security infrastructure through the real app on a small district of its own: rate limits (429 +
Retry-After), login lockout, department API keys (scope, revocation, expiry, CLI), lawful purpose
and case reference, the audit trail (API and CLI verify/export, tampering by SQL), PII-free logs
and error responses, and audit rows for every registrar/surveyor read and change."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from fastapi import Depends
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import principal
from api.problems import problem
from cadastre.access import apikeys, logsafe
from cadastre.access.accounts import create_account
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.settings import Settings
from tests.conftest import app_data_dir

ID_NUMBER = "11010519491231002X"       # valid GB 11643 check character
PHONE = "13912345678"
CERT = "浙(2021)杭州市不动产权第0012345号"
PASSWORDS = {"reg.sec": "registrar password", "aud.sec": "auditor password",
             "int.sec": "interested password", "lock.me": "lock me password"}
PURPOSE = {"X-Purpose": "litigation", "X-Case-Ref": quote("(2024)浙0106民初1234号")}


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    url = small_district("sec", [(user, PASSWORDS[user], role) for user, role in (
        ("reg.sec", Role.REGISTRAR), ("aud.sec", Role.AUDITOR), ("int.sec", Role.INTERESTED),
        ("lock.me", Role.REGISTRAR))])
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("sec_app"))
    return {"url": url, "data_dir": data_dir,
            "settings": Settings(storage={"data_dir": data_dir}, database={"url": url})}


def client(env: dict, **api: object) -> TestClient:
    s = Settings(storage={"data_dir": env["data_dir"]}, database={"url": env["url"]}, api=api)
    app = create_app(s)

    # echoes the resolved principal: exercises api.auth.principal through a real request
    @app.get("/api/v1/_whoami", include_in_schema=False)
    def whoami(who: Principal = Depends(principal)) -> dict:  # noqa: B008
        return {"role": who.role.value, "subject": who.subject, "counties": list(who.counties),
                "fields": list(who.fields), "purpose": who.purpose, "case_ref": who.case_ref,
                "actor": who.actor}

    return TestClient(app)


def login(c: TestClient, user: str, **headers: str) -> dict[str, str]:
    r = c.post("/api/v1/auth/login", json={"username": user, "password": PASSWORDS[user]},
               headers=headers)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def audit_rows(url: str, since_seq: int = 0) -> list[dict]:
    with psycopg.connect(url) as conn:
        cur = conn.execute("SELECT seq, actor, role, action, target, purpose, case_ref, "
                           "result_count, outcome FROM audit.log WHERE seq > %s ORDER BY seq",
                           (since_seq,))
        cols = [d.name for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]


def head_seq(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT coalesce(max(seq), 0) FROM audit.log").fetchone()[0]


# ------------------------------------------------------------------------ rate limits
def test_rate_limit_429_with_retry_after_per_path_class(env: dict) -> None:
    with client(env, rate_limit_per_minute=5, rate_limit_tiles_per_minute=50) as c:
        codes = [c.get("/api/v1/rasters").status_code for _ in range(5)]
        assert codes == [200] * 5
        r = c.get("/api/v1/rasters")
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "RATE_LIMITED"
        retry = int(r.headers["retry-after"])
        assert 1 <= retry <= 60   # 5/min refills one token every 12 s
        # other classes have their own buckets: tiles (and the viewer's files) still load
        t = c.get("/tiles/parcels/16/54613/26700.mvt")
        assert t.status_code in (200, 204)
        # the limiter runs before routing: unknown API paths are limited too (no probing)
        assert c.get("/api/v1/no/such/path").status_code == 429


def test_rate_limit_per_client_address_and_per_credential(env: dict) -> None:
    with client(env, rate_limit_per_minute=4, trusted_proxies=["testclient"]) as c:
        token = login(c, "reg.sec", **{"X-Forwarded-For": "10.0.0.99"})
        # the same token from four different addresses: its own bucket runs dry
        statuses = [c.get("/api/v1/qa/rules", headers={**token, "X-Forwarded-For": f"10.0.1.{i}"}
                          ).status_code for i in range(5)]
        assert statuses == [200] * 4 + [429]
        # anonymous clients at fresh addresses are not affected
        assert c.get("/api/v1/rasters", headers={"X-Forwarded-For": "10.0.2.1"}).status_code == 200
        # one address: limited after 4 whatever the credential
        same = [c.get("/api/v1/rasters", headers={"X-Forwarded-For": "10.0.3.1"}).status_code
                for _ in range(5)]
        assert same == [200] * 4 + [429]
        # X-Forwarded-For from an untrusted peer is ignored (no bucket hopping by header)
    with client(env, rate_limit_per_minute=3) as c:
        hopping = [c.get("/api/v1/rasters", headers={"X-Forwarded-For": f"10.0.4.{i}"}
                         ).status_code for i in range(4)]
        assert hopping == [200] * 3 + [429]


def test_login_and_verification_have_a_strict_bucket(env: dict) -> None:
    with client(env, rate_limit_auth_per_minute=3) as c:
        bad = {"username": "nobody.sec", "password": "wrong password"}
        codes = [c.post("/api/v1/auth/login", json=bad).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        assert c.post("/api/v1/owner/verify", json={}).status_code == 429
        assert c.get("/api/v1/rasters").status_code == 200   # the general bucket is separate
    with psycopg.connect(env["url"], autocommit=True) as conn:
        conn.execute("DELETE FROM auth.failure")


def test_rate_limits_can_be_disabled(env: dict) -> None:
    with client(env, rate_limit_enabled=False, rate_limit_per_minute=1) as c:
        assert {c.get("/api/v1/rasters").status_code for _ in range(5)} == {200}


# ------------------------------------------------------------------------ login lockout
def test_login_lockout_after_repeated_failures(env: dict) -> None:
    url = env["url"]
    with client(env) as c:
        wrong = {"username": "lock.me", "password": "not the password"}
        first = [c.post("/api/v1/auth/login", json=wrong) for _ in range(5)]
        assert {r.status_code for r in first} == {401}
        right = c.post("/api/v1/auth/login",
                       json={"username": "lock.me", "password": PASSWORDS["lock.me"]})
        # locked: even the right password fails, with the very same answer
        assert right.status_code == 401 and right.json() == first[0].json()
        # an unknown username locks the same way (nothing learnt about who exists)
        ghost = [c.post("/api/v1/auth/login", json={"username": "ghost.sec", "password": "x"})
                 for _ in range(6)]
        assert {r.status_code for r in ghost} == {401}
        assert {json.dumps(r.json()) for r in ghost} == {json.dumps(first[0].json())}
        # other accounts are not affected
        login(c, "reg.sec")
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*), bool_and(octet_length(subject_hash) = 32) "
                                  "FROM auth.failure WHERE kind = 'login'").fetchone()
            # keyed hashes only: no username in the table
            dump = conn.execute("SELECT string_agg(f::text, ' ') FROM auth.failure f").fetchone()
        assert stored[0] == 10 and stored[1]   # failures while locked are not counted
        assert "lock.me" not in dump[0] and "ghost" not in dump[0]
        # the lock ends with the window (time moved by SQL instead of waiting 15 minutes)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE auth.failure SET at = at - interval '16 minutes'")
        login(c, "lock.me")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM auth.failure")


def test_login_lockout_per_client_address(env: dict) -> None:
    with client(env, login_max_client_failures=3, trusted_proxies=["testclient"]) as c:
        spray = {"X-Forwarded-For": "10.7.7.7"}
        for user in ("a.sec", "b.sec", "c.sec"):   # password spraying over many usernames
            assert c.post("/api/v1/auth/login", json={"username": user, "password": "x"},
                          headers=spray).status_code == 401
        r = c.post("/api/v1/auth/login", headers=spray,
                   json={"username": "reg.sec", "password": PASSWORDS["reg.sec"]})
        assert r.status_code == 401
        login(c, "reg.sec", **{"X-Forwarded-For": "10.8.8.8"})   # other clients still log in
    with psycopg.connect(env["url"], autocommit=True) as conn:
        conn.execute("DELETE FROM auth.failure")


# ------------------------------------------------------------------------ API keys
def _key(env: dict, name: str, fields: list[str], counties: list[str] | None = None,
         days: int | None = None) -> tuple[apikeys.ApiKey, str]:
    with psycopg.connect(env["url"], autocommit=True) as conn:
        return apikeys.create_key(conn, apikeys.hashing_key(env["settings"]), name,
                                  counties or ["330106"], fields, days)


def test_api_key_principal_scope_and_failures(env: dict) -> None:
    key, token = _key(env, "court-exec", ["unit.unit_code", "unit.seat", "parcel.*"])
    assert token.startswith(f"cdk_{key.key_id.hex}_")
    assert "parcel.seat" in key.fields and "parcel.computed_area" in key.fields
    assert "parcel.version_id" not in key.fields     # parcel.* = what departments may see
    with client(env) as c:
        h = {"X-API-Key": token, **PURPOSE}
        me = c.get("/api/v1/_whoami", headers=h)
        assert me.status_code == 200, me.text
        me = me.json()
        assert me["role"] == "department" and me["subject"] == str(key.key_id)
        assert me["counties"] == ["330106"] and "unit.seat" in me["fields"]
        assert me["purpose"] == "litigation" and me["case_ref"] == "(2024)浙0106民初1234号"
        assert me["actor"] == f"department:{key.key_id}"
        # departments state a purpose with every query
        r = c.get("/api/v1/_whoami", headers={"X-API-Key": token})
        assert r.status_code == 400 and r.json()["error"]["code"] == "PURPOSE_REQUIRED"
        # the purpose check also guards real routes (a tile no one fetched before: warm
        # public tiles are served before routing, see api/fastpath.py)
        r = c.get("/tiles/buildings/17/109227/53401.mvt", headers={"X-API-Key": token})
        assert r.status_code == 400 and r.json()["error"]["code"] == "PURPOSE_REQUIRED"
        assert c.get("/tiles/buildings/17/109227/53401.mvt", headers=h).status_code in (200, 204)
        # a bearer token and a key at once is refused
        r = c.get("/api/v1/_whoami", headers={**h, "Authorization": "Bearer x"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "CREDENTIALS_CONFLICT"
        # unknown, malformed, wrong secret, revoked and expired keys: one answer
        answers = []
        for bad in ("cdk_" + uuid.uuid4().hex + "_" + "A" * 43, "not-a-key",
                    token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")):
            answers.append(c.get("/api/v1/_whoami", headers={**PURPOSE, "X-API-Key": bad}))
        exp_key, exp_token = _key(env, "expiring", ["unit.unit_code"], days=1)
        with psycopg.connect(env["url"], autocommit=True) as conn:
            conn.execute("UPDATE auth.api_key SET expires_at = now() - interval '1 minute' "
                         "WHERE key_id = %s", (exp_key.key_id,))
            apikeys.revoke_key(conn, "court-exec")
        answers.append(c.get("/api/v1/_whoami", headers={**PURPOSE, "X-API-Key": exp_token}))
        answers.append(c.get("/api/v1/_whoami", headers=h))   # revoked, effective at once
        assert {r.status_code for r in answers} == {401}
        assert {json.dumps(r.json()) for r in answers} == {json.dumps(problem(
            401, "API_KEY_INVALID",
            "API 密钥无效、已吊销或已过期 / API key invalid, revoked or expired"))}
    with psycopg.connect(env["url"]) as conn:
        row = conn.execute("SELECT key_hash, fields::text FROM auth.api_key WHERE key_id = %s",
                           (key.key_id,)).fetchone()
    secret = token.split("_", 2)[2]
    assert len(bytes(row[0])) == 32 and secret.encode() not in bytes(row[0])


def test_api_key_grants_are_checked_against_the_policy(env: dict) -> None:
    from cadastre.errors import InvalidInput

    for fields, code in ((["party.address"], "API_KEY_FIELD"),    # policy hides it
                         (["unit.nonsense"], "API_KEY_FIELD"),
                         (["nothing.here"], "API_KEY_FIELD"),
                         ([], "API_KEY_FIELD")):
        with pytest.raises(InvalidInput) as exc:
            _key(env, f"bad-{uuid.uuid4().hex[:6]}", fields)
        assert exc.value.code == code
    with pytest.raises(InvalidInput) as exc:
        _key(env, "bad-county", ["unit.unit_code"], counties=["33010"])
    assert exc.value.code == "API_KEY_COUNTIES"


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, timeout=180,
                          env={**os.environ, "DATABASE_URL": env["url"],
                               "CADASTRE_DATA_DIR": str(env["data_dir"]), "COLUMNS": "200"})


def test_keys_cli_add_list_revoke(env: dict) -> None:
    p = _cli(env, "keys", "add", "tax-bureau", "--counties", "330106",
             "--fields", "unit.unit_code,unit.building_area,parcel.seat", "--expires", "30")
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    assert token.startswith("cdk_") and token.count("_") >= 2
    listed = _cli(env, "keys", "list")
    assert listed.returncode == 0 and "tax-bureau" in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout + listed.stderr
    with client(env) as c:
        me = c.get("/api/v1/_whoami", headers={"X-API-Key": token, **PURPOSE}).json()
        assert me["fields"] == ["unit.unit_code", "unit.building_area", "parcel.seat"]
        assert _cli(env, "keys", "revoke", "tax-bureau").returncode == 0
        r = c.get("/api/v1/_whoami", headers={"X-API-Key": token, **PURPOSE})
        assert r.status_code == 401
    bad = _cli(env, "keys", "add", "nosy", "--counties", "330106", "--fields", "party.address")
    assert bad.returncode == 1 and "API_KEY_FIELD" in bad.stderr
    actions = [r["action"] for r in audit_rows(env["url"]) if r["actor"].startswith("cli:")]
    assert "apikey.create" in actions and "apikey.revoke" in actions


# ------------------------------------------------------------------------ purpose
def test_interested_party_must_state_purpose_and_case(env: dict) -> None:
    with client(env) as c:
        tok = login(c, "int.sec")
        r = c.get("/api/v1/_whoami", headers=tok)
        assert r.status_code == 400 and r.json()["error"]["code"] == "PURPOSE_REQUIRED"
        assert "litigation" in r.json()["error"]["message"]
        for bad in ({"X-Purpose": "curiosity", "X-Case-Ref": "ZJ-2024-0001"},
                    {"X-Purpose": "litigation"},
                    {"X-Purpose": "litigation", "X-Case-Ref": ID_NUMBER},      # PII
                    {"X-Purpose": "litigation", "X-Case-Ref": PHONE},
                    {"X-Purpose": "litigation", "X-Case-Ref": "ZHANGSAN-2024"},  # a name
                    {"X-Purpose": "litigation", "X-Case-Ref": quote("张三的房子")},
                    {"X-Purpose": "litigation", "X-Case-Ref": "A1" * 40}):
            r = c.get("/api/v1/_whoami", headers={**tok, **bad})
            assert r.status_code == 400, bad
            assert r.json()["error"]["code"] == "PURPOSE_REQUIRED"
            assert ID_NUMBER not in r.text and PHONE not in r.text
        ok = c.get("/api/v1/_whoami", headers={**tok, "X-Purpose": "inheritance",
                                                "X-Case-Ref": "HZ-GZ-2025-000017"})
        assert ok.status_code == 200
        assert ok.json()["purpose"] == "inheritance"
        assert ok.json()["case_ref"] == "HZ-GZ-2025-000017"
        # registrars need no purpose
        assert c.get("/api/v1/_whoami", headers=login(c, "reg.sec")).json()["purpose"] is None


# ------------------------------------------------------------------------ audit trail
def test_audit_verify_and_export_api(env: dict) -> None:
    url = env["url"]
    with client(env) as c:
        reg, aud = login(c, "reg.sec"), login(c, "aud.sec")
        start = head_seq(url)
        for _ in range(3):
            assert c.get("/api/v1/qa/rules", headers=reg).status_code == 200
        rows = audit_rows(url, start)
        assert [r["action"] for r in rows] == ["qa.rules"] * 3
        assert all(r["role"] == "registrar" and r["result_count"] > 0 for r in rows)
        v = c.get("/api/v1/audit/verify", headers=aud)
        assert v.status_code == 200, v.text
        body = v.json()
        assert body["ok"] is True and body["first_bad_seq"] is None and body["reason"] is None
        assert body["rows"] == body["head_seq"] == start + 3 and len(body["head_hash"]) == 64
        assert c.get("/api/v1/audit/verify", headers=reg).json()["ok"] is True
        # who may not: the public, interested parties
        assert c.get("/api/v1/audit/verify").status_code == 401
        r = c.get("/api/v1/audit/verify", headers={**login(c, "int.sec"), **PURPOSE})
        assert r.status_code == 403
        assert c.get("/api/v1/audit/log", headers=reg).status_code == 403
        # CSV export: every row up to now, then the export itself is audited
        n_before = head_seq(url)
        r = c.get("/api/v1/audit/log?format=csv", headers=aud)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
        assert [int(t["seq"]) for t in table] == list(range(1, n_before + 1))
        assert set(table[0]) == {"seq", "at", "actor", "role", "action", "target", "purpose",
                                 "case_ref", "result_count", "outcome", "client", "prev_hash",
                                 "row_hash"}
        assert table[1]["prev_hash"] == table[0]["row_hash"]
        last = audit_rows(url, n_before)
        assert last[0]["action"] == "audit.export" and last[0]["result_count"] == n_before
        assert last[0]["target"] == "csv:.."
        # JSON lines and JSON, and the time filter
        lines = c.get("/api/v1/audit/log?format=jsonl", headers=aud).text.splitlines()
        assert len(lines) == n_before + 1 and json.loads(lines[-1])["action"] == "audit.export"
        assert c.get("/api/v1/audit/log?until=2000-01-01", headers=aud).json() == []
        since = c.get("/api/v1/audit/log?since=2000-01-01T00:00:00%2B08:00&format=json",
                      headers=aud).json()
        assert len(since) == n_before + 3
        bad = c.get("/api/v1/audit/log?since=yesterday", headers=aud)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_TIME"


def test_audit_verify_api_names_a_row_altered_by_sql(env: dict) -> None:
    """(The CLI's verify and export: tests/test_audit_cli.py.)"""
    url = env["url"]
    with client(env) as c:
        reg, aud = login(c, "reg.sec"), login(c, "aud.sec")
        for _ in range(4):
            c.get("/api/v1/qa/rules", headers=reg)
        target = head_seq(url) - 2
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE audit.log SET result_count = result_count + 1 WHERE seq = %s",
                         (target,))
        try:
            v = c.get("/api/v1/audit/verify", headers=aud).json()
            assert v["ok"] is False and v["first_bad_seq"] == target
            assert v["reason"] == "row content altered" and v["rows"] == target - 1
            # the failed verification is itself on record, with its outcome
            assert audit_rows(url, head_seq(url) - 1)[0]["outcome"] == "tampered"
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("UPDATE audit.log SET result_count = result_count - 1 "
                             "WHERE seq = %s", (target,))
        assert c.get("/api/v1/audit/verify", headers=aud).json()["ok"] is True


def test_registrar_and_surveyor_reads_and_changes_are_audited(env: dict, tmp_path: Path
                                                              ) -> None:
    url = env["url"]
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, "sur.sec", "surveyor password", Role.SURVEYOR)
        code, geo = conn.execute(
            "SELECT parcel_code, ST_AsGeoJSON(ST_GeometryN(geom, 1), 3) FROM cad.parcel "
            "WHERE valid_to IS NULL AND ST_NPoints(geom) = 5 ORDER BY parcel_code LIMIT 1"
        ).fetchone()
    PASSWORDS["sur.sec"] = "surveyor password"
    ring = json.loads(geo)["coordinates"][0]
    ring[1] = [ring[1][0] + 0.2, ring[1][1]]     # a small boundary correction
    survey = tmp_path / "fix.geojson"
    survey.write_text(json.dumps({
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4528"}},
        "features": [{"type": "Feature", "properties": {"kind": "parcel", "ZDDM": code},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    with client(env) as c:
        reg, sur = login(c, "reg.sec"), login(c, "sur.sec")
        start = head_seq(url)
        with survey.open("rb") as fh:
            r = c.post("/api/v1/surveys", headers=sur, files={"file": ("fix.geojson", fh)})
        assert r.status_code == 202, r.text
        sid = r.json()["submission_id"]
        deadline = time.monotonic() + 90
        while c.get(f"/api/v1/surveys/{sid}", headers=sur).json()["status"] in (
                "received", "validating"):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert c.get(f"/api/v1/surveys/{sid}/report", headers=reg).status_code == 200
        assert c.get(f"/api/v1/surveys/{sid}/diff", headers=reg).status_code == 200
        r = c.post(f"/api/v1/surveys/{sid}/reject", headers=reg, json={"reason": "复测 / resurvey"})
        assert r.status_code == 200, r.text
        r = c.post(f"/api/v1/surveys/{sid}/accept", headers=reg)   # already rejected
        assert r.status_code >= 400
        run = c.post("/api/v1/qa/runs", headers=reg, json={"parcels": [code]})
        assert run.status_code == 202
        job = run.json()["job_id"]
        deadline = time.monotonic() + 90
        while (st := c.get(f"/api/v1/qa/jobs/{job}", headers=reg).json())["status"] not in (
                "done", "failed"):
            assert time.monotonic() < deadline, st
            time.sleep(0.3)
        assert st["status"] == "done" and st["run_id"], st
        findings = c.get(f"/api/v1/qa/runs/{st['run_id']}/findings", headers=reg)
        assert findings.status_code == 200
        c.get(f"/api/v1/qa/runs/{st['run_id']}/findings.csv", headers=reg)
    rows = audit_rows(url, start)
    actions = [r["action"] for r in rows]
    for expected in ("survey.submit", "survey.status", "survey.report", "survey.diff",
                     "survey.reject", "qa.run", "qa.job", "qa.findings", "qa.findings.csv"):
        assert expected in actions, (expected, actions)
    by = {r["action"]: r for r in rows}
    assert by["survey.submit"]["role"] == "surveyor" and by["survey.submit"]["target"] == sid
    assert by["survey.reject"]["role"] == "registrar" and by["survey.reject"]["outcome"] == "ok"
    failed = [r for r in rows if r["action"] == "survey.accept"]
    assert len(failed) == 1 and failed[0]["outcome"] != "ok" and failed[0]["result_count"] == 0
    with psycopg.connect(url) as conn:
        status = conn.execute("SELECT status FROM cad.survey_submission WHERE submission_id = %s",
                              (sid,)).fetchone()[0]
    assert status == "rejected"
    assert _cli(env, "audit", "verify").returncode == 0


# ------------------------------------------------------------------------ logs and errors
def test_log_records_are_masked(caplog: pytest.LogCaptureFixture,
                                request: pytest.FixtureRequest) -> None:
    logsafe.install()
    caplog.set_level(logging.INFO)
    # uvicorn's own logging config (applied by an earlier live-server test) stops its access
    # logger from propagating to the root logger where caplog listens: listen on it directly
    access_logger = logging.getLogger("uvicorn.access")
    if access_logger.propagate is False:
        access_logger.addHandler(caplog.handler)
        request.addfinalizer(lambda: access_logger.removeHandler(caplog.handler))
    access_logger.setLevel(logging.INFO)
    access_logger.disabled = False
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET",
                                             f"/api/v1/search?q={ID_NUMBER}&p={PHONE}", "1.1",
                                             200)
    logging.getLogger("api").warning(f"certificate {CERT} for {ID_NUMBER.lower()}")
    try:
        raise ValueError(f"bad phone {PHONE}")
    except ValueError:
        logging.getLogger("cadastre").exception("failed for %s", {"id": ID_NUMBER})
    text = caplog.text
    for needle in (ID_NUMBER, ID_NUMBER.lower(), PHONE, "0012345"):
        assert needle not in text
    assert "110105********002X" in text and "139****5678" in text
    assert "浙(2021)杭州市不动产权第***2345号" in text
    # the uvicorn access record keeps its structure (args tuple) for uvicorn's formatter
    access = [r for r in caplog.records if r.name == "uvicorn.access"][0]
    assert isinstance(access.args, tuple) and access.args[4] == 200
    # the filter form, for handlers configured by hand on records made elsewhere
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "id %s", (ID_NUMBER,), None)
    logsafe.RedactingFilter().filter(rec)
    assert ID_NUMBER not in rec.getMessage()


def test_uvicorn_server_logs_are_masked(env: dict) -> None:
    """A real server process: uvicorn's access log and the app's logs carry no ID or phone."""
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--no-proxy-headers",
         "--port", str(port), "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "DATABASE_URL": env["url"], "CADASTRE_DATA_DIR": str(env["data_dir"]),
             "CADASTRE_LOG_LEVEL": "INFO"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.3)
        for path in (f"/api/v1/search?q={ID_NUMBER}", f"/api/v1/nothing/{PHONE}",
                     f"/tiles/parcels/{ID_NUMBER}/1/1.mvt", f"/ogc/collections/x{PHONE}"):
            r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
            assert ID_NUMBER not in r.text and PHONE not in r.text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "GET /api/v1/search?q=110105********002X" in out, out[-2000:]
    assert ID_NUMBER not in out and PHONE not in out


def test_error_responses_do_not_echo_input(env: dict) -> None:
    with client(env) as c:
        cases = [
            c.post("/api/v1/auth/login", json={"username": ID_NUMBER * 5, "password": PHONE}),
            c.post("/api/v1/auth/login", json={"username": ID_NUMBER, "password": ""}),
            c.post("/api/v1/auth/login", content=f'{{"username": "{ID_NUMBER}", "pass',
                   headers={"content-type": "application/json"}),
            c.post("/api/v1/auth/login", json={ID_NUMBER: PHONE}),
            c.get(f"/tiles/parcels/16/1/1.mvt?floor={PHONE}"),
            c.get(f"/tiles/parcels/{ID_NUMBER}/1/1.mvt"),
            c.get(f"/api/v1/nothing/{ID_NUMBER}"),
            c.get(f"/ogc/collections/{PHONE}/items"),
            c.get(f"/ogc/collections/parcels/items?limit={PHONE}"),
            c.get(f"/ogc/collections/parcels/items/{ID_NUMBER}"),
            c.get(f"/api/v1/surveys/{ID_NUMBER}"),
            c.get("/api/v1/audit/log", headers={"Authorization": f"Bearer {ID_NUMBER}"}),
            c.get("/api/v1/_whoami", headers={"X-API-Key": CERT.encode().hex()}),
        ]
        for r in cases:
            assert r.status_code >= 400, r.request.url
            for needle in (ID_NUMBER, PHONE, CERT, CERT.encode().hex()):
                assert needle not in r.text, (r.request.url, r.text)
        assert cases[0].status_code == 422
        assert cases[0].json()["error"]["code"] == "INVALID_REQUEST"


def test_purpose_codes_are_listed(demo_client) -> None:
    """Clients of interested parties and departments can discover the X-Purpose codes."""
    from cadastre.access.purposes import PURPOSES

    r = demo_client.get("/api/v1/auth/purposes")
    assert r.status_code == 200
    items = r.json()["items"]
    assert {i["code"] for i in items} == set(PURPOSES)
    assert all(i["zh"] and i["en"] for i in items)
