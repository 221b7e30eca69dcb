"""Property-based fuzzing of the whole OpenAPI spec (schemathesis 4): no operation answers 5xx.

A real server (uvicorn, as deployed) runs on a free port against a small district of its own —
the fuzzer may change it: registrar calls accept/reject surveys, start QA runs, mark findings.
Every operation of ``/openapi.json`` is exercised twice, anonymously and as a registrar, with a
bounded number of generated cases each (valid and invalid input, ``CADASTRE_FUZZ_EXAMPLES``,
default 20), and the check is ``not_a_server_error``: bad input must be a 4xx, never a crash.
Rate limits are off on this server (they would turn the fuzzing into 429s; they have their own
tests); owner-verification lockout stays on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from cadastre.access.accounts import create_account
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import Role
from cadastre.settings import Settings
from tests.conftest import app_data_dir
from tests.support import free_port

EXAMPLES = int(os.environ.get("CADASTRE_FUZZ_EXAMPLES", "20"))
PASSWORD = "fuzz registrar password"


@pytest.fixture(scope="module")
def live_server(make_db, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    from cadastre.demo.load import load_demo

    url = make_db("fuzz")
    with psycopg.connect(url) as conn:
        load_demo(conn, load_cipher(test_settings), parcels=40, seed=5)
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, "fuzz.reg", PASSWORD, Role.REGISTRAR)
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("fuzz_app"))
    port = free_port()
    log = (data_dir / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "DATABASE_URL": url, "CADASTRE_DATA_DIR": str(data_dir),
             "CADASTRE_RATE_LIMIT_ENABLED": "false", "CADASTRE_LOG_LEVEL": "WARNING"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.3)
    token = httpx.post(base + "/api/v1/auth/login",
                       json={"username": "fuzz.reg", "password": PASSWORD}).json()["access_token"]
    yield {"base": base, "token": token, "log": data_dir / "server.log"}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def api_schema(live_server: dict):
    return schemathesis.openapi.from_url(live_server["base"] + "/openapi.json")


def fuzz(schema, base: str, headers: dict[str, str]) -> dict:  # type: ignore[no-untyped-def]
    """Every operation, valid and invalid generated input; failures collected, not shrunk.

    (schemathesis' own pytest plugin, ``from_fixture``/``parametrize``, does not run under
    pytest 9 in 4.32 — it sets ``node._nodeid`` — so operations are driven directly.)"""
    failures: list[dict] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1
        strategies = [op.as_strategy(GenerationMode.POSITIVE)]
        try:
            strategies.append(op.as_strategy(GenerationMode.NEGATIVE))
        except Exception:  # noqa: BLE001 - an operation without a way to be invalid
            pass

        label = op.label

        @FUZZ
        @given(case=st.one_of(*strategies))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(base_url=base, headers=headers, timeout=60)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except (AssertionError, BaseExceptionGroup) as exc:
                mine = [f for f in failures if f["operation"] == label]  # noqa: B023
                if len(mine) < 3:
                    failures.append({"operation": label, "status": response.status_code,  # noqa: B023
                                     "error": str(exc)[:1500],
                                     "curl": case.as_curl_command(headers=headers)})

        run()
    return {"operations": operations, "statuses": dict(sorted(statuses.items())),
            "failures": failures}


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])


@pytest.mark.parametrize("who", ["anonymous", "registrar"])
def test_no_server_errors(api_schema, live_server: dict, who: str) -> None:
    headers = {} if who == "anonymous" else {
        "Authorization": f"Bearer {live_server['token']}"}
    out = fuzz(api_schema, live_server["base"], headers)
    print(who, json.dumps({k: out[k] for k in ("operations", "statuses")}))
    assert out["operations"] >= 50
    assert not out["failures"], json.dumps(out["failures"], ensure_ascii=False, indent=1)
