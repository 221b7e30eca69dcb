"""The case clock: working-day deadlines and traffic lights, computed in SQL.

The deadlines of a running case (clock started, not yet 登簿/办结, not closed) are stored on the
case (``yellow_at``, ``due_at``, ``statutory_due_at``) by ``reg.deadlines`` and recomputed at
every event that moves them (acceptance, end of a pause, a calendar or limit change, a change of
the clock settings). The light is then a comparison of instants (``reg.light``), so lists sort
and filter by urgency with plain indexes:

- green: before ``yellow_at``;
- yellow: from ``yellow_at`` (working days left ≤ share × promised days, whole days; same-day
  types at a fixed hour) up to and including ``due_at``;
- red: after ``due_at`` (the promised deadline); ``statutory_overdue`` after ``statutory_due_at``.

A paused case is judged at the moment its clock stopped: its light does not change while it waits.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import psycopg

from cadastre.cases import calendar
from cadastre.settings import CasesSettings

LIGHTS = ("green", "yellow", "red")

# running clock: the predicate of the partial indexes in migration 0008
RUNNING = "c.registered_at IS NULL AND c.closed_at IS NULL AND c.clock_from IS NOT NULL"


def light_sql(alias: str = "c", at: str = "%(now)s") -> str:
    return f"reg.light({alias}.yellow_at, {alias}.due_at, {alias}.paused_since, {at})"


def statutory_overdue_sql(alias: str = "c", at: str = "%(now)s") -> str:
    return (f"({alias}.statutory_due_at IS NOT NULL AND "
            f"coalesce({alias}.paused_since, {at}) > {alias}.statutory_due_at)")


def light_filter_sql(light: str, alias: str = "c", at: str = "%(now)s") -> str:
    """A sargable condition for one light (uses the stored instants, not the function)."""
    t = f"coalesce({alias}.paused_since, {at})"
    return {"red": f"{alias}.due_at < {t}",
            "yellow": f"{alias}.yellow_at <= {t} AND {alias}.due_at >= {t}",
            "green": f"{alias}.yellow_at > {t}"}[light]


def _settings_key(settings: CasesSettings) -> str:
    return json.dumps({k: str(v) for k, v in settings.clock_params().items()}, sort_keys=True)


_UPDATE = f"""
UPDATE reg.case c SET
    (start_day, yellow_at, due_at, statutory_due_at, calendar_incomplete) = (
        SELECT d.start_day, d.yellow_at, d.due_at, d.statutory_due_at, d.incomplete
        FROM reg.deadlines(c.clock_from, c.promised_days::int, c.statutory_days::int,
                           c.paused_days, %(tz)s::text, %(closing)s::time, %(share)s::numeric,
                           %(same_day)s::time) d),
    updated_at = now()
WHERE {RUNNING}
"""


def recompute(conn: psycopg.Connection, settings: CasesSettings, case_id: uuid.UUID) -> None:
    """Deadlines of one running case (no-op for a case whose clock is not running)."""
    conn.execute(_UPDATE + " AND c.case_id = %(case)s",
                 {**settings.clock_params(), "case": case_id})


def recompute_running(conn: psycopg.Connection, settings: CasesSettings,
                      county: str | None = None, business_type: int | None = None) -> int:
    """Deadlines of every running case (optionally of one county / business type), after a
    calendar, limit or settings change. Returns how many were recomputed."""
    calendar.ensure(conn, settings)
    cur = conn.execute(
        _UPDATE + " AND (%(county)s::text IS NULL OR c.county_code = %(county)s)"
        " AND (%(bt)s::smallint IS NULL OR c.business_type = %(bt)s)",
        {**settings.clock_params(), "county": county, "bt": business_type})
    return cur.rowcount


def ensure_current(conn: psycopg.Connection, settings: CasesSettings) -> bool:
    """At start-up: extend the calendar if needed and recompute every running case when the
    clock settings differ from those the stored deadlines were computed with."""
    with conn.transaction():
        calendar.ensure(conn, settings)
        key = _settings_key(settings)
        row = conn.execute("SELECT settings FROM reg.clock_state FOR UPDATE").fetchone()
        if row is not None and row[0] == key:
            return False
        recompute_running(conn, settings)
        conn.execute("INSERT INTO reg.clock_state (id, settings) VALUES (true, %s) "
                     "ON CONFLICT (id) DO UPDATE SET settings = EXCLUDED.settings, "
                     "computed_at = now()", (key,))
    return True


def remaining_workdays(conn: psycopg.Connection, due_at: datetime, at: datetime,
                       settings: CasesSettings) -> int:
    """Whole working days between ``at``'s local day and the deadline's (negative when late)."""
    row = conn.execute(
        "SELECT reg.wd_idx((%(d)s AT TIME ZONE %(tz)s)::date) "
        "- reg.wd_idx((%(a)s AT TIME ZONE %(tz)s)::date)",
        {"d": due_at, "a": at, "tz": settings.timezone}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
