"""`cadastre db backup|restore`: the database into a backup folder and back (docs/operations.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from api.cli import _require_embedded, _settings, db_app
from cadastre.store import backup as bk
from cadastre.store import migrate as migrations
from cadastre.store.admin import ensure_database
from cadastre.store.cluster import DB_NAME
from cadastre.store.db import connect, embedded_cluster

console = Console()
err = Console(stderr=True)


@db_app.command("backup")
def db_backup(
    folder: Path = typer.Argument(..., help="new (or empty) folder for the backup"),
    with_keys: bool = typer.Option(False, "--with-keys",
                                   help="also copy secrets.json (keep such a backup as safe "
                                        "as the keys)"),
) -> None:
    """Dump the database (pg_dump) with a manifest of the register's fingerprint."""
    s = _settings()
    url = ensure_database(s, migrate=False).url
    secrets = s.data_dir / bk.SECRETS
    if with_keys and not secrets.is_file():
        err.print(f"[red]BACKUP_KEYS_MISSING[/]: {secrets} does not exist (keys given as "
                  "CADASTRE_*_KEY variables are backed up from where they are kept)")
        raise typer.Exit(1)
    manifest = bk.backup(url, folder, secrets if with_keys else None)
    console.print_json(json.dumps(bk.describe(manifest), ensure_ascii=False))
    console.print(f"backup written to {folder}"
                  + ("" if with_keys else " (without keys: back up secrets.json apart)"))


@db_app.command("restore")
def db_restore(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="a backup folder"),
    replace: bool = typer.Option(False, "--replace",
                                 help="embedded cluster only: drop the current database first"),
) -> None:
    """Restore a backup into an empty database, check its fingerprint, apply newer migrations."""
    s = _settings()
    bk.Manifest.read(folder)   # a readable backup before anything is touched
    if replace:
        _require_embedded(s)
        cluster = embedded_cluster(s)
        cluster.start()
        with connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = ensure_database(s, migrate=False).url
    if bk.restore_keys(folder, s.data_dir / bk.SECRETS):
        console.print(f"keys restored to {s.data_dir / bk.SECRETS}")
    manifest = bk.restore(folder, url)
    applied = [m.path.name for m in migrations.migrate(url)]
    console.print_json(json.dumps(bk.describe(manifest), ensure_ascii=False))
    console.print("register fingerprint matches the backup; migrations applied since: "
                  + (", ".join(applied) or "none"))
