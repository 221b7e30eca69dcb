"""``cadastre db replica add|list|remove|start``: streaming replicas of the embedded cluster."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from api.cli import _require_embedded, _settings, console, db_app
from cadastre.store import replicas
from cadastre.store.db import embedded_cluster

replica_app = typer.Typer(help="只读副本 / read replicas of the embedded cluster",
                          no_args_is_help=True)
db_app.add_typer(replica_app, name="replica")


def _primary():  # type: ignore[no-untyped-def]
    s = _settings()
    _require_embedded(s)
    return embedded_cluster(s)


@replica_app.command("add")
def add(name: str = typer.Argument(..., help="a name: lower-case letters, digits, _")) -> None:
    """Copy the primary (pg_basebackup) and start the copy as a streaming standby; the server
    reads public data and tiles from it at its next start."""
    with console.status(f"副本 {name}: base backup …"):
        r = replicas.add(_primary(), name)
    st = r.status()
    console.print(f"replica {name}: running on 127.0.0.1:{st.port} ({st.pgdata})", markup=False)


@replica_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Replicas with their port, state and replay lag (bytes of WAL behind the primary)."""
    infos = replicas.describe(_primary())
    if as_json:
        console.print_json(json.dumps([{k: v for k, v in i.__dict__.items() if k != "url"}
                                       for i in infos]))
        return
    table = Table("name", "port", "running", "state", "lag (bytes)")
    for i in infos:
        table.add_row(i.name, str(i.port or "—"), str(i.running), i.state or "—",
                      "—" if i.lag_bytes is None else str(i.lag_bytes))
    console.print(table)


@replica_app.command("remove")
def remove(name: str) -> None:
    """Stop and delete a replica (and its replication slot on the primary)."""
    existed = replicas.remove(_primary(), name)
    console.print(f"replica {name} removed" if existed else f"no replica {name}", markup=False)


@replica_app.command("start")
def start() -> None:
    """Start every replica that is not running (``cadastre serve`` does this too)."""
    for r in replicas.start_all(_primary()):
        console.print(f"replica {r.name}: 127.0.0.1:{r.status().port}", markup=False)
