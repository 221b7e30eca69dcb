"""`cadastre exchange …`: import exchange XML (staged, checked, decided by a registrar), export
messages and extracts."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cadastre.access.pii import audit_key, load_cipher
from cadastre.exchange import apply, queue
from cadastre.exchange.staging import DEFAULT_SRID, create_batch, get_report, validate_batch
from cadastre.exchange.writer import write_extract
from cadastre.jobs import create_job, set_payload
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect
from cadastre.store.uploads import store_upload

exchange_app = typer.Typer(help="登记数据汇交 / registry exchange (import, export)",
                           no_args_is_help=True)
console = Console()


def _bar(label: str) -> Progress:
    return Progress(TextColumn(f"[bold]{label}[/] {{task.description}}"), BarColumn(),
                    TimeElapsedColumn(), console=console)


@exchange_app.command("import")
def import_(path: Path = typer.Argument(..., exists=True, dir_okay=False),
            srid: int = typer.Option(DEFAULT_SRID, help="EPSG code of the coordinates"),
            actor: str = typer.Option("cli:registrar", help="who submits (recorded)")) -> None:
    """Store an exchange XML file (or a zip of messages), stage and check it; print the report.
    Nothing reaches the register until `cadastre exchange accept`."""
    s = get_settings()
    url = ensure_database(s).url
    with path.open("rb") as fh:
        upload = store_upload(fh, s.data_dir / "uploads", max_bytes=1 << 40)
    with connect(url) as conn, conn.transaction():
        job = create_job(conn, "exchange_import", actor, run_here=f"cli:{os.getpid()}")
        bid = create_batch(conn, upload, path.name, actor, srid, job)
        set_payload(conn, job, {"batch_id": str(bid)})
    console.print(f"import {bid} (sha256 {upload.sha256[:12]}…)")
    with _bar("校验 validating") as bar:
        task = bar.add_task("", total=1.0)
        report = validate_batch(url, bid, load_cipher(s), job, progress=lambda p, what:
                                bar.update(task, completed=p, description=what))
    _print(report)
    if report["status"] != "validated":
        raise typer.Exit(3)


def _print(report: dict) -> None:
    table = Table("entity", "rows", "new", "existing")
    for entity, c in sorted(report.get("counts", {}).items()):
        table.add_row(entity, str(c.get("rows", "")), str(c.get("new", "")),
                      str(c.get("existing", "")))
    console.print(table)
    for label, counts in (("errors", report["error_counts"]),
                          ("warnings", report["warning_counts"])):
        for code, n in sorted(counts.items()):
            console.print(f"{label}: {code} × {n}")
    console.print(f"status: [bold]{report['status']}[/]")


@exchange_app.command("report")
def report(batch_id: str) -> None:
    s = get_settings()
    with connect(ensure_database(s).url) as conn:
        found = get_report(conn, uuid.UUID(batch_id))
    if found:
        _print(found)


@exchange_app.command("accept")
def accept(batch_id: str, registrar: str = typer.Option(..., help="registrar's name/id"),
           note: str | None = typer.Option(None)) -> None:
    """Write a validated import into the register (one transaction)."""
    s = get_settings()
    with connect(ensure_database(s).url) as conn:
        out = apply.accept(conn, uuid.UUID(batch_id), f"cli:{registrar}", audit_key(s), note)
    console.print(out)


@exchange_app.command("reject")
def reject(batch_id: str, registrar: str = typer.Option(...),
           reason: str = typer.Option(...)) -> None:
    s = get_settings()
    with connect(ensure_database(s).url) as conn:
        apply.reject(conn, uuid.UUID(batch_id), f"cli:{registrar}", reason, audit_key(s))
    console.print("rejected")


@exchange_app.command("extract")
def extract(target: Path = typer.Argument(..., dir_okay=False),
            role: str = typer.Option("public", help="the role whose fields the file carries"),
            parquet: bool = typer.Option(False, "--parquet",
                                         help="GeoParquet (a zip of <layer>/part-N.parquet)")
            ) -> None:
    """The spatial layers (parcel, building, floor, unit) as a GeoPackage or GeoParquet, with
    the fields the role may see (the privacy policy)."""
    from cadastre.access.privacy import Role
    from cadastre.exchange.extract import write_gpkg, write_parquet

    s = get_settings()
    write = write_parquet if parquet else write_gpkg
    with connect(ensure_database(s).url) as conn:
        counts = write(conn, target, Role(role),
                            progress=lambda layer, n: console.print(f"{layer}: {n}", end="\r"))
    console.print(counts)


@exchange_app.command("export")
def export(target: Path = typer.Argument(..., dir_okay=False)) -> None:
    """The current register as a zip of exchange messages (one per parcel), with parties'
    identities: the file is for the registry's own systems only."""
    s = get_settings()
    with connect(ensure_database(s).url) as conn, _bar("导出 exporting") as bar:
        task = bar.add_task("", total=1.0)
        n = write_extract(conn, load_cipher(s), target, progress=lambda p, what:
                          bar.update(task, completed=p, description=what))
    console.print(f"{n} messages → {target}")


def _sender(directory: Path | None, url: str | None) -> queue.Sender:
    if url:
        return queue.HttpSender(url)
    return queue.DirectorySender(directory or get_settings().data_dir / "exchange")


@exchange_app.command("send")
def send(directory: Path | None = typer.Option(None, "--dir", help="drop root (/Biz/<county>/"
                                               "BizMsg under it); default <data_dir>/exchange"),
         url: str | None = typer.Option(None, help="HTTP endpoint instead of a directory"),
         limit: int = typer.Option(500)) -> None:
    """Deliver pending 上报 messages."""
    s = get_settings()
    with connect(ensure_database(s).url) as conn:
        console.print(queue.send_pending(conn, load_cipher(s), _sender(directory, url), limit))


@exchange_app.command("responses")
def responses(directory: Path | None = typer.Option(None, "--dir")) -> None:
    """Read the platform's Rep messages from <dir>/RepMsg (acknowledged / rejected)."""
    s = get_settings()
    sender = queue.DirectorySender(directory or s.data_dir / "exchange")
    with connect(ensure_database(s).url) as conn:
        console.print(queue.read_responses(conn, sender))


@exchange_app.command("queue")
def queue_states(overdue_hours: float = typer.Option(24.0, help="unanswered after this long")
                 ) -> None:
    """Messages per state, and those unanswered for longer than the limit."""
    s = get_settings()
    with connect(ensure_database(s).url) as conn:
        console.print(queue.states(conn))
        late = queue.overdue(conn, timedelta(hours=overdue_hours))
    console.print(f"overdue: {len(late)}")
