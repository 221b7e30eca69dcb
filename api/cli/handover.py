"""`cadastre cases batch-handover PROJECT`: 交房即交证 for a project from the command line — the
batch runs here with a progress bar per building (as a durable job: should this process die, a
worker of `cadastre serve` or `cadastre worker` resumes it), then the units that were not
handed over are listed with the rule's code. Exit code 1 when some unit failed."""

from __future__ import annotations

import os
import uuid

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from api.cli.audit import record_cli
from api.cli.cases import REGISTRAR, _actor, _env, cases_app, console
from cadastre.cases import handover
from cadastre.cases.handover_report import batch_status
from cadastre.jobs import JobTracker
from cadastre.store.db import connect


@cases_app.command("batch-handover")
def batch_handover(project: str = typer.Argument(..., help="宗地代码或项目名称 / parcel code or "
                                                 "project name"),
                   registrar: str = REGISTRAR) -> None:
    """交房即交证: the developer's first registration of each building, then a transfer (and
    the buyer's mortgage) per sold unit from the filed contracts, each taken to 缮证."""
    s, url, keys = _env()
    actor = _actor(registrar)
    with connect(url, autocommit=True) as conn:
        batch_id, job_id = handover.start_batch(conn, project, actor,
                                                run_here=f"cli:{os.getpid()}")
        record_cli(conn, "handover.start", str(batch_id), 1)
    console.print(f"batch {batch_id}  job {job_id}")
    with connect(url, autocommit=True) as watch, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]}[/]"), console=console) as bar:
        tasks: dict[str, TaskID] = {}

        def show(_: float, __: str) -> None:
            for b in batch_status(watch, batch_id)["buildings"]:
                task = tasks.get(b["building_code"])
                if task is None:
                    task = tasks[b["building_code"]] = bar.add_task(
                        b["name"][:24], total=b["units"], failed="")
                bar.update(task, completed=b["done"] + b["failed"],
                           failed=f"✗ {b['failed']}" if b["failed"] else "")

        with JobTracker(url, job_id) as tracker:
            def progress(fraction: float, step: str) -> None:
                tracker.update(fraction, step)
                show(fraction, step)

            try:
                handover.run_batch(url, s.cases, keys, batch_id, actor, progress=progress)
            except Exception as exc:
                handover.fail_batch(url, batch_id, getattr(exc, "code", "INTERNAL_ERROR"))
                raise
        show(1.0, "")
    _report(url, batch_id)


def _report(url: str, batch_id: uuid.UUID) -> None:
    with connect(url) as conn:
        out = batch_status(conn, batch_id)
    t = out["totals"]
    console.print(f"{t['done']} of {t['units']} unit(s) handed over, {t['failed']} failed")
    if out["failures"]:
        table = Table("单元 unit", "code", "原因 reason")
        for f in out["failures"][:100]:
            table.add_row(f["unit_code"], f["error_code"] or "", (f["error"] or "")[:90])
        console.print(table)
        raise typer.Exit(1)
