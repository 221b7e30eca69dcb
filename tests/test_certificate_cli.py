"""`cadastre certificates issue|show|verify|revoke` as an operator runs them (a subprocess,
DATABASE_URL set): a batch issued by worker processes with a progress bar, a record shown and
its PDF written, the file verified (valid; tampered → invalid; revoked → revoked), exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from cadastre.access.pii import load_cipher
from cadastre.demo.load import load_demo
from cadastre.settings import Settings


@pytest.fixture(scope="module")
def env(make_db, test_settings: Settings, tmp_path_factory) -> dict:
    url = make_db("certcli")
    with psycopg.connect(url) as conn:
        load_demo(conn, load_cipher(test_settings), parcels=30, seed=5)
    data_dir = tmp_path_factory.mktemp("certcli")
    shutil.copy(test_settings.data_dir / "secrets.json", data_dir / "secrets.json")
    return {"url": url, "data_dir": data_dir}


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "certificates", *args], capture_output=True, text=True,
        timeout=600, env={**os.environ, "DATABASE_URL": env["url"], "COLUMNS": "200",
                          "CADASTRE_DATA_DIR": str(env["data_dir"])})


def test_issue_show_verify_revoke(env: dict, tmp_path: Path) -> None:
    assert cli(env, "issue").returncode == 2
    assert cli(env, "issue", "--all", "--kind", "deed").returncode == 2
    with psycopg.connect(env["url"]) as conn:
        units = [r[0].strip() for r in conn.execute(
            "SELECT DISTINCT unit_code FROM cad.right_record WHERE kind = 'ownership' AND "
            "valid_to IS NULL ORDER BY 1 LIMIT 5")]
    args = [a for u in units for a in ("--unit", u)]
    run = cli(env, "issue", *args, "--kind", "ownership", "--kind", "mortgage", "--workers", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    with psycopg.connect(env["url"]) as conn:
        issued = conn.execute("SELECT number, kind, unit_code FROM cad.certificate "
                              "WHERE status = 'current' ORDER BY serial").fetchall()
        expected = conn.execute(
            "SELECT count(*) FROM cad.right_record WHERE valid_to IS NULL AND status = 1 AND "
            "kind IN ('ownership', 'mortgage') AND trim(unit_code) = ANY(%s)",
            (units,)).fetchone()[0]
        actions = conn.execute("SELECT DISTINCT actor, action FROM audit.log WHERE action "
                               "LIKE 'certificate.%%'").fetchall()
    assert len(issued) == expected >= 5
    assert f"{expected} issued" in run.stdout
    assert {a for _, a in actions} == {"certificate.prepare.certificate",
                                       "certificate.issue.certificate",
                                       "certificate.prepare.proof", "certificate.issue.proof"}
    assert all(actor.startswith("cli:") for actor, _ in actions)
    again = cli(env, "issue", *args)      # nothing left to do for those units' rights
    assert again.returncode == 0 and "nothing to issue" in again.stdout

    number = issued[0][0]
    pdf = tmp_path / "certificate.pdf"
    shown = cli(env, "show", number, "--json", "--pdf", str(pdf))
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["number"] == number and record["status"] == "current"
    assert pdf.read_bytes()[:5] == b"%PDF-"

    ok = cli(env, "verify", str(pdf), "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    result = json.loads(ok.stdout)
    assert result["status"] == "valid" and result["whole_file"] and result["trusted"]
    assert result["number"] == number

    data = pdf.read_bytes()
    middle = len(data) // 2
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(data[:middle] + bytes([data[middle] ^ 0x20]) + data[middle + 1:])
    bad = cli(env, "verify", str(tampered), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["status"] == "invalid"

    revoked = cli(env, "revoke", number, "--reason", "测试作废")
    assert revoked.returncode == 0, revoked.stderr
    after = cli(env, "verify", str(pdf), "--json")
    assert after.returncode == 1 and json.loads(after.stdout)["status"] == "revoked"
    missing = cli(env, "show", "浙(1999)杭州市不动产权第9999999号")
    assert missing.returncode == 1 and "CERTIFICATE_NOT_FOUND" in missing.stderr
