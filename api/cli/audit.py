"""`cadastre audit …`: verify the hash-chained audit trail, export it for auditors.

``verify`` exits 0 when every row's seal, link and sequence number check out, 1 when the chain
is broken (it prints the first bad row's seq and why), so it can run from cron or CI.
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any, cast

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cadastre import audit
from cadastre.access.pii import audit_key
from cadastre.audit import serialize as audit_export
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect

audit_app = typer.Typer(help="审计日志 / the tamper-evident audit trail", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


class _Counting:
    """Wraps the connection ``audit.verify`` reads through, to drive a progress bar from the
    batches it fetches (the verification itself is ``cadastre.audit.verify``, unchanged)."""

    def __init__(self, conn: Any, on_rows: Any) -> None:
        self._conn, self._on_rows = conn, on_rows

    @property
    def autocommit(self) -> bool:
        return self._conn.autocommit

    def execute(self, *args: Any, **kwargs: Any) -> Any:    # the archive records' read
        return self._conn.execute(*args, **kwargs)

    def cursor(self, *args: Any, **kwargs: Any) -> _CountingCursor:
        return _CountingCursor(self._conn.cursor(*args, **kwargs), self._on_rows)


class _CountingCursor:
    def __init__(self, cur: Any, on_rows: Any) -> None:
        self._cur, self._on_rows = cur, on_rows

    def __enter__(self) -> _CountingCursor:
        self._cur.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cur.__exit__(*exc)

    def execute(self, *args: Any, **kwargs: Any) -> _CountingCursor:
        self._cur.execute(*args, **kwargs)
        return self

    def fetchmany(self, size: int) -> list[Any]:
        rows = self._cur.fetchmany(size)
        self._on_rows(len(rows))
        return rows


def record_cli(conn: Any, action: str, target: str | None, result_count: int,
               outcome: str = "ok") -> None:
    """Append what an operator did from the command line to the trail (actor = OS user)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    audit.append(conn, audit_key(get_settings()), audit.Entry(
        actor=f"cli:{user}", role="operator", action=action, target=target,
        result_count=result_count, outcome=outcome))


