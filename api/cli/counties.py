"""``cadastre db county add|detach|list``: counties as partitions of the register (0024)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from api.cli import _settings, console, db_app
from cadastre.access.pii import audit_key
from cadastre.store import counties
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect

county_app = typer.Typer(help="区县分区 / counties as partitions of the register",
                         no_args_is_help=True)
db_app.add_typer(county_app, name="county")


@county_app.command("add")
def add(code: str = typer.Argument(..., help="6-digit county code (行政区划代码)")) -> None:
    """Create the county's partitions; its rows waiting in the default partitions move in."""
    s = _settings()
    with connect(ensure_database(s).url) as conn:
        moved = counties.add(conn, code, audit_key(s))
    console.print(f"county {code}: partitions ready, {moved} rows moved from the default "
                  "partitions", markup=False)


@county_app.command("detach")
def detach(code: str = typer.Argument(..., help="6-digit county code")) -> None:
    """Take the county out of the live register: its partitions become plain tables
    cad.<table>_<code> for archive (pg_dump them, then drop them)."""
    s = _settings()
    with connect(ensure_database(s).url) as conn:
        n = counties.detach(conn, code, audit_key(s))
    console.print(f"county {code}: {n} partitions detached (tables cad.*_{code} kept for "
                  "archive)", markup=False)


@county_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Counties with partitions (and the default partitions), attached or not, and rows."""
    with connect(ensure_database(_settings()).url) as conn:
        found = counties.counties(conn)
    if as_json:
        console.print_json(json.dumps([c.__dict__ for c in found]))
        return
    table = Table("county", "attached", *counties.ROW_TABLES)
    for c in found:
        table.add_row(c.code, str(c.attached), *(str(c.rows[t]) for t in counties.ROW_TABLES))
    console.print(table)
