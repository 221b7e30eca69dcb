"""Certificate and proof numbers: 浙(2026)杭州市不动产权第0000001号.

Province abbreviation, year, city or county name, the document's word (不动产权 for certificates,
不动产证明 for proofs, 不动产登记信息查询 for query results), and a 7-digit sequence per series and
year. Certificates and proofs take their sequence where registration cases take it at 登簿
(``cadastre.cases.numbers``: ``reg.number_seq``, per county, kind and year; the office's names
from ``reg.office``, else the cases' settings), so there is one numbering.

Every number in use is also a row of ``cad.certificate_number`` (primary key): those reserved
here, and — through a trigger on ``cad.right_record`` — every number the register holds from any
source (登簿, the demo, imports). A sequence number that is already there (a register imported
with numbers beyond the sequence) is skipped, so a reserved number never repeats one.
"""

from __future__ import annotations

import psycopg

from cadastre.cases.numbers import Office, certificate_number, office
from cadastre.errors import Conflict
from cadastre.settings import Settings

__all__ = ["Office", "format_number", "number_parts", "office_for", "reserve_number", "series"]

WORDS = {"certificate": "不动产权", "proof": "不动产证明", "query_result": "不动产登记信息查询"}
_LOCK_NS = 0x63657274   # advisory-lock namespace 'cert' (two-int form): query-result series
_TRIES = 10_000


def office_for(conn: psycopg.Connection, county_code: str, settings: Settings) -> Office:
    """The office registering in ``county_code``: its name and numbering names."""
    return office(conn, county_code, settings.cases)


def format_number(off: Office, kind: str, year: int, seq: int) -> str:
    return f"{off.province_abbr}({year}){off.city_name}{WORDS[kind]}第{seq:07d}号"


def series(off: Office, kind: str) -> str:
    """The series key ``cad.certificate_number_parts`` derives from a number of this office."""
    return f"{off.province_abbr}|{off.city_name}|{WORDS[kind]}"


def _take(conn: psycopg.Connection, number: str) -> bool:
    row = conn.execute(
        "INSERT INTO cad.certificate_number (number, series, year, seq, source) "
        "SELECT %s, p.series, p.year, p.seq, 'reserved' FROM cad.certificate_number_parts(%s) p "
        "ON CONFLICT DO NOTHING RETURNING number", (number, number)).fetchone()
    return row is not None


def reserve_number(conn: psycopg.Connection, off: Office, kind: str, year: int) -> str:
    """The next free number of the series in ``year``, reserved in the caller's transaction
    (released again if it rolls back)."""
    with conn.transaction():
        if kind in ("certificate", "proof"):
            for _ in range(_TRIES):
                number = certificate_number(conn, off, year, proof=kind == "proof")
                if _take(conn, number):
                    return number
        else:   # query results: a series of their own, serialised per series and year
            key = series(off, kind)
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                         (_LOCK_NS, f"{key}|{year}"))
            row = conn.execute("SELECT coalesce(max(seq), 0) FROM cad.certificate_number "
                               "WHERE series = %s AND year = %s", (key, year)).fetchone()
            number = format_number(off, kind, year, (row[0] if row else 0) + 1)
            if _take(conn, number):
                return number
    raise Conflict("NUMBER_EXHAUSTED", "编号已用尽 / no free number in this series")


def number_parts(conn: psycopg.Connection, number: str) -> tuple[str, int | None, int | None]:
    """(series, year, sequence) of a number as the database parses it."""
    row = conn.execute("SELECT series, year, seq FROM cad.certificate_number_parts(%s)",
                       (number,)).fetchone()
    assert row is not None
    return row[0], row[1], row[2]
