"""Numbers a case hands out: its own case number (受理编号, also the business number YWH of what
it registers) and the certificate or proof number reserved at 登簿
(浙(2026)杭州市不动产权第0000001号 / 浙(2026)杭州市不动产证明第0000001号).

Sequences run per county, kind and year (``reg.number_seq``); the row lock serialises numbering
within one county and year only. Certificate sequences start after the highest number already in
the register for that prefix (registers are imported with their numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from cadastre.settings import CasesSettings


@dataclass(frozen=True)
class Office:
    county_code: str
    name: str
    province_abbr: str
    city_name: str


def office(conn: psycopg.Connection, county: str, settings: CasesSettings) -> Office:
    row = conn.execute("SELECT name, province_abbr, city_name FROM reg.office "
                       "WHERE county_code = %s", (county,)).fetchone()
    if row:
        return Office(county, *row)
    return Office(county, settings.office_name, settings.province_abbr, settings.city_name)


def _next(conn: psycopg.Connection, county: str, kind: str, year: int, floor: int = 0) -> int:
    row = conn.execute(
        "INSERT INTO reg.number_seq AS s (county_code, kind, year, last) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (county_code, kind, year) DO UPDATE SET last = greatest(s.last, "
        "EXCLUDED.last - 1) + 1 RETURNING last", (county, kind, year, floor + 1)).fetchone()
    assert row is not None
    return int(row[0])


def case_number(conn: psycopg.Connection, county: str, year: int) -> str:
    """``YYYY`` + county + 7-digit sequence, e.g. 20263301060000123."""
    return f"{year}{county}{_next(conn, county, 'case', year):07d}"


_SEQ = re.compile(r"第(\d+)号$")


def certificate_number(conn: psycopg.Connection, off: Office, year: int, proof: bool) -> str:
    kind = "proof" if proof else "certificate"
    word = "不动产证明" if proof else "不动产权"
    prefix = f"{off.province_abbr}({year}){off.city_name}{word}第"
    row = conn.execute(
        "INSERT INTO reg.number_seq AS s (county_code, kind, year, last) VALUES (%s, %s, %s, 1) "
        "ON CONFLICT (county_code, kind, year) DO UPDATE SET last = s.last + 1 "
        "RETURNING last, xmax = 0", (off.county_code, kind, year)).fetchone()
    assert row is not None
    number, first = int(row[0]), bool(row[1])
    if first:   # first number of the year: continue after what the register holds
        held = conn.execute("SELECT max(certificate_no) FROM cad.right_record "
                            "WHERE certificate_no LIKE %s", (prefix + "%",)).fetchone()
        m = _SEQ.search(held[0]) if held and held[0] else None
        if m:
            number = _next(conn, off.county_code, kind, year, int(m.group(1)))
    return f"{prefix}{number:07d}号"
