"""The case clock against the real calendar: weekends, the 2026 National Day holiday and its
make-up working days, local overrides, the office closing time, pauses, a year without holiday
data, and the traffic lights exactly at their boundaries (SQL function and list filter agree)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import psycopg
import pytest

from cadastre.access.pii import audit_key, load_cipher
from cadastre.cases import calendar as cal
from cadastre.cases import clock, queries
from cadastre.cases import workflow as wf
from cadastre.cases.application import Application, PartyInput
from cadastre.cases.model import Action, PauseReason
from cadastre.settings import CasesSettings, Settings

CST = ZoneInfo("Asia/Shanghai")
US = timedelta(microseconds=1)
BUYER = PartyInput("测试买受人", "11010519491231002X")


def at(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=CST)


@pytest.fixture(scope="module")
def env(small_district, test_settings: Settings):
    url = small_district("clock")
    with psycopg.connect(url) as conn:
        unit = conn.execute(
            "SELECT u.unit_code FROM cad.unit u WHERE u.valid_to IS NULL AND NOT EXISTS ("
            "SELECT 1 FROM cad.right_record r WHERE r.unit_code = u.unit_code AND r.status = 1 "
            "AND r.kind IN ('seizure', 'pre_notice', 'objection')) AND EXISTS (SELECT 1 FROM "
            "cad.right_record r WHERE r.unit_code = u.unit_code AND r.status = 1 "
            "AND r.kind = 'ownership') ORDER BY u.unit_code LIMIT 1").fetchone()[0]
    keys = wf.Keys(load_cipher(test_settings), audit_key(test_settings))
    return {"url": url, "unit": unit, "keys": keys, "settings": CasesSettings(),
            "actor": wf.Actor("test-registrar", "registrar", "测试登簿员")}


def _open(env, when: datetime, business_type: int = 7, request=None) -> str:
    """A case opened at ``when`` on the module's unit (previous cases are withdrawn first)."""
    with psycopg.connect(env["url"]) as conn:
        for (no,) in conn.execute("SELECT case_no FROM reg.case WHERE closed_at IS NULL "
                                  "AND registered_at IS NULL").fetchall():
            wf.advance(conn, env["settings"], env["keys"], env["actor"], no, Action.WITHDRAW)
        app = Application(business_type, (env["unit"],),
                          (BUYER,) if business_type == 7 else (),
                          request=request or ({"transaction_price": "300"}
                                              if business_type == 7 else {}))
        return wf.open_case(conn, env["settings"], env["keys"], env["actor"], app,
                            at=when).case_no


def _deadlines(env, case_no: str) -> dict:
    with psycopg.connect(env["url"]) as conn:
        row = conn.execute("SELECT start_day, yellow_at, due_at, statutory_due_at, "
                           "calendar_incomplete FROM reg.case WHERE case_no = %s",
                           (case_no,)).fetchone()
    return dict(zip(("start", "yellow", "due", "statutory", "incomplete"), row, strict=True))


def _nth_workday_after(start: date, n: int) -> date:
    """An independent count with the package (the test's own arithmetic)."""
    d, k = start, 0
    while k < n:
        d += timedelta(days=1)
        k += chinese_calendar.is_workday(d)
    return d


def test_national_day_and_make_up_working_days(env) -> None:
    """Accepted Wed 30 Sept 2026 at 10:00: 1–7 Oct off, Sat 10 Oct a working day → the 5-day
    limit ends Tue 13 Oct at closing time; yellow from Mon 12 Oct (1 day left)."""
    d = _deadlines(env, _open(env, at(2026, 9, 30)))
    assert d["start"] == date(2026, 9, 30)
    assert d["due"] == at(2026, 10, 13, 17)
    assert d["yellow"] == at(2026, 10, 12, 0)
    assert d["statutory"] == datetime.combine(_nth_workday_after(date(2026, 9, 30), 30),
                                              datetime.min.time().replace(hour=17), CST)
    assert not d["incomplete"]


