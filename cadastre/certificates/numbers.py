"""Certificate and proof numbers: 浙(2026)杭州市不动产权第0000001号.

Province abbreviation, year, city or county name, the document's word (不动产权 for certificates,
不动产证明 for proofs, 不动产登记信息查询 for query results), and a 7-digit sequence that runs per
series and year. Every number in use is a row of ``cad.certificate_number`` (primary key): the
ones reserved here, and — through a trigger on ``cad.right_record`` — every number the register
holds from any other source (the demo, imports), so a reserved number never repeats one.

The office's province and city come from ``reg.office`` for the unit's county when that table
(registration cases, migration 0008) has a row for it, else from the settings
(``CADASTRE_CERT_PROVINCE_ABBR``, ``CADASTRE_CERT_CITY_NAME``).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from cadastre.settings import CertificateSettings

WORDS = {"certificate": "不动产权", "proof": "不动产证明", "query_result": "不动产登记信息查询"}
_LOCK_NS = 0x63657274   # advisory-lock namespace 'cert' (two-int form): one series-year at a time


@dataclass(frozen=True)
class Office:
    province_abbr: str
    city_name: str


def office_for(conn: psycopg.Connection, county_code: str, cfg: CertificateSettings) -> Office:
    """Numbering names of the office registering in ``county_code``."""
    row = conn.execute("SELECT to_regclass('reg.office') IS NOT NULL").fetchone()
    if row and row[0]:
        found = conn.execute("SELECT province_abbr, city_name FROM reg.office "
                             "WHERE county_code = %s", (county_code,)).fetchone()
        if found:
            return Office(found[0], found[1])
    return Office(cfg.province_abbr, cfg.city_name)


def format_number(office: Office, kind: str, year: int, seq: int) -> str:
    return f"{office.province_abbr}({year}){office.city_name}{WORDS[kind]}第{seq:07d}号"


def series(office: Office, kind: str) -> str:
    """The series key ``cad.certificate_number_parts`` derives from a number of this office."""
    return f"{office.province_abbr}|{office.city_name}|{WORDS[kind]}"


def reserve_number(conn: psycopg.Connection, office: Office, kind: str, year: int) -> str:
    """The next free number of the series in ``year``, reserved in the caller's transaction
    (released again if it rolls back). Serialised per series and year by an advisory lock; the
    primary key is the guarantee."""
    key = series(office, kind)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                     (_LOCK_NS, f"{key}|{year}"))
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM cad.certificate_number "
                           "WHERE series = %s AND year = %s", (key, year)).fetchone()
        seq = (row[0] if row else 0) + 1
        number = format_number(office, kind, year, seq)
        conn.execute("INSERT INTO cad.certificate_number (number, series, year, seq, source) "
                     "VALUES (%s, %s, %s, %s, 'reserved')", (number, key, year, seq))
    return number


def number_parts(conn: psycopg.Connection, number: str) -> tuple[str, int | None, int | None]:
    """(series, year, sequence) of a number as the database parses it."""
    row = conn.execute("SELECT series, year, seq FROM cad.certificate_number_parts(%s)",
                       (number,)).fetchone()
    assert row is not None
    return row[0], row[1], row[2]
