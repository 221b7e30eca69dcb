"""The working-day calendar: Chinese public holidays and make-up working days (调休) from the
maintained ``chinese-calendar`` package, a local override table on top, materialised day by day
into ``reg.calendar_day`` so the clock is computed in SQL (``cadastre.cases.clock``).

A year the package has no data for counts Monday to Friday only, and says so: its days carry
``source = 'weekday'`` and every case whose limit runs into it is flagged (``calendar_incomplete``)
until the year's State Council notice is imported into the local table (``import_notice``).
No holiday is written in this code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import chinese_calendar
import psycopg

from cadastre.errors import InvalidInput
from cadastre.settings import CasesSettings

_LOCK = 0x7265_6763   # one rebuild at a time


@dataclass(frozen=True)
class Day:
    day: date
    workday: bool
    source: str          # package | local | weekday
    note: str | None = None


def package_years() -> range:
    """Years the installed chinese-calendar release has official data for."""
    years = sorted({d.year for d in chinese_calendar.holidays})
    return range(years[0], years[-1] + 1)


def _package_workday(d: date) -> bool | None:
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:   # a year the package does not cover
        return None


def _days(first: date, last: date, overrides: dict[date, tuple[bool, str | None]],
          local_years: set[int]) -> Iterator[Day]:
    d = first
    while d <= last:
        if d in overrides:
            workday, note = overrides[d]
            yield Day(d, workday, "local", note)
        else:
            pkg = _package_workday(d)
            if pkg is not None:
                yield Day(d, pkg, "package")
            else:
                yield Day(d, d.weekday() < 5, "local" if d.year in local_years else "weekday")
        d += timedelta(days=1)


def _span(settings: CasesSettings, today: date | None = None) -> tuple[date, date]:
    today = today or date.today()
    return (date(settings.calendar_first_year, 1, 1),
            date(today.year + settings.calendar_years_ahead, 12, 31))


def rebuild(conn: psycopg.Connection, settings: CasesSettings, today: date | None = None) -> int:
    """Materialise every day of the span into ``reg.calendar_day`` (in the caller's
    transaction); returns the number of days written."""
    first, last = _span(settings, today)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        overrides = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT day, workday, note FROM reg.calendar_override")}
        local_years = {r[0] for r in conn.execute("SELECT year FROM reg.calendar_year")}
        conn.execute("DELETE FROM reg.calendar_day")
        idx = nodata = 0
        with conn.cursor().copy(
                "COPY reg.calendar_day (day, workday, idx, source, nodata) FROM STDIN") as copy:
            for day in _days(first, last, overrides, local_years):
                idx += day.workday
                nodata += day.source == "weekday"
                copy.write_row((day.day, day.workday, idx, day.source, nodata))
    return (last - first).days + 1


def ensure(conn: psycopg.Connection, settings: CasesSettings, today: date | None = None) -> None:
    """Build the calendar if it is empty or does not reach far enough ahead."""
    row = conn.execute("SELECT max(day) FROM reg.calendar_day").fetchone()
    _, last = _span(settings, today)
    if row is None or row[0] is None or row[0] < last:
        rebuild(conn, settings, today)


# ------------------------------------------------------------------ local overrides
def set_day(conn: psycopg.Connection, settings: CasesSettings, day: date, workday: bool,
            note: str | None, actor: str) -> None:
    """A local holiday (``workday=False``) or make-up working day; the calendar and every running
    case's deadlines follow in the same transaction (see ``cadastre.cases.clock``)."""
    from cadastre.cases.clock import recompute_running

    with conn.transaction():
        conn.execute(
            "INSERT INTO reg.calendar_override (day, workday, note, created_by) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (day) DO UPDATE SET workday = EXCLUDED.workday, "
            "note = EXCLUDED.note, created_by = EXCLUDED.created_by, created_at = now()",
            (day, workday, note, actor))
        rebuild(conn, settings)
        recompute_running(conn, settings)


_LINE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})(?:\s*(?:\.\.|~|至)\s*(\d{4}-\d{2}-\d{2}))?"
                   r"\s+(holiday|workday|休|班)\s*(.*?)\s*$")


