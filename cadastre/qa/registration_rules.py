"""Quality rules of registrations (登记质量): the 原则/内容/证书/年限/时效/上报 categories.

Each rule is a SQL template over current registration records ``r`` with a ``{units}`` filter:
over a QA scope it is "the unit's parcel is in ``subject``", at 登簿 it is "one of the case's
units" (``%(units)s``), so the same statement checks the whole register and one registration.
Rules of severity ``error`` in ``BLOCKING`` refuse a 登簿 with their id as the error code;
the others are recorded as findings of the registration.
"""

from __future__ import annotations

from cadastre.qa.rule import Rule, _r

# over the whole register (no bbox, no codes: ``whole_register``, folded by the planner) every
# record is checked, those on units of a parcel no longer current too (an anomaly worth seeing);
# the parcel look-up cost 12.7 s a rule for the ~13 M records of the 1M-parcel district
SCOPE_FILTER = "(%(whole_register)s OR left({col}, 19) IN (SELECT code FROM subject))"
CASE_FILTER = "{col} = ANY(%(units)s::char(28)[])"
RESIDENTIAL_USES = "('10', '11', '12', '0701', '071')"

# The fields of two content rules, each test written once: the 登簿 statements list them record
# by record; over a scope the statements first test whether any fails (their disjunction) and
# list them only for the few records that fail one (13 s of the 1M-parcel district otherwise).
Tests = tuple[tuple[str, str], ...]         # (exchange field, the SQL test that it is bad)
_REQUIRED_ON_RECORD: Tests = (
    ("DJJG", "r.registry_office IS NULL"),
    ("DBR", "r.registrar_name IS NULL"),
    ("BDCQZH", "r.certificate_no IS NULL AND r.kind IN ('ownership', 'land_use', 'mortgage', "
               "'pre_notice')"))
_REQUIRED_ON_MORTGAGE: Tests = (
    ("ZWLXQSSJ", "md.debt_start IS NULL"),
    ("BDBZZQSE", "md.secured_amount IS NULL AND md.max_amount IS NULL"))
_CODES_ON_RECORD: Tests = (
    ("DJLX", "r.registration_type NOT IN (100, 200, 300, 400, 500, 600, 700, 800, 900)"),
    ("QLLX", "r.right_type NOT BETWEEN 1 AND 99"))
_CODES_ON_DETAIL = (      # (exchange field, detail table, its alias, the test on its row)
    ("DYFS", "mortgage_detail", "md", "mortgage_type NOT IN (1, 2)"),
    ("CFLX", "seizure_detail", "sd", "seizure_type NOT BETWEEN 1 AND 5"),
    ("YGDJZL", "pre_notice_detail", "pd", "notice_kind NOT BETWEEN 1 AND 4"))


def _listed(tests: Tests, flag: str) -> str:
    """``CROSS JOIN LATERAL (VALUES (field, bad), ...) m(field, <flag>)``: a row a test."""
    rows = ",\n            ".join(f"('{field}', {test})" for field, test in tests)
    return f"CROSS JOIN LATERAL (VALUES\n            {rows}) m(field, {flag})"


def _any(tests: Tests) -> str:
    """Whether any of the tests fails (one test of the row, before the list is built)."""
    return "(" + " OR ".join(f"({test})" for _, test in tests) + ")"


_MORTGAGE_REQUIRED_AT_ENTRY: Tests = tuple(
    (field, f"r.kind = 'mortgage' AND ({test})") for field, test in _REQUIRED_ON_MORTGAGE)
_DETAIL_CODES_AT_ENTRY: Tests = tuple(
    (field, f"{alias}.{test}") for field, _, alias, test in _CODES_ON_DETAIL)
_DETAIL_CODES_OVER_SCOPE = "\n              UNION ALL\n".join(
    f"              SELECT right_version_id, county_code, '{field}' AS field FROM cad.{table}"
    f"\n              WHERE {test}" for field, table, _, test in _CODES_ON_DETAIL)

