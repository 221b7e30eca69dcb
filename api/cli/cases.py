"""`cadastre cases …` and `cadastre calendar …`: registration cases from the command line, and the
working-day calendar's local overrides."""

from __future__ import annotations

import csv
import getpass
import json
import sys
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from api.cli.audit import record_cli
from cadastre.access.pii import audit_key, load_cipher
from cadastre.cases import calendar as cal
from cadastre.cases import catalogue, clock, queries
from cadastre.cases import workflow as wf
from cadastre.cases.application import Application, PartyInput
from cadastre.cases.model import Action, PauseReason
from cadastre.errors import InvalidInput
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect

cases_app = typer.Typer(help="登记办件 / registration cases", no_args_is_help=True)
calendar_app = typer.Typer(help="工作日历 / working-day calendar", no_args_is_help=True)
console = Console()
LIGHT_STYLE = {"green": "green", "yellow": "yellow", "red": "bold red"}


def _env(signs: bool = False) -> tuple[Any, str, wf.Keys]:
    """Settings, database URL and keys; with ``signs`` also the office's signer, which moves
    that make certificates (缮证/发证) need (creating the local CA on first use): other
    commands never touch it."""
    s = get_settings()
    url = ensure_database(s).url
    if not signs:
        return s, url, wf.Keys(load_cipher(s), audit_key(s))
    from cadastre.certificates.issue import IssuingContext

    docs = IssuingContext.from_settings(s)
    return s, url, wf.Keys(docs.cipher, docs.audit_key, docs)


def _actor(name: str) -> wf.Actor:
    return wf.Actor(f"cli:{getpass.getuser()}", "registrar", name)


REGISTRAR = typer.Option("登记员", "--registrar", help="登簿人 / staff name on the register")


@cases_app.command("open")
def open_case(application: Path = typer.Argument(..., help="JSON as for POST /api/v1/cases "
                                                 "(- for standard input)"),
              registrar: str = REGISTRAR) -> None:
    """受理: open a case from an application file; prints the case number and query code."""
    s, url, keys = _env()
    raw = sys.stdin.read() if str(application) == "-" else application.read_text("utf-8")
    try:
        body = json.loads(raw)
        app = Application(int(body["business_type"]), tuple(body["unit_codes"]),
                          tuple(PartyInput(**p) for p in body.get("parties", [])),
                          uuid.UUID(body["target_right_id"]) if body.get("target_right_id")
                          else None, body.get("request", {}), body.get("channel", "window"),
                          tuple(body.get("materials", [])))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("APPLICATION_INVALID", "申请文件格式无效 / the application file is "
                           "not valid") from exc
    with connect(url) as conn:
        opened = wf.open_case(conn, s.cases, keys, _actor(registrar), app)
    console.print(f"案号 case {opened.case_no}  查询码 query code {opened.query_code}  "
                  f"({opened.stage.value})")