def test_closing_time_and_weekends(env) -> None:
    # at 17:30 the acceptance counts from the next working day: 8 Oct (after the holiday)
    d = _deadlines(env, _open(env, at(2026, 9, 30, 17, 30)))
    assert d["start"] == date(2026, 10, 8)
    assert d["due"] == at(2026, 10, 14, 17)
    # one minute before closing still counts today
    assert _deadlines(env, _open(env, at(2026, 9, 30, 16, 59)))["start"] == date(2026, 9, 30)
    # Saturday 19 Sept: the next working day is the make-up Sunday 20 Sept; Fri 25 Sept is
    # the Mid-autumn holiday
    d = _deadlines(env, _open(env, at(2026, 9, 19)))
    assert d["start"] == date(2026, 9, 20)
    assert d["due"] == at(2026, 9, 28, 17)
    # an ordinary weekend: Sat 14 Nov → Mon 16 Nov, due Mon 23 Nov
    d = _deadlines(env, _open(env, at(2026, 11, 14)))
    assert (d["start"], d["due"]) == (date(2026, 11, 16), at(2026, 11, 23, 17))


def test_local_override_moves_running_cases(env) -> None:
    no = _open(env, at(2026, 11, 16, 9))
    assert _deadlines(env, no)["due"] == at(2026, 11, 23, 17)
    with psycopg.connect(env["url"]) as conn:
        cal.set_day(conn, env["settings"], date(2026, 11, 19), False, "本地假日", "test")
        conn.commit()
    assert _deadlines(env, no)["due"] == at(2026, 11, 24, 17)
    with psycopg.connect(env["url"]) as conn:
        cal.set_day(conn, env["settings"], date(2026, 11, 21), True, "调休", "test")
        conn.commit()
        assert cal.year_view(conn, 2026).extra_workdays[-1].day == date(2026, 11, 21)
    assert _deadlines(env, no)["due"] == at(2026, 11, 23, 17)
    with psycopg.connect(env["url"]) as conn:   # leave the calendar as the package has it
        conn.execute("DELETE FROM reg.calendar_override WHERE day IN ('2026-11-19', "
                     "'2026-11-21')")
        cal.rebuild(conn, env["settings"])
        clock.recompute_running(conn, env["settings"])
        conn.commit()


def test_pause_stops_the_clock_and_moves_the_deadline(env) -> None:
    s, keys, actor = env["settings"], env["keys"], env["actor"]
    no = _open(env, at(2026, 11, 16, 9))
    with psycopg.connect(env["url"]) as conn:
        with pytest.raises(Exception) as exc:
            wf.pause(conn, s, keys, actor, no, PauseReason.SUPPLEMENT, at=at(2026, 11, 18))
        assert exc.value.code == "MATERIALS_REQUIRED"   # 补正 lists the missing materials
        conn.rollback()
        wf.pause(conn, s, keys, actor, no, PauseReason.SUPPLEMENT, "缺完税凭证",
                 missing=["tax_paid"], at=at(2026, 11, 18))
        row = conn.execute("SELECT yellow_at, due_at, paused_since FROM reg.case "
                           "WHERE case_no = %s", (no,)).fetchone()
        # frozen: still green on the deadline day, judged at the pause's start
        assert conn.execute("SELECT reg.light(%s, %s, %s, %s)",
                            (*row, at(2026, 11, 23, 16))).fetchone()[0] == "green"
        assert wf.resume(conn, s, keys, actor, no, at=at(2026, 11, 20, 15)) == 2
        status = conn.execute("SELECT status FROM reg.case_material cm JOIN reg.case c "
                              "USING (case_id) WHERE c.case_no = %s AND code = 'tax_paid'",
                              (no,)).fetchone()[0]
    assert status == "supplied"
    assert _deadlines(env, no)["due"] == at(2026, 11, 25, 17)


