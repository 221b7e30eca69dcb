"""Cases benchmark: the worklist, the supervision dashboard and 登簿 at registry scale.

    python -m bench.cases [--cases 1000000] [--open 100000] [--entries 200]

On the 2,000-parcel demo district (its own database, ``bench_cases``) it adds ``--cases``
registration cases over the last year, ``--open`` of them still running, spread over ten
counties and 50 registrars, their deadlines from the SQL clock. Then it times, through the HTTP
app (in-process, real PostGIS):

- the registrar's worklist (my cases, most urgent first; and the county's red list), and
- the supervisor's dashboard (lights per county and business type, on-time rate, average and
  p90 working days of the last 30 days),

each 200 times (targets: p99 < 100 ms), and ``--entries`` ordinary transfer cases entered in the
register (登簿) one by one (target: median < 50 ms).

The peer, timed in the same run: the same dashboard counts with each running case's light
computed from the calendar at query time (the straightforward query without stored
deadlines). The ratio says what storing the deadlines buys.
"""

from __future__ import annotations

import argparse
import time

import psycopg

from bench.common import console, percentile, scaled_demo
from cadastre.access.accounts import create_account
from cadastre.access.pii import audit_key, load_cipher
from cadastre.access.privacy import Role
from cadastre.cases import calendar, clock
from cadastre.cases import workflow as wf
from cadastre.cases.application import Application, PartyInput
from cadastre.cases.model import Action
from cadastre.settings import Settings, get_settings
from cadastre.store.db import embedded_cluster
from cadastre.store.migrate import migrate

COUNTIES = ("330106", "330102", "330105", "330108", "330109", "330110", "330111", "330112",
            "330113", "330114")

_FILL = """
WITH g AS (
    SELECT n, (n %% 10) AS cty, 1 + (n::bigint * 7919 %% 25)::int AS bt,
           CASE WHEN n <= %(open)s THEN now() - ((n %% 1200) * interval '14 minutes')
                ELSE now() - ((n %% 3650) * interval '2.4 hours') END AS t
    FROM generate_series(%(first)s, %(last)s) n
)
INSERT INTO reg.case (case_id, case_no, county_code, business_type, channel, stage, unit_codes,
                      request, query_code_hash, applied_at, accepted_at, clock_from,
                      promised_days, statutory_days, assignee, created_by, registered_at,
                      closed_at)
SELECT gen_random_uuid(), '2099' || (%(counties)s::text[])[cty + 1] || lpad(n::text, 7, '0'),
       (%(counties)s::text[])[cty + 1], bt, 'window',
       CASE WHEN n <= %(open)s THEN 'reviewing' ELSE 'archived' END,
       ARRAY[%(unit)s]::char(28)[], '{}', sha256(n::text::bytea), t, t, t,
       b.promised_days, b.statutory_days,
       (%(registrars)s::uuid[])[1 + n %% 50], 'bench',
       CASE WHEN n > %(open)s THEN t + (n %% 9) * interval '1 day' END,
       CASE WHEN n > %(open)s THEN t + (n %% 9 + 2) * interval '1 day' END
FROM g JOIN reg.business_type b ON b.seq = g.bt
"""