_TEMPLATES: tuple[tuple[str, str, str, str, str, str], ...] = (
    # ------------------------------------------------------------------ 原则 principle
    ("REG_TWO_OWNERSHIPS", "principle", "error", "同一单元有两个现势所有权",
     "two current ownerships of one unit", """
        SELECT ARRAY[r.unit_code::text], count(*)::float8,
               format('单元有 %s 个现势所有权 / %s current ownerships', count(*), count(*)),
               NULL::geometry
        FROM cad.right_record r
        WHERE r.valid_to IS NULL AND r.status = 1 AND r.kind = 'ownership' AND {r_units}
        GROUP BY r.unit_code HAVING count(DISTINCT r.right_id) > 1"""),
    ("REG_MORTGAGE_WITHOUT_BASE", "principle", "error", "抵押权无现势的基础权利",
     "a mortgage without a current ownership or land-use right", """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               '抵押权所在单元无现势所有权或使用权 / no current base right under the mortgage',
               NULL::geometry
        FROM cad.right_record r
        WHERE r.valid_to IS NULL AND r.status = 1 AND r.kind = 'mortgage' AND {r_units}
          AND NOT EXISTS (SELECT 1 FROM cad.right_record b WHERE b.unit_code = r.unit_code
                          AND b.county_code = r.county_code
                          AND b.valid_to IS NULL AND b.status = 1
                          AND b.kind IN ('ownership', 'land_use'))"""),
    ("REG_TRANSFER_WHILE_SEIZED", "principle", "error", "查封期间办理了转移登记",
     "a transfer was entered while the unit was seized", """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               '转移登记时该单元处于查封状态 / the unit was under seizure at the transfer',
               NULL::geometry
        FROM cad.right_record r
        WHERE r.kind = 'ownership' AND r.registration_type = 200 AND r.status IN (1, 2)
          AND {r_units}
          AND EXISTS (SELECT 1 FROM cad.right_record s WHERE s.unit_code = r.unit_code
                      AND s.county_code = r.county_code AND s.kind = 'seizure'
                      AND s.valid_from < r.registered_at
                      AND (s.valid_to IS NULL OR s.valid_to > r.registered_at))"""),
    # ------------------------------------------------------------------ 内容 content
    ("REG_REQUIRED_FIELD", "content", "error", "登记记录缺少必填项",
     "a registration record lacks a required field", """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               format('缺少 %s / missing %s', m.field, m.field), NULL::geometry
        FROM cad.right_record r
        LEFT JOIN cad.mortgage_detail md ON md.right_version_id = r.version_id
            AND md.county_code = r.county_code
        """ + _listed(_REQUIRED_ON_RECORD + _MORTGAGE_REQUIRED_AT_ENTRY, "missing") + """
        WHERE r.valid_to IS NULL AND r.status = 1 AND m.missing AND {r_units}"""),
    ("REG_DICTIONARY_VALUE", "content", "error", "登记记录的字典值不在代码表中",
     "a registration record holds a value outside its code table", """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               format('%s 的值不在代码表中 / %s not in its code table', m.field, m.field),
               NULL::geometry
        FROM cad.right_record r
        LEFT JOIN cad.mortgage_detail md ON md.right_version_id = r.version_id
            AND md.county_code = r.county_code
        LEFT JOIN cad.seizure_detail sd ON sd.right_version_id = r.version_id
            AND sd.county_code = r.county_code
        LEFT JOIN cad.pre_notice_detail pd ON pd.right_version_id = r.version_id
            AND pd.county_code = r.county_code
        """ + _listed(_CODES_ON_RECORD + _DETAIL_CODES_AT_ENTRY, "bad") + """
        WHERE r.valid_to IS NULL AND r.status = 1 AND m.bad AND {r_units}"""),
    # ------------------------------------------------------------------ 证书 certificate
    ("REG_CERT_DUPLICATE", "certificate", "error", "不动产权证书号重复",
     "the same certificate number on two rights", """
        SELECT array_agg(DISTINCT r.unit_code::text), count(DISTINCT r.right_id)::float8,
               format('证书号被 %s 个权利使用 / used by %s rights', count(DISTINCT r.right_id),
                      count(DISTINCT r.right_id)), NULL::geometry
        FROM cad.right_record r
        WHERE r.valid_to IS NULL AND r.status = 1 AND r.certificate_no IS NOT NULL
          AND r.kind IN ('ownership', 'land_use') AND {r_units}
          AND EXISTS (SELECT 1 FROM cad.right_record o WHERE o.certificate_no = r.certificate_no
                      AND o.valid_to IS NULL AND o.status = 1 AND o.right_id <> r.right_id
                      AND o.kind IN ('ownership', 'land_use') AND o.unit_code <> r.unit_code)
        GROUP BY r.certificate_no"""),
    ("REG_CERT_FORMAT", "certificate", "warning", "证书号格式不规范",
     "a certificate number is not well formed", """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               '证书号应为“省(年份)市县不动产权/证明第NNNNNNN号” / malformed certificate number',
               NULL::geometry
        FROM cad.right_record r
        WHERE r.valid_to IS NULL AND r.status = 1 AND r.certificate_no IS NOT NULL
          AND {r_units}
          -- every number in the register is in cad.certificate_number (its insert trigger),
          -- parsed by cad.certificate_number_parts; the malformed ones have a partial index
          AND r.certificate_no IN (SELECT n.number FROM cad.certificate_number n
                                   WHERE n.series = 'other')"""),
    ("REG_CERT_NOT_SUPERSEDED", "certificate", "warning", "已被替代的证书未记为失效",
     "a certificate of a replaced right version is still current", """
        SELECT ARRAY[c.unit_code::text, c.business_no], NULL::float8,
               '权利已有新版本，原证书仍为现势 / the right changed but its certificate is current',
               NULL::geometry
        FROM cad.certificate c JOIN cad.right_record r ON r.version_id = c.right_version_id
             AND r.county_code = c.county_code
        WHERE c.status = 'current' AND r.valid_to IS NOT NULL AND {c_units}"""),
    # ------------------------------------------------------------------ 年限 period
    ("REG_TERM_ORDER", "period", "error", "权利或债务期限起止颠倒",
     "a right, land-use or debt term ends before it starts", """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               format('%s 结束早于开始 / %s ends before it starts', m.field, m.field),
               NULL::geometry
        FROM cad.right_record r
        LEFT JOIN cad.ownership_detail o ON o.right_version_id = r.version_id
            AND o.county_code = r.county_code
        LEFT JOIN cad.mortgage_detail md ON md.right_version_id = r.version_id
            AND md.county_code = r.county_code
        CROSS JOIN LATERAL (VALUES
            ('QLQSSJ/QLJSSJ', r.right_end <= r.right_start),
            ('TDSYQSSJ/TDSYJSSJ', o.land_use_end <= o.land_use_start),
            ('ZWLXQSSJ/ZWLXJSSJ', md.debt_end < md.debt_start)) m(field, bad)
        WHERE r.valid_to IS NULL AND r.status = 1 AND m.bad AND {r_units}"""),
    ("REG_RESIDENTIAL_TERM", "period", "error", "住宅用地使用年限超过 70 年",
     "a residential land-use term longer than 70 years", """
        SELECT ARRAY[r.unit_code::text, r.business_no],
               ((o.land_use_end - o.land_use_start) / 365.25)::float8,
               format('住宅用地使用期限 %s 年 / residential term of %s years',
                      round(((o.land_use_end - o.land_use_start) / 365.25)::numeric, 1),
                      round(((o.land_use_end - o.land_use_start) / 365.25)::numeric, 1)),
               NULL::geometry
        FROM cad.right_record r JOIN cad.ownership_detail o ON o.right_version_id = r.version_id
             AND o.county_code = r.county_code
        WHERE r.valid_to IS NULL AND r.status = 1 AND o.house_use IN """ + RESIDENTIAL_USES + """
          AND o.land_use_end > o.land_use_start + interval '70 years' + interval '1 day'
          AND {r_units}"""),
    ("REG_DEBT_AFTER_LAND_TERM", "period", "warning", "债务履行期限超过土地使用期限",
     "a mortgage's debt term runs past the land-use term", """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               '债务履行期限晚于土地使用期限届满 / the debt ends after the land-use term',
               NULL::geometry
        FROM cad.right_record r JOIN cad.mortgage_detail md ON md.right_version_id = r.version_id
             AND md.county_code = r.county_code
        JOIN cad.right_record b ON b.unit_code = r.unit_code AND b.county_code = r.county_code
             AND b.valid_to IS NULL AND b.status = 1 AND b.kind IN ('ownership', 'land_use')
        JOIN cad.ownership_detail o ON o.right_version_id = b.version_id
             AND o.county_code = b.county_code
        WHERE r.valid_to IS NULL AND r.status = 1 AND md.debt_end > o.land_use_end
          AND {r_units}"""),
    # ------------------------------------------------------------------ 时效 time limit
    ("REG_CASE_OVERDUE", "time_limit", "warning", "办件超过承诺或法定时限",
     "a case ran past its promised or statutory time limit", """
        SELECT ARRAY[c.unit_codes[1]::text, c.case_no], NULL::float8,
               CASE WHEN coalesce(c.registered_at, now()) > c.statutory_due_at
                    THEN '超过法定时限 / past the statutory limit'
                    ELSE '超过承诺时限 / past the promised limit' END,
               NULL::geometry
        FROM reg.case c
        WHERE c.stage NOT IN ('refused', 'rejected', 'withdrawn')
          AND coalesce(c.registered_at, now()) > least(c.due_at, c.statutory_due_at)
          AND {case_units}"""),
    # ------------------------------------------------------------------ 上报 reporting
    ("REG_NOT_REPORTED", "reporting", "warning", "登簿后未生成汇交报文",
     "a registration produced no exchange message", """
        SELECT ARRAY[c.unit_codes[1]::text, c.case_no], NULL::float8,
               '登簿后无上报报文 / no exchange message for this registration', NULL::geometry
        FROM reg.case c
        WHERE c.registered_at IS NOT NULL AND c.change_id IS NOT NULL AND {case_units}
          AND NOT EXISTS (SELECT 1 FROM xchg.outbound o WHERE o.business_no = c.case_no)"""),
    ("REG_NOT_ACKNOWLEDGED", "reporting", "warning", "上报报文超时未获确认",
     "an exchange message unacknowledged past the limit", """
        SELECT ARRAY[c.unit_codes[1]::text, c.case_no], NULL::float8,
               format('报文 %s %s / message %s %s', o.biz_msg_id, o.state, o.biz_msg_id,
                      o.state), NULL::geometry
        FROM xchg.outbound o JOIN reg.case c ON c.case_no = o.business_no
        WHERE ((o.state IN ('pending', 'sent')
                AND o.created_at < now() - %(report_ack_hours)s * interval '1 hour')
               OR o.state = 'rejected')
          AND {case_units}"""),
)