def test_light_boundaries_in_sql_and_in_the_worklist(env) -> None:
    no = _open(env, at(2026, 11, 16, 9))
    d = _deadlines(env, no)
    expected = [(d["yellow"] - US, "green"), (d["yellow"], "yellow"), (d["due"], "yellow"),
                (d["due"] + US, "red")]
    with psycopg.connect(env["url"]) as conn:
        for t, light in expected:
            assert conn.execute("SELECT reg.light(%s, %s, NULL, %s)",
                                (d["yellow"], d["due"], t)).fetchone()[0] == light, t
            for other in ("green", "yellow", "red"):
                found = [r["case_no"] for r in queries.worklist(
                    conn, env["settings"], queries.WorklistFilter(light=other), now=t)["items"]]
                assert (no in found) == (other == light), (t, other)
        for t, overdue in ((d["statutory"], False), (d["statutory"] + US, True)):
            item = next(r for r in queries.worklist(conn, env["settings"],
                                                    queries.WorklistFilter(), now=t)["items"]
                        if r["case_no"] == no)
            assert item["statutory_overdue"] is overdue and item["light"] == "red"


def test_same_day_business_turns_yellow_at_the_set_hour(env) -> None:
    no = _open(env, at(2026, 11, 16, 9), business_type=22,
               request={"authority": "杭州市西湖区人民法院", "document_no": "(2026)浙0106执1号"})
    d = _deadlines(env, no)
    assert (d["yellow"], d["due"]) == (at(2026, 11, 16, 15), at(2026, 11, 16, 17))


def test_year_without_holiday_data_is_flagged_until_its_notice_is_imported(env) -> None:
    assert max(cal.package_years()) == 2026    # chinese-calendar 1.11: no 2027 yet
    no = _open(env, at(2026, 12, 28))          # 30 working days run into 2027
    assert _deadlines(env, no)["incomplete"]
    with psycopg.connect(env["url"]) as conn:
        view = cal.year_view(conn, 2027)
        assert view.source == "weekday" and "2027" in (view.warning or "")
        notice = ["2027-01-01 holiday 元旦", "2027-02-06..2027-02-12 holiday 春节",
                  "2027-02-14 workday 春节调休"]
        cal.import_notice(conn, env["settings"], 2027, cal.parse_notice(notice, 2027), "test")
        conn.commit()
        assert cal.year_view(conn, 2027).warning is None
    d = _deadlines(env, no)
    assert not d["incomplete"]
    with pytest.raises(Exception) as exc:
        cal.parse_notice(["2027-13-01 holiday x"], 2027)
    assert exc.value.code == "CALENDAR_LINE"


def test_withdrawn_case_is_closed(env) -> None:
    s, keys, actor = env["settings"], env["keys"], env["actor"]
    no = _open(env, at(2026, 11, 16, 9))
    with psycopg.connect(env["url"]) as conn:
        wf.advance(conn, s, keys, actor, no, Action.WITHDRAW)
        row = conn.execute("SELECT stage, closed_at IS NOT NULL FROM reg.case WHERE case_no = %s",
                           (no,)).fetchone()
    assert row == ("withdrawn", True)


def test_dashboard_figures_equal_a_direct_computation(demo_url: str) -> None:
    """The supervision dashboard's completed-case figures (count, on time, average and p90
    working days from counts per value) equal the same figures computed here from the rows."""
    import numpy as np

    now = datetime.now(tz=CST)
    since = now - timedelta(days=365)
    with psycopg.connect(demo_url) as conn:
        got = queries.stats(conn, CasesSettings(), [], since, now, now)
        rows = conn.execute(
            "SELECT county_code, business_type, working_days_used, registered_at <= due_at "
            "FROM reg.case WHERE registered_at >= %s AND registered_at < %s",
            (since, now)).fetchall()
    groups: dict[tuple[str, int], list] = {}
    for county, bt, wd, on_time in rows:
        groups.setdefault((county.strip(), bt), []).append((wd, bool(on_time)))
    done = {(r["county_code"], r["business_type"]): r for r in got["rows"] if r["completed"]}
    assert len(rows) > 100 and set(done) == set(groups)
    for key, cases in groups.items():
        values = [wd for wd, _ in cases if wd is not None]
        r = done[key]
        assert r["completed"] == len(cases)
        assert r["on_time"] == sum(1 for _, ok in cases if ok)
        if values:
            assert r["avg_workdays"] == pytest.approx(round(float(np.mean(values)), 2), abs=0.006)
            assert r["p90_workdays"] == pytest.approx(
                round(float(np.percentile(values, 90)), 2), abs=0.006)
        else:
            assert r["avg_workdays"] is None and r["p90_workdays"] is None