# the peer: the same light counts with every running case's deadlines computed from the
# calendar at query time (no stored deadlines)
PEER = """
WITH c AS (
    SELECT x.county_code, x.business_type, x.promised_days::int AS pd, x.paused_days AS pz,
           x.paused_since, (x.clock_from AT TIME ZONE %(tz)s) AS lt
    FROM reg.case x
    WHERE x.registered_at IS NULL AND x.closed_at IS NULL AND x.clock_from IS NOT NULL
), f AS (
    SELECT c.*, k.idx + CASE WHEN k.workday AND c.lt::time < %(closing)s::time
                             THEN 0 ELSE 1 END AS s
    FROM c JOIN reg.calendar_day k ON k.day = c.lt::date
), d AS (
    SELECT f.county_code, f.business_type, f.paused_since,
           CASE WHEN f.pd = 0 THEN (p.day + %(same_day)s::time) AT TIME ZONE %(tz)s
                ELSE y.day::timestamp AT TIME ZONE %(tz)s END AS yellow_at,
           (p.day + %(closing)s::time) AT TIME ZONE %(tz)s AS due_at
    FROM f
    JOIN reg.calendar_day p ON p.workday AND p.idx = f.s + f.pd + f.pz
    JOIN reg.calendar_day y ON y.workday
         AND y.idx = f.s + f.pd + f.pz - floor(f.pd * %(share)s::numeric)::int
)
SELECT county_code, business_type,
       count(*) FILTER (WHERE reg.light(yellow_at, due_at, paused_since, now()) = 'green'),
       count(*) FILTER (WHERE reg.light(yellow_at, due_at, paused_since, now()) = 'yellow'),
       count(*) FILTER (WHERE reg.light(yellow_at, due_at, paused_since, now()) = 'red')
FROM d GROUP BY 1, 2
"""


def build(url: str, settings: Settings, total: int, open_: int) -> list[str]:
    """Cases and 50 registrars (once); returns the registrars' usernames."""
    names = [f"bench.reg{i:02d}" for i in range(50)]
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM reg.case WHERE created_by = 'bench'"
                            ).fetchone()[0]
        calendar.ensure(conn, settings.cases)
        conn.commit()
        ids = []
        for n in names:
            row = conn.execute("SELECT account_id FROM auth.account WHERE username = %s",
                               (n,)).fetchone()
            ids.append(row[0] if row else create_account(conn, n, "bench password", Role.REGISTRAR,
                                                         n, COUNTIES).account_id)
        conn.commit()
        unit = conn.execute("SELECT unit_code FROM cad.unit WHERE valid_to IS NULL LIMIT 1"
                            ).fetchone()[0]
        t0 = time.monotonic()
        step = 100_000
        for first in range(have + 1, total + 1, step):
            last = min(total, first + step - 1)
            conn.execute(_FILL, {"first": first, "last": last, "open": open_, "unit": unit,
                                 "counties": list(COUNTIES), "registrars": ids})
            conn.commit()
            console.print(f"  cases {last:,} / {total:,} ({time.monotonic() - t0:.0f} s)")
        conn.execute("ANALYZE reg.case")          # the planner must know the cases are many
        conn.execute("ANALYZE reg.calendar_day")
        conn.commit()
        t1 = time.monotonic()
        n = clock.compute(conn, settings.cases, "x.created_by = 'bench' AND x.due_at IS NULL")
        conn.commit()
        console.print(f"  deadlines of {n:,} cases in {time.monotonic() - t1:.1f} s "
                      "(one statement)")
        conn.execute("UPDATE reg.case SET working_days_used = ascii(right(case_no, 1)) % 12 "
                     "WHERE created_by = 'bench' AND registered_at IS NOT NULL "
                     "AND working_days_used IS NULL")
        conn.commit()
        conn.execute("ANALYZE reg.case")
        conn.commit()
        console.print(f"built {total:,} cases ({open_:,} open) in {time.monotonic() - t0:.0f} s")
    return names


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def report(name: str, lat: list[float], target_ms: float | None = None) -> None:
    p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
    ok = "" if target_ms is None else (" ✓" if p99 < target_ms else " ✗")
    console.print(f"  {name:44s} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms{ok}")


