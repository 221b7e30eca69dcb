"""`cadastre audit verify|export` as an operator runs them (a subprocess, DATABASE_URL set): the
chain verifies, then fails naming the row after `UPDATE`/`DELETE` by SQL, and exports re-verify
offline with the key."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from cadastre import audit
from cadastre.access.pii import audit_key
from cadastre.settings import Settings
from tests.conftest import app_data_dir
from tests.support import seal_audit_rows

ROWS = 300


@pytest.fixture()
def chain(make_db, test_settings: Settings, tmp_path: Path) -> dict:
    url = make_db("auditcli")
    data_dir = app_data_dir(test_settings, tmp_path / "data")
    key = audit_key(Settings(storage={"data_dir": data_dir}))
    seal_audit_rows(url, key, ROWS)
    return {"url": url, "data_dir": data_dir, "key": key}


def cli(chain: dict, *args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "audit", *args], capture_output=True, text=True,
        timeout=180, env={**os.environ, "DATABASE_URL": chain["url"], "COLUMNS": "200",
                          "CADASTRE_DATA_DIR": str(data_dir or chain["data_dir"])})


def test_verify_passes_then_names_the_altered_row(chain: dict) -> None:
    ok = cli(chain, "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "audit chain OK" in ok.stdout and f"{ROWS} rows, head seq {ROWS}" in ok.stdout
    js = json.loads(cli(chain, "verify", "--json", "--batch", "7").stdout)
    with psycopg.connect(chain["url"]) as conn:
        head = bytes(conn.execute("SELECT row_hash FROM audit.log WHERE seq = %s",
                                  (ROWS,)).fetchone()[0]).hex()
        conn.execute("UPDATE audit.log SET target = '330106001001GB99999F00010001' "
                     "WHERE seq = 137")
        conn.commit()
    assert js == {"ok": True, "rows": ROWS, "head_seq": ROWS, "head_hash": head,
                  "first_bad_seq": None, "reason": None, "archived_rows": 0,
                  "archived_months": []}
    bad = cli(chain, "verify")
    assert bad.returncode == 1
    assert "TAMPERED" in bad.stdout and "at seq 137: row content altered" in bad.stdout
    js = json.loads(cli(chain, "verify", "--json", "--batch", "50").stdout)
    assert js["ok"] is False and js["first_bad_seq"] == 137 and js["rows"] == 136


def test_verify_reports_a_deleted_row_and_a_wrong_key(chain: dict, tmp_path: Path) -> None:
    with psycopg.connect(chain["url"]) as conn:
        conn.execute("DELETE FROM audit.log WHERE seq = 42")
        conn.commit()
    bad = cli(chain, "verify", "--json")
    assert bad.returncode == 1
    js = json.loads(bad.stdout)
    assert js["first_bad_seq"] == 42 and js["reason"] == "missing row(s) 42..42"
    other = tmp_path / "other"
    other.mkdir()   # a data dir with freshly generated keys: nothing verifies
    wrong = cli(chain, "verify", "--json", data_dir=other)
    assert wrong.returncode == 1 and json.loads(wrong.stdout)["first_bad_seq"] == 1


def test_export_csv_reverifies_offline_and_is_audited(chain: dict, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    p = cli(chain, "export", "--format", "csv", "-o", str(out))
    assert p.returncode == 0, p.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")   # Excel opens UTF-8 CSV with a BOM correctly
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == ROWS and rows[0]["case_ref"] == "(2024)浙0106民初1234号"
    # whoever holds the audit key re-checks the exported chain without the database
    prev = audit.GENESIS
    for r in rows:
        entry = audit.Entry(**{f: (r[f] or None) for f in audit.FIELDS if f != "result_count"},
                            result_count=int(r["result_count"]))
        seal = audit.seal(chain["key"], prev, int(r["seq"]), datetime.fromisoformat(r["at"]),
                          entry)
        assert seal.hex() == r["row_hash"] and prev.hex() == r["prev_hash"]
        prev = seal
    # the export itself is a new row of the chain, by the operator, and the chain still holds
    with psycopg.connect(chain["url"]) as conn:
        last = conn.execute("SELECT actor, role, action, target, result_count FROM audit.log "
                            "ORDER BY seq DESC LIMIT 1").fetchone()
    assert last[0].startswith("cli:") and last[1:] == ("operator", "audit.export", "csv:..",
                                                       ROWS)
    assert cli(chain, "verify").returncode == 0


def test_export_jsonl_time_window_and_stdout(chain: dict) -> None:
    with psycopg.connect(chain["url"]) as conn:
        conn.execute("UPDATE audit.log SET at = at - interval '10 days' WHERE seq <= 100")
        ats = [r[0] for r in conn.execute("SELECT at FROM audit.log ORDER BY seq")]
        conn.commit()
    # (moving rows in time breaks their seals: export does not verify, verify does)
    cut = (ats[99] + timedelta(days=5)).isoformat()
    recent = cli(chain, "export", "--format", "jsonl", "--since", cut)
    assert recent.returncode == 0, recent.stderr
    lines = [json.loads(line) for line in recent.stdout.splitlines()]
    assert [r["seq"] for r in lines] == list(range(101, ROWS + 1))
    old = cli(chain, "export", "--format", "jsonl", "--until", cut)
    assert [json.loads(x)["seq"] for x in old.stdout.splitlines()] == list(range(1, 101))
    bad = cli(chain, "export", "--since", "last tuesday")
    assert bad.returncode == 1 and "INVALID_TIME" in bad.stderr
    assert cli(chain, "export", "--format", "xml").returncode == 2
