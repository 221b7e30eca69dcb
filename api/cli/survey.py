"""`cadastre survey …`: submit a survey file, follow its validation, decide on it."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cadastre.jobs import create_job, get_job, set_payload
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect
from cadastre.survey import apply as decision
from cadastre.survey import presets
from cadastre.survey.diff import compute_diff
from cadastre.survey.options import SubmissionOptions
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
           actor: str = typer.Option("cli:surveyor", help="who submits (recorded)"),
           field_map: str | None = typer.Option(
               None, "--field-map", help="字段映射 / field map: parcel_code=IDU,declared_area=…"),
           preset: str | None = typer.Option(None, help="本组的字段映射预设 / a team preset"),
           team: str = typer.Option("cli", help="the team whose presets --preset names"),
           new_parcels: bool = typer.Option(
               False, "--new-parcels", help="无代码的宗地为新宗地 / uncoded parcels are new"),
           building: str | None = typer.Option(
               None, help="局部平面图所在自然幢 / building a local plan belongs to"),
           control_points: str | None = typer.Option(
               None, "--control-points", help="x,y:E,N;x,y:E,N (local → projected)"),
           fit_outline: bool = typer.Option(
               False, "--fit-outline", help="按幢轮廓定位 / fit the plan to the outline"),
           tolerance: float | None = typer.Option(None, help="定位容差 m / tolerance (m)"),
           ) -> None:
    """Store the file immutably, validate it (progress bar) and print the report summary."""
    s = get_settings()
    url = ensure_database(s).url
    with connect(url) as conn:
        mapping: str | dict[str, str] | None = field_map
        if preset:
            saved = presets.get_preset(conn, team, preset)
            mapping = {**saved["field_map"], **SubmissionOptions.build(field_map).field_map}
            new_parcels = new_parcels or saved["new_parcels"]
        options = SubmissionOptions.build(mapping, new_parcels, building, control_points,
                                          fit_outline, tolerance)
    with path.open("rb") as fh:
        upload = store_upload(fh, s.data_dir / "uploads")
    with connect(url) as conn, conn.transaction():
        # validated here with a progress bar; if this process dies, a worker takes it over
        job = create_job(conn, "survey_validation", actor, run_here=f"cli:{os.getpid()}")
        sid = create_submission(conn, upload, path.name, actor, job, srid, options)
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
    if report.get("placement"):
        p = report["placement"]
        where = (f"on building {p['building']}" if p.get("building")
                 else f"at latitude {p.get('latitude')}, longitude {p.get('longitude')}")
        console.print(f"placement: {p.get('method')} {where}, EPSG:{p.get('srid')}, rotation "
                      f"{p.get('rotation_deg')}°, scale {p.get('scale')}, residual "
                      f"{p.get('residual_m', '-')} m (tolerance {p.get('tolerance_m', '-')} m)",
                      markup=False)
    _print_areas(report.get("areas"))
    for m in report.get("mapping") or []:
        console.print(f"fields of {m['layer']}: {', '.join(m['fields'])}", markup=False)
        if m.get("field_map"):
            console.print(f"  suggested: --field-map {m['field_map']}", markup=False)
    for kind in ("errors", "warnings"):
        for item in report.get(kind, [])[:20]:
            console.print(f"  {kind[:-1]:7s} {item['code']:28s} {', '.join(item['subject'])[:60]}"
                          f"  {item['message'][:400]}", markup=False)
            if item.get("advice"):
                console.print(f"          → {item['advice']}", markup=False)


AREA_ROWS = 20


def _print_areas(areas: dict | None) -> None:
    """Totals per kind and the first features with computed and declared areas (m²)."""
    if not areas or not areas.get("totals"):
        return
    table = Table(title=f"面积 / areas (m², EPSG:{areas.get('srid')})")
    for col in ("kind", "ref", "code", "area", "declared", "difference"):
        table.add_column(col, justify="right" if col in ("area", "declared", "difference")
                         else "left")
    for it in areas.get("items", [])[:AREA_ROWS]:
        table.add_row(it["kind"], it["ref"][:40], it.get("code") or "",
                      f"{it['area_m2']:.2f}", _num(it.get("declared_m2")),
                      _num(it.get("difference_m2")))
    for kind, t in areas["totals"].items():
        table.add_row(f"Σ {kind}", f"{t['count']}", "", f"{t['area_m2']:.2f}",
                      _num(t.get("declared_m2") or None), "")
    console.print(table)


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


@survey_app.command("status")
def status(submission_id: str) -> None:
    """Status, validation progress and the diff against the registry."""
    url = ensure_database(get_settings()).url
    sid = uuid.UUID(submission_id)
    with connect(url) as conn:
        sub = get_submission(conn, sid)
        job = get_job(conn, uuid.UUID(sub["job_id"])) if sub["job_id"] else None
        out = {**sub, "job": job.as_dict() if job else None}
        row = conn.execute("SELECT report->'areas', report->'placement' FROM "
                           "cad.survey_submission WHERE submission_id = %s", (sid,)).fetchone()
        if sub["status"] == "validated":
            out["diff"] = compute_diff(conn, sid, bool(sub["options"].get("new_parcels"))
                                       ).summary()
    console.print_json(json.dumps(out, ensure_ascii=False, default=str))
    if row and row[1]:
        console.print(f"placement: {json.dumps(row[1], ensure_ascii=False)}", markup=False)
    _print_areas(row[0] if row else None)


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


@survey_app.command("preset")
def save_preset(name: str, field_map: str = typer.Option("", "--field-map"),
                new_parcels: bool = typer.Option(False, "--new-parcels"),
                team: str = typer.Option("cli", help="the team the preset belongs to")) -> None:
    """Save a field-map preset for a team (used with `submit --preset NAME --team TEAM`)."""
    url = ensure_database(get_settings()).url
    with connect(url) as conn, conn.transaction():
        saved = presets.save_preset(conn, team, name, field_map, new_parcels, "cli")
    console.print_json(json.dumps({"team": team, **saved}, ensure_ascii=False))