def parse_notice(lines: Iterable[str], year: int) -> list[Day]:
    """Lines ``2027-02-10..2027-02-16 holiday 春节`` or ``2027-02-07 workday 春节调休``
    (``休``/``班`` also accepted; ``#`` starts a comment) → days of ``year``."""
    days: list[Day] = []
    for n, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0]
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            raise InvalidInput("CALENDAR_LINE", f"第 {n} 行格式无效 / line {n} is not "
                               "'YYYY-MM-DD[..YYYY-MM-DD] holiday|workday note'")
        try:
            start = date.fromisoformat(m.group(1))
            end = date.fromisoformat(m.group(2)) if m.group(2) else start
        except ValueError:
            start = end = date.min
        if start == date.min or end < start or start.year != year or end.year != year:
            raise InvalidInput("CALENDAR_LINE", f"第 {n} 行日期不在 {year} 年内 / line {n} "
                               f"is not a range inside {year}")
        workday = m.group(3) in ("workday", "班")
        d = start
        while d <= end:
            days.append(Day(d, workday, "local", m.group(4) or None))
            d += timedelta(days=1)
    if not days:
        raise InvalidInput("CALENDAR_EMPTY", "通知中没有日期 / the notice lists no dates")
    return days


def import_notice(conn: psycopg.Connection, settings: CasesSettings, year: int,
                  days: list[Day], actor: str, note: str | None = None) -> int:
    """The year's official notice as local overrides; the year then counts as covered."""
    from cadastre.cases.clock import recompute_running

    with conn.transaction():
        for d in days:
            conn.execute(
                "INSERT INTO reg.calendar_override (day, workday, note, created_by) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (day) DO UPDATE SET "
                "workday = EXCLUDED.workday, note = EXCLUDED.note, "
                "created_by = EXCLUDED.created_by, created_at = now()",
                (d.day, d.workday, d.note, actor))
        conn.execute("INSERT INTO reg.calendar_year (year, note, imported_by) VALUES "
                     "(%s, %s, %s) ON CONFLICT (year) DO UPDATE SET note = EXCLUDED.note, "
                     "imported_by = EXCLUDED.imported_by, imported_at = now()",
                     (year, note, actor))
        rebuild(conn, settings)
        recompute_running(conn, settings)
    return len(days)


# ------------------------------------------------------------------ reading it
@dataclass(frozen=True)
class YearView:
    year: int
    source: str                 # package | local | weekday (no data: Monday–Friday only)
    workdays: int
    days_off: list[Day]         # weekdays that are not working days
    extra_workdays: list[Day]   # weekend days that are working days
    warning: str | None


def year_view(conn: psycopg.Connection, year: int) -> YearView:
    rows = conn.execute(
        "SELECT c.day, c.workday, c.source, o.note FROM reg.calendar_day c "
        "LEFT JOIN reg.calendar_override o ON o.day = c.day "
        "WHERE c.day BETWEEN %s AND %s ORDER BY c.day",
        (date(year, 1, 1), date(year, 12, 31))).fetchall()
    if not rows:
        raise InvalidInput("CALENDAR_YEAR", f"日历不含 {year} 年 / the calendar does not "
                           f"cover {year}")
    days = [Day(r[0], r[1], r[2], r[3]) for r in rows]
    sources = {d.source for d in days}
    source = ("weekday" if "weekday" in sources
              else "package" if "package" in sources and year in package_years() else "local")
    warning = None
    if source == "weekday":
        warning = (f"{year} 年无法定节假日数据，暂按星期一至星期五计算；请导入当年国务院通知 / "
                   f"no holiday data for {year}: Monday to Friday counted until the year's "
                   "notice is imported (cadastre calendar import)")
    return YearView(year, source, sum(d.workday for d in days),
                    [d for d in days if not d.workday and d.day.weekday() < 5],
                    [d for d in days if d.workday and d.day.weekday() >= 5], warning)


def add_workdays(conn: psycopg.Connection, day: date, n: int) -> date:
    """The n-th working day after working day ``day`` (SQL ``reg.wd_add``)."""
    row = conn.execute("SELECT reg.wd_add(%s, %s)", (day, n)).fetchone()
    if row is None or row[0] is None:
        raise InvalidInput("CALENDAR_RANGE", "超出日历范围或不是工作日 / outside the calendar "
                           "or not a working day")
    return row[0]  # type: ignore[no-any-return]


def workdays_between(conn: psycopg.Connection, start: datetime, end: datetime,
                     settings: CasesSettings) -> int:
    """Working days after ``start``'s local date up to and including ``end``'s."""
    row = conn.execute(
        "SELECT reg.wd_idx((%(e)s AT TIME ZONE %(tz)s)::date) "
        "- reg.wd_idx((%(s)s AT TIME ZONE %(tz)s)::date)",
        {"s": start, "e": end, "tz": settings.timezone}).fetchone()
    if row is None or row[0] is None:
        raise InvalidInput("CALENDAR_RANGE", "超出日历范围 / outside the calendar")
    return int(row[0])