# Over a scope (up to the whole district) two rules check each code table or term on its own
# rows and look up the records of the few bad details by key, instead of joining every current
# record with its details (1 M parcels: ~15 M records, three detail tables); at 登簿 (CASE_SQL)
# the templates above, which start from the case's units.
# the current record of each bad detail ``m`` (right_version_id, county_code), by its key: the
# few bad details' records are looked up, never every record joined with its details (OFFSET 0
# keeps the look-up a look-up: the planner guesses a third of the details bad and, flattened,
# hashed all 15 M records of the 1M-parcel district for none: REG_TERM_ORDER 18 -> 8 s)
_RECORD_OF_DETAIL = """
        CROSS JOIN LATERAL (
            SELECT r.unit_code, r.business_no FROM cad.right_record r
            WHERE r.version_id = m.right_version_id AND r.county_code = m.county_code
              AND r.valid_to IS NULL AND r.status = 1 AND {r_units} OFFSET 0) r"""

_SCOPE_SQL: dict[str, str] = {
    # the units with two current ownership versions (of any status) first, counted in the
    # order of the (unit_code, kind) index (no rows read, nothing hashed); their records then,
    # by code (1M parcels, alone: 7.0 s; grouping the ownerships of every record: 15.3 s)
    "REG_TWO_OWNERSHIPS": """
        SELECT ARRAY[r.unit_code::text], count(*)::float8,
               format('单元有 %s 个现势所有权 / %s current ownerships', count(*), count(*)),
               NULL::geometry
        FROM (SELECT c.unit_code FROM cad.right_record c
              WHERE c.valid_to IS NULL AND c.kind = 'ownership' AND {c_units}
              GROUP BY c.unit_code HAVING count(*) > 1) o
        CROSS JOIN LATERAL (
            SELECT r.unit_code, r.right_id FROM cad.right_record r
            WHERE r.unit_code = o.unit_code AND r.county_code = left(o.unit_code, 6)::bpchar
              AND r.valid_to IS NULL AND r.status = 1 AND r.kind = 'ownership' OFFSET 0) r
        GROUP BY r.unit_code HAVING count(DISTINCT r.right_id) > 1""",
    "REG_DICTIONARY_VALUE": """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               format('%s 的值不在代码表中 / %s not in its code table', m.field, m.field),
               NULL::geometry
        FROM cad.right_record r """ + _listed(_CODES_ON_RECORD, "bad") + """
        WHERE r.valid_to IS NULL AND r.status = 1 AND """ + _any(_CODES_ON_RECORD) + """
          AND m.bad AND {r_units}
        UNION ALL
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               format('%s 的值不在代码表中 / %s not in its code table', m.field, m.field),
               NULL::geometry
        FROM (
""" + _DETAIL_CODES_OVER_SCOPE + """) m
""" + _RECORD_OF_DETAIL,
    "REG_REQUIRED_FIELD": """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               format('缺少 %s / missing %s', m.field, m.field), NULL::geometry
        FROM cad.right_record r """ + _listed(_REQUIRED_ON_RECORD, "missing") + """
        WHERE r.valid_to IS NULL AND r.status = 1 AND """ + _any(_REQUIRED_ON_RECORD) + """
          AND m.missing AND {r_units}
        UNION ALL  -- the mortgages' terms and amounts: only mortgages meet their details
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               format('缺少 %s / missing %s', m.field, m.field), NULL::geometry
        FROM cad.right_record r
        LEFT JOIN cad.mortgage_detail md ON md.right_version_id = r.version_id
             AND md.county_code = r.county_code
        """ + _listed(_REQUIRED_ON_MORTGAGE, "missing") + """
        WHERE r.kind = 'mortgage' AND r.valid_to IS NULL AND r.status = 1
          AND """ + _any(_REQUIRED_ON_MORTGAGE) + """ AND m.missing AND {r_units}""",
    "REG_TERM_ORDER": """
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               'QLQSSJ/QLJSSJ 结束早于开始 / QLQSSJ/QLJSSJ ends before it starts', NULL::geometry
        FROM cad.right_record r
        WHERE r.right_end <= r.right_start AND r.valid_to IS NULL AND r.status = 1 AND {r_units}
        UNION ALL
        SELECT ARRAY[r.unit_code::text, r.business_no], NULL::float8,
               format('%s 结束早于开始 / %s ends before it starts', m.field, m.field),
               NULL::geometry
        FROM (SELECT right_version_id, county_code, 'TDSYQSSJ/TDSYJSSJ' AS field
              FROM cad.ownership_detail WHERE land_use_end <= land_use_start
              UNION ALL
              SELECT right_version_id, county_code, 'ZWLXQSSJ/ZWLXJSSJ' FROM cad.mortgage_detail
              WHERE debt_end < debt_start) m
""" + _RECORD_OF_DETAIL,
}

