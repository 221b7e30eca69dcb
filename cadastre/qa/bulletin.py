"""The monthly quality bulletin of a county (质量通报): the manual sample's pass rate against the
≥ 95 % target, problems by category (sampled checks and the automatic rules at 登簿), and the
three business-environment indicators of registration (registration.md §5). As JSON, CSV and a
PDF with Chinese text.

The bulletin holds counts and case numbers only: no party's name or ID number.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import psycopg

from cadastre.qa.rule import CATEGORIES
from cadastre.qa.sampling import first_of_month

TARGET = 0.95
_MONTH = ("c.county_code = %(county)s AND c.registered_at IS NOT NULL "
          "AND c.registered_at >= (%(month)s::date::timestamp AT TIME ZONE %(tz)s) "
          "AND c.registered_at < ((%(month)s::date + interval '1 month')::timestamp "
          "AT TIME ZONE %(tz)s)")

INDICATORS: dict[str, tuple[str, str, str]] = {
    # key: (中文, English, SQL → (value, cases))
    "company_transfer_days": (
        "企业间转移登记平均用时（日）", "average days of a transfer between companies", f"""
        SELECT round(avg(extract(epoch FROM c.registered_at - c.accepted_at) / 86400)::numeric,
                     2), count(*)
        FROM reg.case c
        WHERE {_MONTH} AND c.business_type IN (3, 7) AND c.accepted_at IS NOT NULL
          AND EXISTS (SELECT 1 FROM reg.case_party cp WHERE cp.case_id = c.case_id
                      AND cp.role = 'holder')
          AND NOT EXISTS (SELECT 1 FROM reg.case_party cp JOIN pii.party p USING (party_id)
                          WHERE cp.case_id = c.case_id AND cp.role IN ('holder', 'obligor')
                            AND p.party_type = 1)"""),
    "mortgage_online_share": (
        "抵押登记在银行网点（线上）办理占比", "share of mortgages filed at bank branches (online)",
        f"""
        SELECT round(avg((c.channel = 'online')::int)::numeric, 4), count(*)
        FROM reg.case c WHERE {_MONTH} AND c.business_type = 9"""),
    "seizure_hours": (
        "查封登记平均用时（小时）", "average hours to register a seizure", f"""
        SELECT round(avg(extract(epoch FROM c.registered_at - c.accepted_at) / 3600)::numeric,
                     2), count(*)
        FROM reg.case c
        WHERE {_MONTH} AND c.business_type = 22 AND c.accepted_at IS NOT NULL"""),
}


def bulletin(conn: psycopg.Connection, county: str, month: str | date,
             tz: str = "Asia/Shanghai") -> dict[str, Any]:
    m = first_of_month(month)
    p = {"county": county, "month": m, "tz": tz}
    sample = conn.execute(
        "SELECT s.population, count(q.case_no), count(q.outcome), "
        "count(*) FILTER (WHERE q.outcome = 'pass'), count(*) FILTER (WHERE q.outcome = 'fail') "
        "FROM reg.quality_sample s LEFT JOIN reg.quality_check q USING (sample_id) "
        "WHERE s.county_code = %(county)s AND s.month = %(month)s GROUP BY s.population",
        p).fetchone()
    population, sampled, checked, passed, failed = sample or (0, 0, 0, 0, 0)
    problems = dict.fromkeys(CATEGORIES, 0)
    for cat, n in conn.execute(
            "SELECT unnest(q.categories), count(*) FROM reg.quality_check q JOIN "
            "reg.quality_sample s USING (sample_id) WHERE s.county_code = %(county)s AND "
            "s.month = %(month)s GROUP BY 1", p):
        problems[cat] = int(n)
    automatic = dict.fromkeys(CATEGORIES, 0)
    for cat, n in conn.execute(
            "SELECT f.category, count(*) FROM cad.qa_finding f JOIN cad.qa_run r USING (run_id) "
            "JOIN reg.case c ON c.case_no = r.scope->>'case_no' "
            f"WHERE r.scope->>'kind' = 'registration' AND {_MONTH} GROUP BY 1", p):
        automatic[cat] = int(n)
    indicators = {}
    for key, (zh, en, sql) in INDICATORS.items():
        value, cases = conn.execute(sql, p).fetchone()  # type: ignore[misc]
        indicators[key] = {"zh": zh, "en": en, "value": None if value is None else float(value),
                           "cases": int(cases)}
    rate = (passed / checked) if checked else None
    return {"county": county, "month": m.strftime("%Y-%m"), "target": TARGET,
            "sample": {"population": int(population), "sampled": int(sampled),
                       "checked": int(checked), "passed": int(passed), "failed": int(failed),
                       "pass_rate": None if rate is None else round(rate, 4),
                       "meets_target": None if rate is None else rate >= TARGET},
            "problems_by_category": problems, "automatic_findings_by_category": automatic,
            "indicators": indicators}


def to_csv(b: dict[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "key", "value"])
    for k in ("county", "month", "target"):
        w.writerow(["bulletin", k, b[k]])
    for k, v in b["sample"].items():
        w.writerow(["sample", k, "" if v is None else v])
    for section in ("problems_by_category", "automatic_findings_by_category"):
        for k, v in b[section].items():
            w.writerow([section, k, v])
    for k, v in b["indicators"].items():
        w.writerow(["indicator", k, "" if v["value"] is None else v["value"]])
        w.writerow(["indicator_cases", k, v["cases"]])
    return out.getvalue()


def to_pdf(b: dict[str, Any]) -> bytes:
    from cadastre.documents.render import esc, html_to_pdf, page_html

    s = b["sample"]
    rate = "—" if s["pass_rate"] is None else f"{s['pass_rate'] * 100:.1f}%"
    verdict = ("—" if s["meets_target"] is None else
               "达标 / meets the target" if s["meets_target"] else "未达标 / below the target")
    rows = "".join(
        f"<tr><td>{esc(CATEGORIES[c])}</td><td>{b['problems_by_category'][c]}</td>"
        f"<td>{b['automatic_findings_by_category'][c]}</td></tr>" for c in CATEGORIES)
    ind = "".join(
        f"<tr><td>{esc(v['zh'])}<br><small>{esc(v['en'])}</small></td>"
        f"<td>{'—' if v['value'] is None else esc(v['value'])}</td><td>{v['cases']}</td></tr>"
        for v in b["indicators"].values())
    body = f"""
<h1>不动产登记质量月度通报 / Monthly registration quality bulletin</h1>
<p>县（区）代码 County: {esc(b['county'])}　月份 Month: {esc(b['month'])}</p>
<h2>人工抽查 / Manual sample</h2>
<table><tr><th>办结件数 Cases</th><th>抽查 Sampled</th><th>已检查 Checked</th>
<th>合格 Passed</th><th>不合格 Failed</th><th>合格率 Pass rate</th><th>目标 Target</th></tr>
<tr><td>{s['population']}</td><td>{s['sampled']}</td><td>{s['checked']}</td>
<td>{s['passed']}</td><td>{s['failed']}</td><td>{rate}</td>
<td>≥ {b['target'] * 100:.0f}%（{verdict}）</td></tr></table>
<h2>问题分类 / Problems by category</h2>
<table><tr><th>类别 Category</th><th>抽查发现 Sampled checks</th><th>登簿自动检查 Automatic</th>
</tr>{rows}</table>
<h2>营商环境指标 / Business-environment indicators</h2>
<table><tr><th>指标 Indicator</th><th>数值 Value</th><th>件数 Cases</th></tr>{ind}</table>"""
    return html_to_pdf(page_html(f"质量通报 {b['county']} {b['month']}", body))