def entries(url: str, settings: Settings, n: int) -> list[float]:
    """``n`` ordinary transfers: opened and reviewed, then 登簿 timed one by one."""
    keys = wf.Keys(load_cipher(settings), audit_key(settings))
    actor = wf.Actor("bench", "registrar", "基准登簿员")
    with psycopg.connect(url) as conn:
        units = [r[0].strip() for r in conn.execute(
            "SELECT r.unit_code FROM cad.right_record r WHERE r.kind = 'ownership' AND "
            "r.status = 1 AND NOT EXISTS (SELECT 1 FROM cad.right_record x WHERE x.unit_code = "
            "r.unit_code AND x.status = 1 AND x.kind IN ('seizure', 'pre_notice')) AND NOT "
            "EXISTS (SELECT 1 FROM reg.case c WHERE c.created_by <> 'bench' AND r.unit_code = "
            "ANY(c.unit_codes) AND c.closed_at IS NULL) ORDER BY md5(r.unit_code) LIMIT %s",
            (n,))]
        cases = []
        for i, unit in enumerate(units):
            buyer = PartyInput(f"基准买受人{i}", "11010519491231002X", phone="13800000000")
            o = wf.open_case(conn, settings.cases, keys, actor, Application(
                7, (unit,), (buyer,), request={"transaction_price": "300"}))
            wf.advance(conn, settings.cases, keys, actor, o.case_no, Action.REVIEW,
                       review=wf.Review("初审", "同意"))
            cases.append(o.case_no)
        lat = []
        for no in cases:
            t = time.perf_counter()
            wf.advance(conn, settings.cases, keys, actor, no, Action.REGISTER)
            lat.append(time.perf_counter() - t)
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--open", type=int, default=100_000)
    ap.add_argument("--entries", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    settings = get_settings()
    scaled_demo(2000)      # the 2,000-parcel district, built once
    cluster = embedded_cluster(settings)
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'bench_cases'"
                             ).fetchone():
            admin.execute("CREATE DATABASE bench_cases TEMPLATE bench_2000")
    url = cluster.url("bench_cases")
    migrate(url)
    names = build(url, settings, args.cases, args.open)

    from fastapi.testclient import TestClient

    from api.app import create_app

    app_settings = Settings(database={"url": url}, api={"rate_limit_enabled": False})
    with TestClient(create_app(app_settings)) as client, psycopg.connect(url) as conn:
        total, open_ = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE closed_at IS NULL) FROM reg.case"
        ).fetchone()
        console.print(f"[bold]{total:,} cases, {open_:,} open[/] (PostgreSQL, 2 cores)")
        token = client.post("/api/v1/auth/login", json={
            "username": names[7], "password": "bench password"}).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        for path in ("/api/v1/cases?mine=true", "/api/v1/cases?light=red&limit=50",
                     "/api/v1/cases/stats"):
            assert client.get(path, headers=h).status_code == 200   # warm
        report("worklist: my cases (50, most urgent first)",
               timed(lambda: client.get("/api/v1/cases?mine=true", headers=h), args.repeat), 100)
        report("worklist: red cases of all counties (50)",
               timed(lambda: client.get("/api/v1/cases?light=red&limit=50", headers=h),
                     args.repeat), 100)
        dash = timed(lambda: client.get("/api/v1/cases/stats", headers=h), args.repeat)
        report("dashboard: lights, on-time, avg/p90, overdue", dash, 100)
        params = settings.cases.clock_params()
        peer = timed(lambda: conn.execute(PEER, params).fetchall(), 5)
        ours = timed(lambda: conn.execute(
            "SELECT count(*) FILTER (WHERE reg.light(yellow_at, due_at, paused_since, now()) "
            "= 'red') FROM reg.case WHERE registered_at IS NULL AND closed_at IS NULL "
            "AND clock_from IS NOT NULL").fetchall(), 20)
        console.print(f"  peer: lights from the calendar per row   {percentile(peer, 50):.2f} s;"
                      f" stored deadlines {percentile(ours, 50) * 1000:.1f} ms → "
                      f"{percentile(peer, 50) / percentile(ours, 50):.0f}× faster")
    lat = entries(url, settings, args.entries)
    med = percentile(lat, 50) * 1000
    p99 = percentile(lat, 99) * 1000
    console.print(f"  登簿 of {len(lat)} ordinary transfers: median {med:.1f} ms, p99 {p99:.1f} ms"
                  f"{' ✓' if med < 50 else ' ✗'} (target median < 50 ms)")


if __name__ == "__main__":
    main()
