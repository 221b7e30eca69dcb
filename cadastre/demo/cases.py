"""A year of registration cases for the demo district, so the worklist and the supervision
dashboard show something real on first start.

- History: every right the demo registered in the last twelve months gets the archived case that
  entered it (accepted some working days before its 登簿, mostly within the promised limit, a few
  late; its business number becomes the case number), plus concluded information queries and
  housing-transaction cases, and some refused, rejected and withdrawn ones. Written in bulk; the
  clock columns come from the same SQL clock as live cases.
- Open cases: opened and moved through the real workflow (rules, parties, audit chain) at
  instants spread over the last weeks, so some are green, some yellow, some red, some paused for
  补正, some under review, some entered and waiting for their certificate.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from cadastre.cases import calendar, catalogue, clock
from cadastre.cases import workflow as wf
from cadastre.cases.application import Application, PartyInput
from cadastre.cases.model import Action, PauseReason
from cadastre.cases.rules import RuleViolation
from cadastre.demo.people import BANKS, COURTS, PeopleFactory
from cadastre.errors import CadastreError
from cadastre.settings import CasesSettings

ACTOR = wf.Actor("demo", "registrar", "登簿员甲")
# (kind, registration type, notice kind or right type) of a registered right → business type
_HISTORY_TYPES = """
CASE WHEN r.kind = 'ownership' THEN 7 WHEN r.kind = 'land_use' THEN 3
     WHEN r.kind = 'mortgage' THEN 9 WHEN r.kind = 'easement' THEN 16
     WHEN r.kind = 'objection' THEN 21 WHEN r.kind = 'seizure' THEN 22
     WHEN r.kind = 'cancellation' AND r.right_type = 23 THEN 12
     WHEN r.kind = 'cancellation' THEN 8
     WHEN r.kind = 'pre_notice' AND p.notice_kind IN (3, 4) THEN 14
     WHEN r.kind = 'pre_notice' THEN 13 END"""


@dataclass
class CaseSeedStats:
    history: int = 0
    open: int = 0
    sample_case_no: str | None = None     # one open case the public progress page can show
    sample_code: str | None = None


def seed_cases(conn: psycopg.Connection, settings: CasesSettings, keys: wf.Keys,
               seed: int = 20260630, now: datetime | None = None,
               open_cases: int = 300,
               progress: Callable[[int, int], None] | None = None) -> CaseSeedStats:
    """History and open cases for the loaded demo (once: does nothing if cases exist).
    Commits as it goes (the history, then each open case)."""
    stats = CaseSeedStats()
    row = conn.execute("SELECT count(*) FROM reg.case").fetchone()
    if row and row[0]:
        return stats
    tz = ZoneInfo(settings.timezone)
    now = now or datetime.now(tz)
    rng = random.Random(seed)
    with conn.transaction():
        calendar.ensure(conn, settings)
        stats.history = _history(conn, settings, rng, now)
    conn.commit()
    stats.open = _open_cases(conn, settings, keys, rng, now, open_cases, stats, progress)
    return stats


# ------------------------------------------------------------------ history (bulk)
def _history(conn: psycopg.Connection, settings: CasesSettings, rng: random.Random,
             now: datetime) -> int:
    rights = conn.execute(
        f"SELECT r.version_id, r.unit_code, r.registered_at, {_HISTORY_TYPES} AS bt "
        "FROM cad.right_record r LEFT JOIN cad.pre_notice_detail p "
        "ON p.right_version_id = r.version_id "
        "WHERE r.registered_at >= %s AND r.registered_at <= %s ORDER BY r.registered_at, "
        "r.version_id", (now - timedelta(days=365), now)).fetchall()
    promised = {bt.seq: bt.promised_days for bt in catalogue.all_types(conn)}
    county = conn.execute("SELECT min(county_code) FROM cad.parcel").fetchone()[0]  # type: ignore[index]
    conn.execute("CREATE TEMP TABLE demo_hist (case_id uuid, version_id bigint, unit char(28), "
                 "bt smallint, registered_at timestamptz, back int, hour int, outcome text) "
                 "ON COMMIT DROP")
    rows = []
    for vid, unit, reg_at, bt in rights:
        if bt is None:
            continue
        late = rng.random() < 0.06
        days = promised[bt]
        back = days + rng.randint(1, 3) if late else rng.randint(0, days)
        rows.append((uuid.uuid4(), vid, unit, bt, reg_at, back, rng.randint(9, 15), "archived"))
    # cases that wrote nothing: queries, housing transactions, and the refused / withdrawn
    units = [r[0] for r in conn.execute("SELECT unit_code FROM cad.unit WHERE valid_to IS NULL "
                                        "ORDER BY unit_code LIMIT 5000")]
    for _ in range(len(rights) // 2 + 20):
        bt, outcome = rng.choice(((24, "archived"), (24, "archived"), (25, "archived"),
                                  (7, "withdrawn"), (9, "rejected"), (7, "refused")))
        at = now - timedelta(days=rng.uniform(2, 365))
        rows.append((uuid.uuid4(), None, rng.choice(units), bt, at, rng.randint(0, 2),
                     rng.randint(9, 15), outcome))
    with conn.cursor().copy("COPY demo_hist FROM STDIN") as copy:
        for r in rows:
            copy.write_row(r)
    params = {"tz": settings.timezone, "county": county, "year": now.year,
              **settings.clock_params()}
    statements = _HISTORY_SQL.split(";\n\n")
    conn.execute(statements[0], params)        # the cases
    clock.compute(conn, settings, "x.case_id IN (SELECT case_id FROM demo_hist)")
    for statement in statements[1:]:           # days used, case number sequences
        conn.execute(statement, params)
    conn.execute("SET LOCAL cadastre.bulk_load = 'on'")   # business numbers only: no tiles
    conn.execute("UPDATE cad.right_record r SET business_no = c.case_no FROM demo_hist h "
                 "JOIN reg.case c ON c.case_id = h.case_id WHERE r.version_id = h.version_id")
    conn.execute(_HISTORY_PARTIES)
    conn.execute(_HISTORY_TRANSITIONS)
    return len(rows)


_HISTORY_SQL = """
WITH h AS (
    SELECT h.*, (h.registered_at AT TIME ZONE %(tz)s)::date AS reg_day,
           row_number() OVER (PARTITION BY extract(year FROM h.registered_at AT TIME ZONE %(tz)s)
                              ORDER BY h.registered_at, h.case_id) AS n
    FROM demo_hist h
), placed AS (
    SELECT h.*, coalesce((SELECT k.day FROM reg.calendar_day k WHERE k.workday
                          AND k.idx = reg.wd_idx(h.reg_day) - h.back), h.reg_day) AS acc_day
    FROM h
)
INSERT INTO reg.case (case_id, case_no, county_code, business_type, channel, stage, unit_codes,
                      request, query_code_hash, applied_at, accepted_at, clock_from,
                      promised_days, statutory_days, assignee, created_by, registered_at,
                      closed_at, reason)