def _print_cases(items: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        console.print_json(json.dumps(items, ensure_ascii=False, default=str))
        return
    if fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(["case_no", "business_type", "stage", "light", "remaining_workdays",
                    "due_at", "statutory_overdue", "paused"])
        for r in items:
            w.writerow([r["case_no"], r["business_type"], r["stage"], r["light"],
                        r["remaining_workdays"], r["due_at"], r["statutory_overdue"],
                        r["paused"]])
        return
    table = Table("案号 case", "业务 business", "阶段 stage", "灯 light", "剩余 left",
                  "承诺办结 due", "暂停 paused")
    for r in items:
        light = r["light"] or ""
        table.add_row(r["case_no"], r["business_type_label"]["zh"], r["stage_label"]["zh"],
                      f"[{LIGHT_STYLE[light]}]●[/] {light}" if light else "",
                      "" if r["remaining_workdays"] is None else str(r["remaining_workdays"]),
                      r["promised_due_date"] or "", "⏸" if r["paused"] else "")
    console.print(table)


@cases_app.command("list")
def list_cases(light: str = typer.Option(None, help="green | yellow | red"),
               stage: str = typer.Option(None), business_type: int = typer.Option(None, "--type"),
               limit: int = typer.Option(50, min=1, max=500),
               fmt: str = typer.Option("table", "--format", help="table | json | csv")) -> None:
    """Open cases, most urgent first."""
    s, url, _ = _env()
    with connect(url) as conn:
        page = queries.worklist(conn, s.cases, queries.WorklistFilter(
            stage=stage, light=light, business_type=business_type, limit=limit))
    _print_cases(page["items"], fmt)


@cases_app.command("show")
def show(case_no: str, parties: bool = typer.Option(False, help="decrypt the parties")) -> None:
    """One case: clock, transitions, reviews, pauses, materials."""
    s, url, keys = _env()
    with connect(url) as conn:
        rec = queries.case_detail(conn, s.cases, keys.cipher, case_no)
    if not parties:
        rec["parties"] = [{"case_role": p["case_role"], "seq": p["seq"]} for p in rec["parties"]]
    console.print_json(json.dumps(rec, ensure_ascii=False, default=str))


@cases_app.command("advance")
def advance(case_no: str, action: Action,
            note: str = typer.Option(None), reason: str = typer.Option(None),
            step: str = typer.Option(None, help="review step (初审, 复审 …)"),
            opinion: str = typer.Option(None, help="review opinion"),
            failed: bool = typer.Option(False, "--failed", help="the review did not pass"),
            registrar: str = REGISTRAR) -> None:
    """Move a case: review, register (登簿), conclude, prepare, issue, archive, reject …"""
    s, url, keys = _env(signs=action in (Action.PREPARE, Action.ISSUE))
    review = wf.Review(step, opinion, not failed) if step or opinion else None
    with connect(url) as conn:
        out = wf.advance(conn, s.cases, keys, _actor(registrar), case_no, action, note=note,
                         reason=reason, review=review)
    console.print_json(json.dumps(out, ensure_ascii=False, default=str))


@cases_app.command("pause")
def pause(case_no: str, reason: PauseReason,
          missing: list[str] = typer.Option(None, help="补正: missing material code(s)"),
          note: str = typer.Option(None), registrar: str = REGISTRAR) -> None:
    """Stop the clock (补正, 公告, 实地查看, 调查, 政策核查, 缴税)."""
    s, url, keys = _env()
    with connect(url) as conn:
        wf.pause(conn, s.cases, keys, _actor(registrar), case_no, reason, note, missing or ())
    console.print(f"{case_no}: paused ({reason.value})")


@cases_app.command("resume")
def resume(case_no: str, note: str = typer.Option(None), registrar: str = REGISTRAR) -> None:
    """Restart the clock; the deadlines move by the paused working days."""
    s, url, keys = _env()
    with connect(url) as conn:
        days = wf.resume(conn, s.cases, keys, _actor(registrar), case_no, note)
    console.print(f"{case_no}: resumed, {days} working day(s) not counted")


@cases_app.command("stats")
def stats(days: int = typer.Option(30, help="completed cases of the last N days"),
          fmt: str = typer.Option("table", "--format", help="table | json | csv")) -> None:
    """Supervision: running cases by light, on-time rate, average and p90 working days."""
    s, url, _ = _env()
    until = datetime.now().astimezone()
    with connect(url) as conn:
        out = queries.stats(conn, s.cases, (), until - timedelta(days=days), until)
    if fmt == "json":
        console.print_json(json.dumps(out, ensure_ascii=False, default=str))
        return
    if fmt == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=list(queries.STATS_FIELDS))
        w.writeheader()
        w.writerows(out["rows"])
        return
    table = Table("county", "业务 business", "[green]绿[/]", "[yellow]黄[/]", "[red]红[/]",
                  "超法定", "暂停", "办结", "按时率", "平均", "p90")
    for r in out["rows"]:
        rate = r["on_time_rate"]
        table.add_row(r["county_code"], r["business_type_zh"][:18], str(r["green"]),
                      str(r["yellow"]), str(r["red"]), str(r["statutory_overdue"]),
                      str(r["paused"]), str(r["completed"]),
                      f"{rate:.1%}" if rate is not None else "",
                      str(r["avg_workdays"] or ""), str(r["p90_workdays"] or ""))
    console.print(table)


