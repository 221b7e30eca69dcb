"""`cadastre survey …`: submit a survey file, follow its validation, decide on it."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cadastre.jobs import create_job, get_job, set_payload
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect
from cadastre.survey import apply as decision
from cadastre.survey.diff import compute_diff
from cadastre.survey.submission import (
    create_submission,
    get_submission,
    store_upload,
    validate_submission,
)

survey_app = typer.Typer(help="测绘成果提交 / survey submissions", no_args_is_help=True)
console = Console()


@survey_app.command("submit")
def submit(path: Path = typer.Argument(..., exists=True, dir_okay=False),
           srid: int | None = typer.Option(None, help="EPSG code if the file carries none"),
           actor: str = typer.Option("cli:surveyor", help="who submits (recorded)")) -> None:
    """Store the file immutably, validate it (progress bar) and print the report summary."""
    s = get_settings()
    url = ensure_database(s).url
    with path.open("rb") as fh:
        upload = store_upload(fh, s.data_dir / "uploads")
    with connect(url) as conn, conn.transaction():
        # validated here with a progress bar; if this process dies, a worker takes it over
        job = create_job(conn, "survey_validation", actor, run_here=f"cli:{os.getpid()}")
        sid = create_submission(conn, upload, path.name, actor, job, srid)
        set_payload(conn, job, {"submission_id": str(sid)})
    console.print(f"submission {sid} (sha256 {upload.sha256[:12]}…)")
    with Progress(TextColumn("[bold]校验 validating[/] {task.description}"), BarColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=1.0)
        report = validate_submission(url, sid, s.qa, job,
                                     progress=lambda p, what: bar.update(task, completed=p,
                                                                         description=what))
    _print_report(report)
    if report["status"] != "validated":
        raise typer.Exit(3)


def _print_report(report: dict) -> None:
    console.print(f"status: [bold]{report['status']}[/]  counts: {report.get('counts')}")
    for kind in ("errors", "warnings"):
        for item in report.get(kind, [])[:20]:
            console.print(f"  {kind[:-1]:7s} {item['code']:28s} {', '.join(item['subject'])[:60]}"
                          f"  {item['message'][:80]}")


@survey_app.command("status")
def status(submission_id: str) -> None:
    """Status, validation progress and the diff against the registry."""
    url = ensure_database(get_settings()).url
    sid = uuid.UUID(submission_id)
    with connect(url) as conn:
        sub = get_submission(conn, sid)
        job = get_job(conn, uuid.UUID(sub["job_id"])) if sub["job_id"] else None
        out = {**sub, "job": job.as_dict() if job else None}
        if sub["status"] == "validated":
            out["diff"] = compute_diff(conn, sid).summary()
    console.print_json(json.dumps(out, ensure_ascii=False, default=str))


@survey_app.command("accept")
def accept(submission_id: str, registrar: str = typer.Option(..., help="registrar's name/id"),
           note: str | None = typer.Option(None)) -> None:
    """Apply a validated submission in one transaction."""
    url = ensure_database(get_settings()).url
    with connect(url) as conn:
        result = decision.accept(conn, uuid.UUID(submission_id), f"cli:{registrar}", note)
    console.print_json(json.dumps(result, ensure_ascii=False, default=str))


@survey_app.command("reject")
def reject(submission_id: str, registrar: str = typer.Option(...),
           reason: str = typer.Option(..., help="驳回理由 / why")) -> None:
    """Reject a submission with a reason."""
    url = ensure_database(get_settings()).url
    with connect(url) as conn:
        decision.reject(conn, uuid.UUID(submission_id), f"cli:{registrar}", reason)
    console.print("rejected")
