"""The `cadastre` command line: settings, db status, error exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120)


def test_settings_masks_secrets_and_accepts_database_url(tmp_path) -> None:
    url = "postgresql://user:s3cret@db.example:5432/cad"
    p = _run("settings", env={"DATABASE_URL": url, "CADASTRE_DATA_DIR": str(tmp_path),
                              "CADASTRE_PORT": "8123", "CADASTRE_TYPO_SETTING": "1"})
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["database"]["url"] == "********"
    assert "s3cret" not in p.stdout
    assert out["api"]["port"] == 8123
    assert out["storage"]["data_dir"] == str(tmp_path)
    assert "CADASTRE_TYPO_SETTING" in p.stderr  # unknown keys are reported, not silently ignored


def test_db_status_json_against_database_url(demo_url: str, tmp_path) -> None:
    p = _run("db", "status", "--json", env={"DATABASE_URL": demo_url,
                                            "CADASTRE_DATA_DIR": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["postgis"].startswith("3.")
    assert out["pending_migrations"] == []
    assert out["counts"]["units"] >= 20000


def test_unreachable_database_is_a_clear_error(tmp_path) -> None:
    p = _run("db", "migrate", env={"DATABASE_URL": "postgresql://x:y@127.0.0.1:1/none",
                                   "CADASTRE_DATA_DIR": str(tmp_path)})
    assert p.returncode != 0
    assert "Traceback" not in p.stderr


def test_embedded_commands_refuse_when_database_url_set(tmp_path) -> None:
    p = _run("db", "start", env={"DATABASE_URL": "postgresql://x@127.0.0.1/none",
                                 "CADASTRE_DATA_DIR": str(tmp_path)})
    assert p.returncode == 2
    assert "DATABASE_URL" in p.stderr


def test_tiles_seed_and_export(demo_url: str, tmp_path) -> None:
    env = {"DATABASE_URL": demo_url, "CADASTRE_DATA_DIR": str(tmp_path)}
    p = _run("tiles", "seed", "--zooms", "13-14", "--layers", "parcels", env=env)
    assert p.returncode == 0, p.stderr
    assert "rendered" in p.stdout
    cached = list((tmp_path / "cache" / "tiles" / "public" / "parcels").rglob("*.mvt.gz"))
    assert len(cached) >= 2
    out = tmp_path / "out.pmtiles"
    p = _run("tiles", "export", str(out), "--zooms", "13", "--layers", "parcels", env=env)
    assert p.returncode == 0, p.stderr
    assert out.stat().st_size > 1000
    p = _run("tiles", "seed", "--bbox", "200,1,2,3", env=env)
    assert p.returncode == 1 and "BBOX_INVALID" in p.stderr


def test_users_add_and_login_flow(demo_url: str, tmp_path) -> None:
    import uuid

    name = f"cli.{uuid.uuid4().hex[:6]}"
    env = {"DATABASE_URL": demo_url, "CADASTRE_DATA_DIR": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "api.cli", "users", "add", name, "--role",
                        "surveyor", "--password-stdin"], input="a long enough secret\n",
                       capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert p.returncode == 0, p.stderr
    p = _run("users", "list", env=env)
    assert name in p.stdout and "surveyor" in p.stdout
    again = subprocess.run([sys.executable, "-m", "api.cli", "users", "add", name, "--role",
                            "surveyor", "--password-stdin"], input="a long enough secret\n",
                           capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert again.returncode == 1 and "ACCOUNT_EXISTS" in again.stderr


def test_reading_cases_does_not_create_the_office_signer(demo_url: str, tmp_path) -> None:
    """Only the moves that make certificates (缮证/发证) need the office's signing key; listing
    cases or the catalogue leaves the data dir without a local CA."""
    env = {"DATABASE_URL": demo_url, "CADASTRE_DATA_DIR": str(tmp_path)}
    for args in (("cases", "list", "--format", "json"), ("cases", "catalogue")):
        p = _run(*args, env=env)
        assert p.returncode == 0, p.stderr
    assert not (tmp_path / "signing").exists()