@cases_app.command("catalogue")
def show_catalogue() -> None:
    """Business types with their statutory and promised limits (working days)."""
    s, url, _ = _env()
    table = Table("#", "业务 business", "type", "法定", "承诺", "审核", "证书")
    with connect(url) as conn:
        for bt in catalogue.all_types(conn):
            table.add_row(str(bt.seq), bt.name_zh, bt.registration_type, str(bt.statutory_days),
                          str(bt.promised_days), str(bt.review_steps), bt.issues)
    console.print(table)


@cases_app.command("set-limit")
def set_limit(county: str, business_type: int, promised_days: int) -> None:
    """A county's own promised limit for a business type (audited)."""
    s, url, keys = _env()
    with connect(url) as conn, conn.transaction():
        catalogue.set_county_limit(conn, county, business_type, promised_days,
                                   _actor("").actor)
        record_cli(conn, "catalogue.limit", f"{county}:{business_type}", 1)
    console.print(f"{county} business {business_type}: promised {promised_days} working days")


@cases_app.command("recompute")
def recompute() -> None:
    """Recompute every running case's deadlines (after a settings change; `serve` does it too)."""
    s, url, _ = _env()
    with connect(url) as conn, conn.transaction():
        n = clock.recompute_running(conn, s.cases)
    console.print(f"{n} running case(s) recomputed")


# ------------------------------------------------------------------ calendar
@calendar_app.command("show")
def calendar_show(year: int = typer.Argument(None, help="default: this year")) -> None:
    """Days off on weekdays and working weekends of a year, and where the data comes from."""
    s, url, _ = _env()
    year = year or date.today().year
    with connect(url) as conn:
        cal.ensure(conn, s.cases)
        conn.commit()
        v = cal.year_view(conn, year)
    console.print(f"{year}: {v.workdays} working days, source {v.source}")
    if v.warning:
        console.print(f"[yellow]{v.warning}[/]")
    for title, days in (("休 days off", v.days_off), ("班 working weekends", v.extra_workdays)):
        console.print(f"[bold]{title}[/]: " + ", ".join(
            f"{d.day:%m-%d}{'(' + d.note + ')' if d.note else ''}" for d in days))


def _set(day: str, workday: bool, note: str | None) -> None:
    s, url, keys = _env()
    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise InvalidInput("CALENDAR_DATE", "日期须为 YYYY-MM-DD / date must be YYYY-MM-DD") \
            from None
    with connect(url) as conn, conn.transaction():
        cal.set_day(conn, s.cases, d, workday, note, _actor("").actor)
        record_cli(conn, "calendar.day", d.isoformat(), 1)
    console.print(f"{d}: {'working day' if workday else 'day off'}; running cases recomputed")


@calendar_app.command("add-holiday")
def add_holiday(day: str, note: str = typer.Option(None)) -> None:
    """A local day off (e.g. a local holiday)."""
    _set(day, False, note)


@calendar_app.command("add-workday")
def add_workday(day: str, note: str = typer.Option(None)) -> None:
    """A make-up working day (调休) on a weekend."""
    _set(day, True, note)


@calendar_app.command("import")
def import_notice(file: Path, year: int = typer.Option(..., help="the notice's year"),
                  note: str = typer.Option(None, help="e.g. 国办发明电〔2026〕X号")) -> None:
    """A year's State Council holiday notice, as lines
    `YYYY-MM-DD[..YYYY-MM-DD] holiday|workday note`; the year then counts as covered."""
    s, url, keys = _env()
    days = cal.parse_notice(file.read_text("utf-8").splitlines(), year)
    with connect(url) as conn, conn.transaction():
        n = cal.import_notice(conn, s.cases, year, days, _actor("").actor, note)
        record_cli(conn, "calendar.import", str(year), n)
    console.print(f"{year}: {n} days imported; running cases recomputed")
