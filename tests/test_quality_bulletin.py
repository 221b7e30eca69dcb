"""5 % sampling of cases with outcomes and the monthly bulletin: a month's cases drawn once per
county, checked pass/fail with problem categories, the bulletin's pass rate against ≥ 95 %,
problems by category, the business-environment indicators; JSON, CSV and a PDF whose Chinese
text extracts."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest
from pypdf import PdfReader

from cadastre.access.pii import audit_key, load_cipher
from cadastre.cases import workflow as wf
from cadastre.errors import Conflict, InvalidInput
from cadastre.qa import bulletin as qb
from cadastre.qa import sampling
from cadastre.settings import CasesSettings
from tests.combined_support import BUYER, BUYER_BANK, MORTGAGE, enter, units


@pytest.fixture(scope="module")
def month_of_cases(small_district, test_settings):
    url = small_district("xbul")
    env = {"url": url, "cases": CasesSettings(),
           "keys": wf.Keys(load_cipher(test_settings), audit_key(test_settings)),
           "actor": wf.Actor("test", "registrar", "测试登簿员")}
    owned = units(url, "owned", 12)
    with psycopg.connect(url) as conn:
        for unit in owned[:9]:
            enter(env, conn, 7, unit, [BUYER], {"transaction_price": "300"})
        enter(env, conn, 9, owned[9], [BUYER_BANK], MORTGAGE)
        enter(env, conn, 22, owned[10], request={"authority": "杭州市西湖区人民法院"})
        enter(env, conn, 22, owned[11], request={"authority": "杭州市西湖区人民法院"})
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    return url, owned[0][:6], month


def test_sample_outcomes_and_bulletin(month_of_cases):
    url, county, month = month_of_cases
    with psycopg.connect(url) as conn:
        drawn = sampling.draw(conn, county, sampling.first_of_month(month), "lead",
                              fraction=0.25, seed=3)
        assert drawn["population"] == 12 and len(drawn["sampled"]) == 3
        with pytest.raises(Conflict) as exc:
            sampling.draw(conn, county, sampling.first_of_month(month), "lead")
        assert exc.value.code == "QA_SAMPLE_EXISTS"
        sid = uuid.UUID(drawn["sample_id"])
        first, second, third = drawn["sampled"]
        sampling.assign(conn, sid, first, "checker:a")
        with pytest.raises(Conflict):
            sampling.record(conn, sid, first, "checker:b", True)
        with pytest.raises(InvalidInput) as bad:
            sampling.record(conn, sid, first, "checker:a", False)
        assert bad.value.code == "SAMPLE_OUTCOME_INVALID"
        sampling.record(conn, sid, first, "checker:a", False, ["content", "certificate"],
                        "附记缺失")
        sampling.record(conn, sid, second, "checker:a", True)
        sampling.record(conn, sid, third, "checker:b", True)
        b = qb.bulletin(conn, county, month)
    assert b["sample"] == {"population": 12, "sampled": 3, "checked": 3, "passed": 2,
                           "failed": 1, "pass_rate": 0.6667, "meets_target": False}
    assert b["problems_by_category"]["content"] == 1
    assert b["problems_by_category"]["certificate"] == 1
    assert sum(b["problems_by_category"].values()) == 2
    ind = b["indicators"]
    assert ind["seizure_hours"]["cases"] == 2 and ind["seizure_hours"]["value"] is not None
    assert ind["mortgage_online_share"]["cases"] == 1
    assert ind["company_transfer_days"]["cases"] == 0      # the buyers are individuals
    json.loads(json.dumps(b, ensure_ascii=False))
    rows = list(csv.reader(io.StringIO(qb.to_csv(b))))
    assert ["sample", "pass_rate", "0.6667"] in rows
    assert ["problems_by_category", "content", "1"] in rows
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(qb.to_pdf(b))).pages)
    for words in ("不动产登记质量月度通报", "合格率", "66.7%", "未达标", "查封登记平均用时",
                  county):
        assert words in text, words
    assert BUYER.name not in text


def test_bulletin_keeps_to_the_registrars_counties(demo_client, test_settings):
    """A registrar of other counties gets no bulletin of this one (as if it did not exist)."""
    from cadastre.access.privacy import Role
    from tests.test_public_api import bearer

    path = "/api/v1/exchange/bulletins/330106/2026-06"
    own = demo_client.get(path, headers=bearer(test_settings, Role.REGISTRAR,
                                               counties=("330106",)))
    assert own.status_code == 200, own.text
    other = demo_client.get(path, headers=bearer(test_settings, Role.REGISTRAR,
                                                 counties=("110105",)))
    assert other.status_code == 404 and other.json()["error"]["code"] == "COUNTY_NOT_FOUND"
