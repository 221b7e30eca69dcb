"""`cadastre qa …`: run the quality rules, list rules and findings, draw a review sample."""

from __future__ import annotations

import csv
import json
import sys
import uuid
from datetime import date

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cadastre.qa.engine import draw_sample, run_qa
from cadastre.qa.report import findings_rows, scope_from_options
from cadastre.qa.rules import CATEGORIES, RULES
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect

qa_app = typer.Typer(help="质量检查 / registry quality checks", no_args_is_help=True)
console = Console()


@qa_app.command("rules")
def rules() -> None:
    """List the rules with their category, severity and whether they are enabled."""
    disabled = set(get_settings().qa.disabled_rules)
    table = Table("id", "category", "severity", "描述 / description", "on")
    for r in RULES:
        table.add_row(r.id, CATEGORIES[r.category], r.severity, f"{r.title_zh} / {r.title_en}",
                      "" if r.id in disabled else "✓")
    console.print(table)


@qa_app.command("run")
def run(bbox: str = typer.Option(None, help="lon1,lat1,lon2,lat2 (WGS84)"),
        parcel: list[str] = typer.Option(None, help="parcel code(s)"),
        rule: list[str] = typer.Option(None, help="only these rule ids"),
        actor: str = typer.Option("cli:registrar")) -> None:
    """Run QA over the district, a bbox or parcels (progress bar); store the run."""
    s = get_settings()
    url = ensure_database(s).url
    scope = scope_from_options(bbox, parcel)
    with connect(url) as conn, Progress(TextColumn("[bold]质检 QA[/] {task.description}"),
                                        BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                        console=console) as bar:
        task = bar.add_task("", total=1)
        run_id = run_qa(conn, scope, s.qa, actor, only=rule or None,
                        progress=lambda i, n, r: bar.update(task, completed=i, total=n,
                                                            description=r))
        rows = findings_rows(conn, run_id)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["rule"]] = counts.get(r["rule"], 0) + 1
    console.print(f"run {run_id}: {len(rows)} findings")
    for k, v in sorted(counts.items()):
        console.print(f"  {k:28s} {v}")


@qa_app.command("findings")
def findings(run_id: str, fmt: str = typer.Option("table", "--format",
                                                  help="table | json | csv")) -> None:
    """Print a run's findings."""
    url = ensure_database(get_settings()).url
    with connect(url) as conn:
        rows = findings_rows(conn, uuid.UUID(run_id))
    if fmt == "json":
        console.print_json(json.dumps(rows, ensure_ascii=False, default=str))
    elif fmt == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["rule"])
        w.writeheader()
        w.writerows(rows)
    else:
        table = Table("rule", "severity", "subject", "measure", "status", "message")
        for r in rows[:500]:
            table.add_row(r["rule"], r["severity"], ",".join(r["subject"])[:40],
                          f"{r['measure']:.3f}" if r["measure"] is not None else "",
                          r["status"], r["message"][:60])
        console.print(table)


@qa_app.command("sample")
def sample(since: str = typer.Option(..., help="YYYY-MM-DD"),
           fraction: float | None = typer.Option(
               None, min=0.001, max=1.0, help="default: CADASTRE_QA_SAMPLE_FRACTION (5 %)"),
           seed: int | None = typer.Option(None), actor: str = typer.Option("cli:registrar")
           ) -> None:
    """Draw and record a random sample (default 5 %) of registrations for manual review."""
    settings = get_settings()
    url = ensure_database(settings).url
    with connect(url) as conn:
        run_id, picked = draw_sample(conn, fraction or settings.qa.sample_fraction,
                                     date.fromisoformat(since), actor, seed)
    console.print(f"sample {run_id}: {len(picked)} registrations")
    for b in picked[:50]:
        console.print(f"  {b}")
