"""`cadastre qa sample-cases | check-case | bulletin`: the monthly manual sample of registration
cases per county, the checkers' outcomes, and the bulletin (JSON, CSV or PDF)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import typer
from rich.console import Console

from api.cli.qa import qa_app
from cadastre.qa import bulletin as qb
from cadastre.qa import sampling
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect

console = Console()


@qa_app.command("sample-cases")
def sample_cases(county: str = typer.Option(..., help="6-digit county code"),
                 month: str = typer.Option(..., help="YYYY-MM"),
                 by: str = typer.Option("cli:supervisor", help="who draws (recorded)"),
                 fraction: float | None = typer.Option(None, help="default: qa.sample_fraction"),
                 seed: int | None = typer.Option(None)) -> None:
    """Draw the month's sample of completed cases (5 % by default) for manual checking."""
    s = get_settings()
    with connect(ensure_database(s).url) as conn:
        out = sampling.draw(conn, county, sampling.first_of_month(month), by,
                            fraction=fraction or s.qa.sample_fraction, seed=seed,
                            tz=s.cases.timezone)
    console.print(f"sample {out['sample_id']}: {len(out['sampled'])} of {out['population']}")
    for case_no in out["sampled"]:
        console.print(case_no)


@qa_app.command("check-case")
def check_case(sample_id: str, case_no: str,
               checker: str = typer.Option(..., help="checker's id"),
               passed: bool = typer.Option(..., "--pass/--fail"),
               category: list[str] = typer.Option([], help="problem category (for --fail)"),
               note: str | None = typer.Option(None)) -> None:
    """Record a sampled case's outcome."""
    s = get_settings()
    with connect(ensure_database(s).url) as conn:
        sampling.record(conn, uuid.UUID(sample_id), case_no, checker, passed, category, note)
    console.print("recorded")


@qa_app.command("bulletin")
def bulletin(county: str = typer.Option(...), month: str = typer.Option(..., help="YYYY-MM"),
             fmt: str = typer.Option("json", "--format", help="json | csv | pdf"),
             out: Path | None = typer.Option(None, help="file (default: stdout for json/csv)")
             ) -> None:
    """The county's monthly quality bulletin."""
    s = get_settings()
    with connect(ensure_database(s).url) as conn:
        b = qb.bulletin(conn, county, month, tz=s.cases.timezone)
    if fmt == "pdf":
        target = out or Path(f"bulletin-{county}-{b['month']}.pdf")
        target.write_bytes(qb.to_pdf(b))
        console.print(f"→ {target}")
        return
    text = qb.to_csv(b) if fmt == "csv" else json.dumps(b, ensure_ascii=False, indent=2)
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        print(text)
