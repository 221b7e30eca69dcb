"""The case clock: working-day deadlines and traffic lights, computed in SQL.

The deadlines of a running case (clock started, not yet 登簿/办结, not closed) are stored on the
case (``yellow_at``, ``due_at``, ``statutory_due_at``) by one set-based statement over the
materialised calendar (``compute``) and recomputed at
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


# Deadlines of the cases selected by {where} (alias x), in one statement: the first counted
# day (the acceptance day if a working day before closing time, else the next working day),
# the promised and statutory deadlines (closing time of the N-th working day after it, plus
# the paused working days), the instant it turns yellow (whole working days left <= share x
# promised; same-day types at a fixed hour) and whether days without holiday data lie between.
_DEADLINES = """
WITH c AS (
    SELECT x.case_id, x.promised_days::int AS pd, x.statutory_days::int AS sd,
           x.paused_days AS pz, (x.clock_from AT TIME ZONE %(tz)s) AS lt
    FROM reg.case x WHERE x.clock_from IS NOT NULL AND {where}
), f AS (
    SELECT c.*, k.idx + CASE WHEN k.workday AND c.lt::time < %(closing)s::time
                             THEN 0 ELSE 1 END AS s
    FROM c JOIN reg.calendar_day k ON k.day = c.lt::date
)
UPDATE reg.case u SET
    start_day = s.day,
    yellow_at = CASE WHEN f.pd = 0 THEN (p.day + %(same_day)s::time) AT TIME ZONE %(tz)s
                     ELSE y.day::timestamp AT TIME ZONE %(tz)s END,
    due_at = (p.day + %(closing)s::time) AT TIME ZONE %(tz)s,
    statutory_due_at = (st.day + %(closing)s::time) AT TIME ZONE %(tz)s,
    calendar_incomplete = st.nodata > s.nodata OR s.source = 'weekday',
    updated_at = now()
FROM f
JOIN reg.calendar_day s ON s.workday AND s.idx = f.s
JOIN reg.calendar_day p ON p.workday AND p.idx = f.s + f.pd + f.pz
JOIN reg.calendar_day st ON st.workday AND st.idx = f.s + f.sd + f.pz
JOIN reg.calendar_day y ON y.workday
     AND y.idx = f.s + f.pd + f.pz - floor(f.pd * %(share)s::numeric)::int
WHERE u.case_id = f.case_id
"""


def compute(conn: psycopg.Connection, settings: CasesSettings, where: str,
            params: dict[str, object] | None = None) -> int:
    """Store the deadlines of the cases matching ``where`` (SQL over alias ``x``, a constant
    of the caller's code: never request input). Returns how many were computed."""
    cur = conn.execute(_DEADLINES.format(where=where),
                       {**settings.clock_params(), **(params or {})})
    return cur.rowcount


_RUNNING_X = RUNNING.replace("c.", "x.")


def recompute(conn: psycopg.Connection, settings: CasesSettings, case_id: uuid.UUID) -> None:
    """Deadlines of one running case (no-op for a case whose clock is not running)."""
    compute(conn, settings, f"{_RUNNING_X} AND x.case_id = %(case)s", {"case": case_id})


def recompute_running(conn: psycopg.Connection, settings: CasesSettings,
                      county: str | None = None, business_type: int | None = None) -> int:
    """Deadlines of every running case (optionally of one county / business type), after a
    calendar, limit or settings change. Returns how many were recomputed."""
    calendar.ensure(conn, settings)
    return compute(conn, settings, f"{_RUNNING_X} AND (%(county)s::text IS NULL OR "
                   "x.county_code = %(county)s) AND (%(bt)s::smallint IS NULL OR "
                   "x.business_type = %(bt)s)", {"county": county, "bt": business_type})


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