SELECT p.case_id,
       extract(year FROM p.registered_at AT TIME ZONE %(tz)s)::int::text || %(county)s
           || lpad(p.n::text, 7, '0'),
       %(county)s, p.bt, CASE WHEN p.n %% 3 = 0 THEN 'online' ELSE 'window' END,
       p.outcome, ARRAY[p.unit], '{}', sha256(gen_random_uuid()::text::bytea),
       (p.acc_day + make_time(p.hour, (p.n %% 60)::int, 0)) AT TIME ZONE %(tz)s,
       CASE WHEN p.outcome <> 'refused'
            THEN (p.acc_day + make_time(p.hour, (p.n %% 60)::int, 0)) AT TIME ZONE %(tz)s END,
       CASE WHEN p.outcome = 'refused' THEN NULL
            ELSE (p.acc_day + make_time(p.hour, (p.n %% 60)::int, 0)) AT TIME ZONE %(tz)s END,
       b.promised_days, b.statutory_days, NULL, 'demo',
       CASE WHEN p.outcome = 'archived' THEN greatest(p.registered_at,
            (p.acc_day + make_time(p.hour + 1, 0, 0)) AT TIME ZONE %(tz)s) END,
       greatest(p.registered_at, (p.acc_day + make_time(p.hour + 1, 0, 0)) AT TIME ZONE %(tz)s)
           + interval '2 days',
       CASE p.outcome WHEN 'refused' THEN '不属于本机构登记范围'
                      WHEN 'rejected' THEN '抵押合同与申请不一致' END
