"""Registration cases in the viewer (real Chromium, real server): a registrar's worklist coloured
by traffic light, opening a case and moving it to 登簿; the public progress page for a case
number and query code, with no party on it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

pytest.register_assert_rewrite("tests.viewer_support")

from tests.viewer_support import screenshot  # noqa: E402

pytest_plugins = ("tests.viewer_support",)


@pytest.fixture(scope="module")
def casework(small_district, test_settings, viewer_dist, viewer_assets, tmp_path_factory):
    """A small district with a year of cases, one case certainly overdue and one fresh, a
    registrar, and a server on it."""
    from cadastre.access.accounts import create_account
    from cadastre.access.pii import audit_key, load_cipher
    from cadastre.access.privacy import Role
    from cadastre.cases import workflow as wf
    from cadastre.cases.application import Application, PartyInput
    from cadastre.demo.cases import seed_cases
    from tests.viewer_support import LiveServer, data_dir_for

    url = small_district("viewer_cases")
    keys = wf.Keys(load_cipher(test_settings), audit_key(test_settings))
    actor = wf.Actor("test", "registrar", "测试")
    with psycopg.connect(url) as conn:
        stats = seed_cases(conn, test_settings.cases, keys, open_cases=40)
        units = [r[0].strip() for r in conn.execute(
            "SELECT r.unit_code FROM cad.right_record r WHERE r.kind = 'ownership' AND "
            "r.status = 1 AND NOT EXISTS (SELECT 1 FROM cad.right_record x WHERE x.unit_code "
            "= r.unit_code AND x.status = 1 AND x.kind IN ('seizure', 'pre_notice')) AND NOT "
            "EXISTS (SELECT 1 FROM reg.case c WHERE r.unit_code = ANY(c.unit_codes)) "
            "ORDER BY 1 LIMIT 2")]
        now = datetime.now(ZoneInfo("Asia/Shanghai"))
        cases = {}
        for name, unit, when in (("late", units[0], now - timedelta(days=40)),
                                 ("fresh", units[1], now)):
            cases[name] = wf.open_case(conn, test_settings.cases, keys, actor, Application(
                7, (unit,), (PartyInput("慕容复", "11010519491231002X"),),
                request={"transaction_price": "420"}), at=when)
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, "reg.cases", "registrar password 2", Role.REGISTRAR, "周登簿")
    data_dir = data_dir_for(tmp_path_factory.mktemp("viewer_cases"), test_settings)
    (data_dir / "cache").mkdir(exist_ok=True)
    for sub in ("glyphs", "sprites"):
        (data_dir / "cache" / sub).symlink_to(viewer_assets / "cache" / sub)
    with LiveServer(url, data_dir) as server:
        yield {"url": url, "server": server, "stats": stats, "cases": cases}


def _login(page, base: str) -> None:
    page.goto(base + "/#mode=staff")
    page.fill("#staff-user", "reg.cases")
    page.fill("#staff-password", "registrar password 2")
    page.click("#staff-submit")
    page.wait_for_selector("#staff-logout")
    page.click("#tab-cases")
    page.wait_for_selector("#case-list tr.case-row")


def test_worklist_coloured_by_light_and_a_case_entered(casework, page) -> None:
    _login(page, casework["server"].base)
    lights = page.eval_on_selector_all("#case-list tr.case-row", "rows => rows.map(r => "
                                       "[r.dataset.caseNo, r.dataset.light, "
                                       "getComputedStyle(r.querySelector('.light')).color])")
    late = casework["cases"]["late"].case_no
    by_no = {no: (light, colour) for no, light, colour in lights}
    assert by_no[late] == ("red", "rgb(198, 40, 40)")
    assert lights[0][1] == "red"                            # the overdue first
    assert "红" in page.inner_text("#cases-summary")
    screenshot(page, "viewer-cases-worklist")
    colours = {"red": "rgb(198, 40, 40)", "yellow": "rgb(183, 121, 31)",
               "green": "rgb(26, 127, 55)"}
    for light in ("green", "red"):
        page.click(f".chips button[data-light='{light}']")
        page.wait_for_function("(l) => { const rows = [...document.querySelectorAll("
                               "'#case-list tr.case-row')]; return rows.length > 0 && "
                               "rows.every(r => r.dataset.light === l); }", arg=light)
        seen = set(page.eval_on_selector_all(
            "#case-list tr.case-row .light", "ds => ds.map(d => getComputedStyle(d).color)"))
        assert seen == {colours[light]}, (light, seen)
    page.click(f"#case-list tr[data-case-no='{late}']")
    page.wait_for_selector("#case-act-review")
    assert "慕容复" in page.inner_text("#case-detail")       # registrars see the parties
    page.click("#case-act-review")
    page.wait_for_selector("#case-stage:has-text('审核')")
    page.click("#case-act-register")
    page.wait_for_selector("#case-stage:has-text('登簿')", timeout=30_000)
    screenshot(page, "viewer-case-registered")
    with psycopg.connect(casework["url"]) as conn:
        row = conn.execute("SELECT stage, change_id IS NOT NULL FROM reg.case WHERE case_no = %s",
                           (late,)).fetchone()
        owner = conn.execute("SELECT business_no FROM cad.right_record WHERE business_no = %s "
                             "AND kind = 'ownership' AND status = 1", (late,)).fetchone()
    assert row == ("registered", True) and owner is not None


def test_public_progress_page(casework, page) -> None:
    opened = casework["cases"]["fresh"]
    page.goto(casework["server"].base + "/#mode=progress")
    page.fill("#progress-case", opened.case_no)
    page.fill("#progress-code", "WRONG123")
    page.click("#progress-submit")
    page.wait_for_function("() => document.querySelector('#progress-form .form-status')"
                           ".innerText.includes('未查询到')")
    page.fill("#progress-code", opened.query_code)
    page.click("#progress-submit")
    page.wait_for_selector("#progress-stage")
    assert "受理" in page.inner_text("#progress-stage")
    text = page.inner_text("#progress-card")
    assert "慕容" not in text and "110105" not in text
    assert "二手房" in text or "转移登记" in text
    screenshot(page, "viewer-progress")
    sample = casework["stats"]
    if sample.sample_case_no:   # a demo case from the seeded history works the same way
        page.fill("#progress-case", sample.sample_case_no)
        page.fill("#progress-code", sample.sample_code)
        page.click("#progress-submit")
        page.wait_for_function("(no) => document.querySelector('#progress-card') !== null",
                               arg=sample.sample_case_no)