BLOCKING = frozenset(("REG_TWO_OWNERSHIPS", "REG_MORTGAGE_WITHOUT_BASE",
                      "REG_TRANSFER_WHILE_SEIZED", "REG_TERM_ORDER"))


def _fill(sql: str, flt: str) -> str:
    # a case's units: over a scope, any of them in it; at 登簿, overlapping the case's (GIN)
    cases = ("c.unit_codes && %(units)s::char(28)[]" if flt == CASE_FILTER else
             "EXISTS (SELECT 1 FROM unnest(c.unit_codes) u(code) WHERE "
             + flt.format(col="u.code") + ")")
    return sql.format(r_units=flt.format(col="r.unit_code"),
                      c_units=flt.format(col="c.unit_code"), case_units=cases)


# planner settings of scope statements: codes counted in an index's order by one process
_SCOPE_SETTINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "REG_TWO_OWNERSHIPS": (("enable_hashagg", "off"), ("max_parallel_workers_per_gather", "0")),
}

REGISTRATION_RULES: tuple[Rule, ...] = tuple(
    _r(rid, cat, sev, zh, en, _fill(_SCOPE_SQL.get(rid, sql), SCOPE_FILTER), registry_only=True,
       settings=_SCOPE_SETTINGS.get(rid, ()))
    for rid, cat, sev, zh, en, sql in _TEMPLATES)
# the same statements for the units of one registration (at 登簿)
CASE_SQL: dict[str, str] = {t[0]: _r(*t[:5], _fill(t[5], CASE_FILTER)).sql for t in _TEMPLATES}