FROM placed p JOIN reg.business_type b ON b.seq = p.bt;

UPDATE reg.case c SET working_days_used = greatest(0,
    reg.wd_idx((c.registered_at AT TIME ZONE %(tz)s)::date) - reg.wd_idx(c.start_day))
WHERE c.registered_at IS NOT NULL AND c.case_id IN (SELECT case_id FROM demo_hist);

INSERT INTO reg.number_seq (county_code, kind, year, last)
SELECT %(county)s, 'case', y, n FROM (
    SELECT extract(year FROM registered_at AT TIME ZONE %(tz)s)::int AS y, count(*) AS n
    FROM demo_hist GROUP BY 1) s
ON CONFLICT (county_code, kind, year) DO UPDATE SET last = EXCLUDED.last;
"""

_HISTORY_PARTIES = """
INSERT INTO reg.case_party (case_id, party_id, role, seq, share, co_ownership)
SELECT h.case_id, rp.party_id,
       CASE rp.role WHEN 1 THEN CASE WHEN r.kind = 'mortgage' THEN 'mortgagee' ELSE 'holder' END
                    WHEN 2 THEN 'obligor' ELSE 'applicant' END,
       rp.seq, rp.share, rp.co_ownership
FROM demo_hist h JOIN cad.right_record r ON r.version_id = h.version_id
JOIN cad.right_party rp ON rp.right_version_id = r.version_id
ON CONFLICT DO NOTHING
"""

_HISTORY_TRANSITIONS = """
INSERT INTO reg.case_transition (case_id, from_stage, to_stage, action, actor, at, note)
SELECT c.case_id, s.from_stage, s.to_stage, s.action, 'demo',
       CASE WHEN s.ord = 1 THEN c.applied_at
            WHEN s.to_stage IN ('registered', 'concluded') THEN c.registered_at
            WHEN s.ord = 2 THEN c.applied_at + interval '1 hour'
            ELSE coalesce(c.registered_at, c.applied_at) + (s.ord - 2) * interval '4 hours' END,
       NULL
FROM reg.case c JOIN demo_hist h ON h.case_id = c.case_id
JOIN reg.business_type b ON b.seq = c.business_type
CROSS JOIN LATERAL (VALUES
    (1, NULL, CASE WHEN c.stage = 'refused' THEN 'applied' ELSE 'accepted' END,
     CASE WHEN c.stage = 'refused' THEN 'apply' ELSE 'accept' END),
    (2, 'accepted', 'reviewing', 'review'),
    (3, 'reviewing', CASE WHEN b.writes_register THEN 'registered' ELSE 'concluded' END,
     CASE WHEN b.writes_register THEN 'register' ELSE 'conclude' END),
    (4, 'registered', 'certificate_prepared', 'prepare'),
    (5, 'certificate_prepared', 'issued', 'issue'),
    (6, 'issued', 'archived', 'archive'),
    (7, 'concluded', 'archived', 'archive'),
    (8, 'registered', 'archived', 'archive'),
    (9, 'applied', 'refused', 'refuse'),
    (10, 'reviewing', 'rejected', 'reject'),
    (11, 'accepted', 'withdrawn', 'withdraw')
) AS s(ord, from_stage, to_stage, action)
WHERE CASE c.stage
    WHEN 'refused' THEN s.ord IN (1, 9)
    WHEN 'rejected' THEN s.ord IN (1, 2, 10)
    WHEN 'withdrawn' THEN s.ord IN (1, 11)
    ELSE s.ord IN (1, 2, 3) OR (b.issues <> 'none' AND b.writes_register AND s.ord IN (4, 5, 6))
         OR (NOT b.writes_register AND s.ord = 7)
         OR (b.issues = 'none' AND b.writes_register AND s.ord = 8) END