@audit_app.command("verify")
def verify(as_json: bool = typer.Option(False, "--json", help="machine-readable result"),
           batch: int = typer.Option(5000, min=1, help="rows per fetch")) -> None:
    """Recompute the HMAC chain; exit 1 and name the first tampered row if it is broken."""
    s = get_settings()
    url = ensure_database(s).url
    key = audit_key(s)
    with connect(url) as conn:
        total = audit_export.count(conn)
        with Progress(TextColumn("[bold]审计链 audit chain[/]"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                      disable=as_json or total < 10 * batch) as bar:
            task = bar.add_task("verify", total=total)
            counting = cast(psycopg.Connection, _Counting(conn, lambda n: bar.advance(task, n)))
            result = audit.verify(counting, key, batch=batch)
        conn.rollback()
    out = {"ok": result.ok, "rows": result.rows, "head_seq": result.head_seq,
           "head_hash": result.head_hash, "first_bad_seq": result.first_bad_seq,
           "reason": result.reason, "archived_rows": result.archived_rows,
           "archived_months": list(result.archived_months)}
    if as_json:
        console.print_json(json.dumps(out))
    elif result.ok:
        console.print(f"[green]审计链完整 / audit chain OK[/]: {result.rows} rows, head seq "
                      f"{result.head_seq}, head hash {result.head_hash}")
        if result.archived_months:
            console.print(f"  已归档 / archived: {result.archived_rows} rows in "
                          f"{len(result.archived_months)} months ({result.archived_months[0]}"
                          f"..{result.archived_months[-1]}), sealed records checked")
    else:
        console.print(f"[red]审计链被篡改 / audit chain TAMPERED[/] at seq "
                      f"{result.first_bad_seq}: {result.reason} ({result.rows} rows verified "
                      "before it)")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def export(
    fmt: str = typer.Option("csv", "--format", help="csv | jsonl"),
    since: str = typer.Option(None, help="ISO date/time, inclusive"),
    until: str = typer.Option(None, help="ISO date/time, exclusive"),
    output: Path = typer.Option(None, "-o", "--output", help="file (default: standard output)"),
) -> None:
    """Write the audit log (all columns, hashes in hex) as CSV or JSON lines."""
    if fmt not in ("csv", "jsonl"):
        err.print("--format must be csv or jsonl")
        raise typer.Exit(2)
    start = audit_export.parse_time(since, "since")
    end = audit_export.parse_time(until, "until")
    url = ensure_database(get_settings()).url
    n = 0
    fh = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        with connect(url) as conn:
            total = audit_export.count(conn, start, end)
            if fmt == "csv":
                fh.write(("\ufeff" if output else "") + audit_export.csv_header())
            with Progress(TextColumn("[bold]导出 export[/]"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err,
                          disable=output is None or total < 20_000) as bar:
                task = bar.add_task("export", total=total)
                for row in audit_export.rows(conn, start, end):
                    fh.write(audit_export.csv_line(row) if fmt == "csv"
                             else audit_export.json_line(row))
                    n += 1
                    if n % 1000 == 0:
                        bar.update(task, completed=n)
            conn.rollback()
            record_cli(conn, "audit.export", f"{fmt}:{since or ''}..{until or ''}", n)
            conn.commit()
    finally:
        if output:
            fh.close()
    if output:
        err.print(f"{n} rows → {output}")


@audit_app.command("archive")
def archive(
    before: str = typer.Option(..., "--before", help="YYYY-MM: archive every month before it"),
    out: Path = typer.Option(None, "--out", help="folder for audit-YYYY-MM.jsonl.gz (the "
                             "months' partitions are then dropped); without it they are kept "
                             "as tables audit.archived_YYYYMM for pg_dump"),
) -> None:
    """Take old months out of the live audit log, each verified and sealed as an archive
    record, so `cadastre audit verify` still checks the whole chain."""
    from cadastre.audit.archive import archive_before
    from cadastre.errors import CadastreError

    s = get_settings()
    url = ensure_database(s).url
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    with connect(url) as conn, Progress(TextColumn("[bold]归档 archive[/] {task.description}"),
                                        TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task("", total=None)
        try:
            months = archive_before(conn, audit_key(s), before, f"cli:{user}", out,
                                    progress=lambda m, n: bar.update(task,
                                                                     description=f"{m}: {n}"))
        except CadastreError as exc:
            err.print(f"[red]{exc.code}[/]: {exc.message}")
            raise typer.Exit(1) from None
    for m in months:
        where = m.file or m.table or "（空月 / empty month, dropped）"
        console.print(f"{m.month}: {m.rows} rows"
                      + (f", seq {m.first_seq}..{m.last_seq}" if m.rows else "") + f" → {where}")


@audit_app.command("verify-archive")
def verify_archive(file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                               help="audit-YYYY-MM.jsonl.gz")) -> None:
    """Check an archived month's file against its sealed record (exit 1 if it differs)."""
    from cadastre.audit.archive import verify_file
    from cadastre.errors import CadastreError

    s = get_settings()
    url = ensure_database(s).url
    with connect(url) as conn:
        try:
            result = verify_file(conn, audit_key(s), file)
        except CadastreError as exc:
            err.print(f"[red]{exc.code}[/]: {exc.message}")
            raise typer.Exit(1) from None
    if result.ok:
        console.print(f"[green]归档完整 / archive OK[/]: {result.rows} rows, last seq "
                      f"{result.head_seq}, last hash {result.head_hash}")
    else:
        console.print(f"[red]归档与记录不符 / archive does NOT match its record[/] at seq "
                      f"{result.first_bad_seq}: {result.reason}")
        raise typer.Exit(1)