"""


# ------------------------------------------------------------------ open cases (workflow)
def _instant(conn: psycopg.Connection, tz: ZoneInfo, now: datetime, back: int,
             rng: random.Random) -> datetime:
    """A time of day on the working day ``back`` working days before today (never future)."""
    today = now.astimezone(tz).date()
    row = conn.execute("SELECT day FROM reg.calendar_day WHERE workday AND idx = "
                       "reg.wd_idx(%s) - %s", (today, back)).fetchone()
    day: date = row[0] if row else today
    at = datetime.combine(day, time(rng.randint(9, 15), rng.randint(0, 59)), tz)
    return min(at, now - timedelta(minutes=5 * (back + 1)))


def _age(rng: random.Random, promised: int, share: float, today_open: bool) -> int | None:
    """Working days since acceptance for a wanted light: most cases green, a quarter yellow, a
    few red. ``today_open``: today is a working day before closing time (a case due today is
    still yellow). None: a same-day case that would be done by now (it is completed at once)."""
    r = rng.random()
    if r >= 0.87:
        return rng.randint(promised + 1, promised + 3)              # red
    if promised == 0:
        return 0 if today_open else None
    warn = int(promised * share)
    lo, hi = promised - warn, promised if today_open else promised - 1
    if r >= 0.6 and lo <= hi:
        return rng.randint(lo, hi)                                  # yellow
    return rng.randint(0, max(0, lo - 1))                           # green


def _candidates(conn: psycopg.Connection) -> dict[str, list[str]]:
    def q(sql: str) -> list[str]:
        return [r[0].strip() for r in conn.execute(sql)]
    free = ("NOT EXISTS (SELECT 1 FROM cad.right_record x WHERE x.unit_code = r.unit_code "
            "AND x.status = 1 AND x.kind IN ('seizure', 'pre_notice', 'objection'))")
    return {
        "owned": q("SELECT r.unit_code FROM cad.right_record r WHERE r.kind = 'ownership' AND "
                   f"r.status = 1 AND {free} ORDER BY md5(r.unit_code) LIMIT 3000"),
        "mortgaged": q("SELECT r.unit_code FROM cad.right_record r WHERE r.kind = 'mortgage' "
                       f"AND r.status = 1 AND {free} GROUP BY r.unit_code HAVING count(*) = 1 "
                       "ORDER BY md5(r.unit_code) LIMIT 1000"),
        "any": q("SELECT unit_code FROM cad.unit WHERE valid_to IS NULL "
                 "ORDER BY md5(unit_code) LIMIT 3000"),
    }


_OPEN_MIX = ((7, "owned", 30), (9, "owned", 18), (12, "mortgaged", 10), (13, "owned", 5),
             (24, "any", 10), (25, "any", 6), (6, "owned", 4), (21, "owned", 2),
             (22, "owned", 2), (23, "owned", 3), (2, "any", 0))


def _application(bt: int, unit: str, people: PeopleFactory, rng: random.Random) -> Application:
    def person(role: str = "holder") -> PartyInput:
        p = people.person()
        return PartyInput(p.name, p.id_number, role, p.id_type, p.party_type, p.phone)
    bank = PartyInput(rng.choice(BANKS), f"91330106MA2{rng.randint(10**6, 10**7 - 1)}X",
                      "mortgagee", 8, 2)
    today = date.today()
    requests: dict[int, tuple[list[PartyInput], dict[str, Any]]] = {
        7: ([person()], {"transaction_price": f"{rng.uniform(150, 900):.2f}"}),
        9: ([bank], {"mortgage_type": 1, "secured_amount": f"{rng.uniform(50, 400):.2f}",
                     "debt_start": today.isoformat(),
                     "debt_end": today.replace(year=today.year + 20).isoformat()}),
        12: ([], {"reason": "主债权消灭"}),
        13: ([person()], {"price": f"{rng.uniform(150, 900):.2f}"}),
        6: ([], {"changes": {"house_use": "11"}, "reason": "用途变更"}),
        21: ([person("applicant")], {"matter": "对该不动产的权利归属提出异议"}),
        22: ([], {"authority": rng.choice(COURTS),
                  "document_no": f"({today.year})浙0106执{rng.randint(100, 999)}号"}),
        23: ([], {"replacement": "lost"}),
    }
    parties, request = requests.get(bt, ([person("applicant")], {}))
    return Application(bt, (unit,), tuple(parties), request=request,
                       channel="online" if rng.random() < 0.3 else "window",
                       materials=("application_form", "applicant_identity"))


def _open_cases(conn: psycopg.Connection, settings: CasesSettings, keys: wf.Keys,
                rng: random.Random, now: datetime, n: int, stats: CaseSeedStats,
                progress: Callable[[int, int], None] | None) -> int:
    tz = ZoneInfo(settings.timezone)
    people = PeopleFactory(rng)
    pools = _candidates(conn)
    used: set[str] = set()
    weights = [w for _, _, w in _OPEN_MIX]
    opened = attempts = 0
    while opened < n and attempts < n * 4:
        attempts += 1
        bt, pool, _ = rng.choices(_OPEN_MIX, weights)[0]
        promised = catalogue.get(conn, bt).promised_days
        age = _age(rng, promised, settings.yellow_share, _today_open(conn, settings, now))
        back = 0 if age is None else age
        units = [u for u in pools[pool][:400] if u not in used]
        if not units:
            continue
        unit = rng.choice(units)
        try:
            o = wf.open_case(conn, settings, keys, ACTOR, _application(bt, unit, people, rng),
                             at=_instant(conn, tz, now, back, rng))
            used.add(unit)
            if age is None:
                _complete(conn, settings, keys, o, bt)
            else:
                _move(conn, settings, keys, rng, o, bt, tz, now, back)
        except (RuleViolation, CadastreError):
            conn.rollback()           # this case only: the ones before are committed
            continue
        conn.commit()
        opened += 1
        if stats.sample_case_no is None and o.stage.value == "accepted":
            stats.sample_case_no, stats.sample_code = o.case_no, o.query_code
        if progress:
            progress(opened, n)
    return opened


def _today_open(conn: psycopg.Connection, settings: CasesSettings, now: datetime) -> bool:
    local = now.astimezone(ZoneInfo(settings.timezone))
    row = conn.execute("SELECT workday FROM reg.calendar_day WHERE day = %s",
                       (local.date(),)).fetchone()
    return bool(row and row[0]) and local.time() < settings.office_closing


def _complete(conn: psycopg.Connection, settings: CasesSettings, keys: wf.Keys, o: wf.Opened,
              bt: int) -> None:
    """A same-day case done on the spot: entered or concluded, then archived."""
    if o.stage.value == "applied":
        wf.advance(conn, settings, keys, ACTOR, o.case_no, Action.ACCEPT)
    writes = catalogue.get(conn, bt).writes_register
    wf.advance(conn, settings, keys, ACTOR, o.case_no,
               Action.REGISTER if writes else Action.CONCLUDE)
    if catalogue.get(conn, bt).issues != "none":
        wf.advance(conn, settings, keys, ACTOR, o.case_no, Action.PREPARE)
        wf.advance(conn, settings, keys, ACTOR, o.case_no, Action.ISSUE)
    wf.advance(conn, settings, keys, ACTOR, o.case_no, Action.ARCHIVE)


def _move(conn: psycopg.Connection, settings: CasesSettings, keys: wf.Keys,
          rng: random.Random, o: wf.Opened, bt: int, tz: ZoneInfo, now: datetime,
          back: int) -> None:
    """Take a fresh case part of the way, at plausible instants after its acceptance."""
    def step_at(days: int) -> datetime:
        return _instant(conn, tz, now, max(0, back - days), rng)
    if o.stage.value == "applied":
        if rng.random() < 0.5:
            return
        wf.advance(conn, settings, keys, ACTOR, o.case_no, Action.ACCEPT, at=step_at(0))
    roll = rng.random()
    if back == 0 or roll < 0.25:
        return                                   # just accepted
    wf.advance(conn, settings, keys, ACTOR, o.case_no, Action.REVIEW, at=step_at(1),
               review=wf.Review("初审", "材料齐全，符合登记条件"))
    if roll < 0.40:
        missing = [m.code for m in catalogue.materials(conn, bt) if m.required
                   and m.code not in ("application_form", "applicant_identity")][:1]
        reason = PauseReason.SUPPLEMENT if missing else PauseReason.SITE_VISIT
        wf.pause(conn, settings, keys, ACTOR, o.case_no, reason, "一次性告知",
                 missing=missing, at=step_at(1))
    elif roll < 0.52 and back >= 2:
        bt_row = catalogue.get(conn, bt)
        action = Action.REGISTER if bt_row.writes_register else Action.CONCLUDE
        wf.advance(conn, settings, keys, ACTOR, o.case_no, action)
        if bt_row.issues != "none" and rng.random() < 0.5:
            wf.advance(conn, settings, keys, ACTOR, o.case_no, Action.PREPARE)
